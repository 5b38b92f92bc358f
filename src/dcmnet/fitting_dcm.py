"""The fitted-DCM limit: distributed charges fitted directly to each conformer's own ESP.

For one conformer with atoms at ``R`` (N, 3) Å, net charge ``Q`` e and reference ESP ``V``
on grid points ``r_k`` (Hartree/e), ``K = n_dcm`` charge sites per atom are placed at
``x_ik = R_i + d_ik`` with charges ``q_ik`` and fitted by minimising

.. math:: L = \\frac{1}{G} \\sum_k \\Big(\\sum_{ik} \\frac{q_{ik}}{|r_k - x_{ik}|} - V_k\\Big)^2

(ESP of point charges, :func:`dcmnet.electrostatics.esp_from_charges`; the loss is
evaluated in kcal/(mol·e) for conditioning). The parametrisation is the model's
(:mod:`dcmnet.model`):

* the displacement is bounded smoothly, ``d = v / sqrt(1 + |v|²/m²)`` with
  ``m = max_displacement``, so ``|d| < m`` for every free vector ``v``;
* the charges are projected onto the net charge,
  ``q ← q − (Σq − Q)/(N·K)`` over real atoms, so ``Σq = Q`` exactly (not a penalty).

Start: the ESP-fitted monopoles of :func:`dcmnet.fitting.fit_monopoles` split evenly over
the K sites, the sites displaced by ``init_offset`` Å along K fixed directions with zero
mean (a centred Fibonacci spiral, :func:`dcmnet.surface.fibonacci_sphere`), so the start
reproduces the monopoles to first order and the optimisation breaks the site symmetry
deterministically; ``K = 1`` starts exactly at the monopoles (zero displacement). The
optimiser is L-BFGS with a zoom line search (``optax.lbfgs``; Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Alg. 7.4 and 3.5), run per conformer (``jax.vmap``) so conformers
never share a step length, for at most ``steps`` iterations; the best iterate is kept. The
problem is not convex: the result is an upper bound of the true limit (a local optimum), and
never worse than its start, the fitted monopoles (to float32 rounding).

This is the limit a DCM-net with the same ``n_dcm`` and ``max_displacement`` can reach on a
conformer: the network must predict charges from the geometry alone, the fit sees the ESP.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcmnet.electrostatics import esp_from_charges
from dcmnet.errors import DataError
from dcmnet.units import HARTREE_TO_KCAL_MOL

#: Default bound on a site's distance from its atom, Å (the model's default).
DEFAULT_MAX_DISPLACEMENT = 1.0
#: Default L-BFGS iterations per conformer.
DEFAULT_STEPS = 300
#: Default distance of the start sites from their atom, Å.
DEFAULT_INIT_OFFSET = 0.05

__all__ = ["bounded_displacement", "project_charges", "initial_directions", "dcm_sites",
           "fit_dcm_batch", "fit_dcm_dataset", "DEFAULT_MAX_DISPLACEMENT", "DEFAULT_STEPS"]


def bounded_displacement(v: jax.Array, max_displacement: float) -> jax.Array:
    """``d = v / sqrt(1 + |v|²/m²)`` (…, 3) Å: ``|d| < m`` for every ``v`` (the model's bound).

    Args:
        v: (..., 3) free displacement vectors, Å.
        max_displacement: ``m`` > 0, Å.
    """
    v2 = jnp.sum(v * v, axis=-1, keepdims=True)
    return v / jnp.sqrt(1.0 + v2 / (max_displacement * max_displacement))


def _unbounded(d: np.ndarray, max_displacement: float) -> np.ndarray:
    """Inverse of :func:`bounded_displacement` for ``|d| < m``: ``v = d / sqrt(1 − |d|²/m²)``."""
    d2 = np.sum(d * d, axis=-1, keepdims=True)
    return d / np.sqrt(1.0 - d2 / max_displacement**2)


def project_charges(q: jax.Array, atom_mask: jax.Array, net_charge: jax.Array) -> jax.Array:
    """Charges (B, A, K) e of real atoms shifted equally so that each molecule sums to
    ``net_charge`` (B,) e exactly; padded atoms (``atom_mask`` (B, A) = 0) carry 0.

    A molecule without real atoms gives zeros.
    """
    m = atom_mask[..., None]
    q = q * m
    n = jnp.maximum(jnp.sum(m, axis=(1, 2)) * q.shape[-1], 1.0)           # (B,)
    shift = (jnp.sum(q, axis=(1, 2)) - net_charge) / n
    return q - shift[:, None, None] * m


def initial_directions(n_dcm: int) -> np.ndarray:
    """(K, 3) start offsets of the K sites of an atom: zero mean, largest norm 1.

    ``K = 1``: the zero vector (the start is the monopole). ``K ≥ 2``: a Fibonacci spiral
    of K points (:func:`dcmnet.surface.fibonacci_sphere`) minus its mean.
    """
    from dcmnet.surface import fibonacci_sphere

    if n_dcm == 1:
        return np.zeros((1, 3))
    u = fibonacci_sphere(n_dcm)
    u = u - u.mean(axis=0)
    return u / np.linalg.norm(u, axis=1).max()


def dcm_sites(params: dict, R: jax.Array, atom_mask: jax.Array, net_charge: jax.Array,
              max_displacement: float):
    """Charges (B, A, K) e and absolute positions (B, A, K, 3) Å of the fit parameters.

    Args:
        params: ``{"q": (B, A, K) raw charges e, "v": (B, A, K, 3) free displacements Å}``.
        R: (B, A, 3) atoms, Å; atom_mask: (B, A); net_charge: (B,) e.
        max_displacement: bound ``m`` on ``|x − R|``, Å.
    """
    q = project_charges(params["q"], atom_mask, net_charge)
    d = bounded_displacement(params["v"], max_displacement) * atom_mask[..., None, None]
    return q, R[:, :, None, :] + d


def _loss_one(params, R, atom_mask, grid, esp, grid_mask, net_charge, max_displacement):
    """Mean squared ESP error of one conformer, (kcal/(mol·e))² over its real points."""
    add = lambda x: x[None]                                         # noqa: E731
    q, x = dcm_sites(jax.tree.map(add, params), R[None], atom_mask[None], net_charge[None],
                     max_displacement)
    A, K = q.shape[1], q.shape[2]
    v = esp_from_charges(q.reshape(1, A * K), x.reshape(1, A * K, 3), grid[None],
                         grid_mask[None])[0]
    r = (v - esp) * grid_mask * HARTREE_TO_KCAL_MOL
    return jnp.sum(r * r) / jnp.maximum(jnp.sum(grid_mask), 1.0)


@functools.partial(jax.jit, static_argnames=("steps", "max_displacement", "memory_size"))
def _fit_padded(params, R, atom_mask, grid, esp, grid_mask, net_charge, *, steps: int,
                max_displacement: float, memory_size: int = 20):
    """Per-conformer L-BFGS (vmapped): returns the best params and their loss (B,)."""

    def one(p0, R, am, g, e, gm, Q):
        f = functools.partial(_loss_one, R=R, atom_mask=am, grid=g, esp=e, grid_mask=gm,
                              net_charge=Q, max_displacement=max_displacement)
        opt = optax.lbfgs(memory_size=memory_size)
        vg = optax.value_and_grad_from_state(f)

        def body(_, carry):
            p, state, best_p, best_l = carry
            value, grad = vg(p, state=state)
            better = jnp.isfinite(value) & (value < best_l)
            best_p = jax.tree.map(lambda a, b: jnp.where(better, a, b), p, best_p)
            best_l = jnp.where(better, value, best_l)
            upd, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=f)
            return optax.apply_updates(p, upd), state, best_p, best_l

        carry = (p0, opt.init(p0), p0, f(p0))
        p, _, best_p, best_l = jax.lax.fori_loop(0, steps, body, carry)
        last = f(p)
        take = jnp.isfinite(last) & (last < best_l)
        best_p = jax.tree.map(lambda a, b: jnp.where(take, a, b), p, best_p)
        return best_p, jnp.where(take, last, best_l)

    return jax.vmap(one)(params, R, atom_mask, grid, esp, grid_mask, net_charge)


def _check_options(n_dcm, max_displacement, steps) -> None:
    from dcmnet.errors import ConfigError

    if isinstance(n_dcm, bool) or int(n_dcm) != n_dcm or int(n_dcm) < 1:
        raise ConfigError(f"n_dcm must be a whole number ≥ 1 (charge sites per atom), got "
                          f"{n_dcm}; try --n-dcm 2.")
    if not (math.isfinite(float(max_displacement)) and float(max_displacement) > 0):
        raise ConfigError(f"max_displacement must be > 0 Å, got {max_displacement}; the "
                          f"model's default is {DEFAULT_MAX_DISPLACEMENT} Å.")
    if int(steps) != steps or int(steps) < 0:
        raise ConfigError(f"steps must be a whole number ≥ 0, got {steps}.")


def fit_dcm_batch(batch: dict, mono: np.ndarray, n_dcm: int = 2,
                  max_displacement: float = DEFAULT_MAX_DISPLACEMENT,
                  steps: int = DEFAULT_STEPS, init_offset: float = DEFAULT_INIT_OFFSET) -> dict:
    """Fit ``n_dcm`` charges per atom to the ESP of every conformer of a padded batch.

    Args:
        batch: a padded batch (:func:`dcmnet.data.batching.make_batch`): ``R`` (B, A, 3) Å,
            ``atom_mask`` (B, A), ``grid`` (B, G, 3) Å, ``esp`` (B, G) Hartree/e,
            ``grid_mask`` (B, G), ``net_charge`` (B,) e.
        mono: (B, A) start charges in e (the fitted monopoles; 0 on padded atoms), each
            summing to the molecule's net charge.
        n_dcm: K ≥ 1 sites per atom. max_displacement: bound on ``|x − R|``, Å (> 0).
        steps: L-BFGS iterations per conformer (0: the start itself).
        init_offset: distance of the start sites from their atom, Å (capped at half the
            bound).
    Returns:
        dict of NumPy arrays: ``charges`` (B, A, K) e (Σ = net charge to float32
        rounding, 0 on padding), ``positions`` (B, A, K, 3) Å, ``esp_rmse`` (B,)
        kcal/(mol·e) over each conformer's real points (0 for dummy molecules).
    Raises:
        ConfigError: n_dcm < 1, max_displacement ≤ 0 or steps < 0.
    """
    _check_options(n_dcm, max_displacement, steps)
    K, m = int(n_dcm), float(max_displacement)
    am = np.asarray(batch["atom_mask"], np.float32)
    offset = min(float(init_offset), 0.5 * m)
    v0 = _unbounded(offset * initial_directions(K), m).astype(np.float32)        # (K, 3)
    params = {"q": np.repeat(np.asarray(mono, np.float32)[..., None] / K, K, axis=-1) * am[..., None],
              "v": np.broadcast_to(v0, am.shape + (K, 3)) * am[..., None, None]}
    args = [jnp.asarray(batch[k], jnp.float32) for k in
            ("R", "atom_mask", "grid", "esp", "grid_mask", "net_charge")]
    best, loss = _fit_padded(jax.tree.map(jnp.asarray, params), *args, steps=int(steps),
                             max_displacement=m)
    q, x = dcm_sites(best, args[0], args[1], args[5], m)
    q, x, loss = jax.device_get((q, x, loss))
    return {"charges": np.asarray(q), "positions": np.asarray(x),
            "esp_rmse": np.sqrt(np.maximum(np.asarray(loss, np.float64), 0.0))}


def fit_dcm_dataset(data, n_dcm: int = 2, max_displacement: float = DEFAULT_MAX_DISPLACEMENT,
                    steps: int = DEFAULT_STEPS, batch_size: int = 16,
                    init_offset: float = DEFAULT_INIT_OFFSET,
                    progress: Optional[Callable[[int], None]] = None) -> dict:
    """The fitted-DCM limit and the fitted monopoles of every conformer of a dataset.

    Batches are padded to :func:`dcmnet.data.batching.bucket_shapes` (few shapes, few
    compiles) and fitted with :func:`fit_dcm_batch`; padding does not change a result.

    Args:
        data: a :class:`dcmnet.data.dataset.Dataset`.
        n_dcm, max_displacement, steps, init_offset: as in :func:`fit_dcm_batch`.
        batch_size: conformers per vmapped fit.
        progress: called with the number of conformers finished in each batch.
    Returns:
        dict: ``esp_rmse_dcm`` and ``esp_rmse_monopoles`` (M,) kcal/(mol·e), ``ratio`` (M,)
        DCM/monopoles, ``charges`` (sum n_atoms, K) e, ``positions`` (sum n_atoms, K, 3) Å,
        ``net_charge_error`` (M,) e (|Σq − Q|), ``max_site_distance`` (M,) Å, and the
        settings ``n_dcm``, ``max_displacement``, ``steps``.
    Raises:
        ConfigError: bad options; DataError: a conformer with fewer ESP points than atoms
            or a point on an atom (from :func:`dcmnet.fitting.fit_monopoles`).
    """
    from dcmnet.data.batching import BatchIterator
    from dcmnet.fitting import fit_monopoles, monopole_esp

    _check_options(n_dcm, max_displacement, steps)
    M, K = len(data), int(n_dcm)
    ao = data.atom_offsets
    mono_q = np.zeros(int(ao[-1]))
    rmse_mono = np.zeros(M)
    for i in range(M):
        mol = data.molecule(i)
        try:
            q = fit_monopoles(mol["R"], mol["grid"], mol["esp"], mol["net_charge"])
        except DataError as exc:
            raise DataError(f"{data.source}: molecule {i} ({mol['name']}): {exc}") from exc
        mono_q[ao[i]:ao[i + 1]] = q
        err = (monopole_esp(mol["R"], q, mol["grid"]) - mol["esp"]) * HARTREE_TO_KCAL_MOL
        rmse_mono[i] = math.sqrt(float(np.mean(err**2)))
    out_q = np.zeros((int(ao[-1]), K))
    out_x = np.zeros((int(ao[-1]), K, 3))
    rmse = np.full(M, np.nan)
    it = BatchIterator(data, min(int(batch_size), M), shuffle=False)
    for (k, idx), batch in zip(it.batch_plan(0), it.epoch_batches(0)):
        A = batch["R"].shape[1]
        mono = np.zeros((len(batch["index"]), A))
        for j, i in enumerate(idx):
            mono[j, :data.n_atoms[i]] = mono_q[ao[i]:ao[i + 1]]
        res = fit_dcm_batch(batch, mono, K, max_displacement, steps, init_offset)
        for j, i in enumerate(idx):
            n = int(data.n_atoms[i])
            out_q[ao[i]:ao[i + 1]] = res["charges"][j, :n]
            out_x[ao[i]:ao[i + 1]] = res["positions"][j, :n]
            rmse[i] = res["esp_rmse"][j]
        if progress is not None:
            progress(len(idx))
    dist = np.linalg.norm(out_x - data.R[:, None, :], axis=-1).max(axis=1)
    seg = np.repeat(np.arange(M), data.n_atoms)
    qsum = np.bincount(seg, weights=out_q.sum(axis=1), minlength=M)
    return {"esp_rmse_dcm": rmse, "esp_rmse_monopoles": rmse_mono,
            "ratio": rmse / np.where(rmse_mono > 0, rmse_mono, np.nan),
            "charges": out_q, "positions": out_x,
            "net_charge_error": np.abs(qsum - data.net_charge),
            "max_site_distance": np.maximum.reduceat(dist, ao[:-1]) if M else dist,
            "n_dcm": K, "max_displacement": float(max_displacement), "steps": int(steps)}
