"""The fitted-DCM limit: distributed charges fitted directly to each conformer's own ESP.

For one conformer with atoms at ``R`` (N, 3) Å, net charge ``Q`` e and reference ESP ``V``
on grid points ``r_k`` (Hartree/e), ``K = n_dcm`` charge sites per atom are placed at
``x_ik = R_i + d_ik`` with charges ``q_ik`` and fitted by minimising

.. math:: L = \\frac{1}{G} \\sum_k \\Big(\\sum_{ik} \\frac{q_{ik}}{|r_k - x_{ik}|} - V_k\\Big)^2

(ESP of point charges with the safe kernel of
:func:`dcmnet.electrostatics.inverse_distances`, as in
:func:`~dcmnet.electrostatics.esp_from_charges`; the loss is evaluated in kcal/(mol·e)).
The parametrisation is the model's (:mod:`dcmnet.model`):

* the displacement is bounded smoothly, ``d = v / sqrt(1 + |v|²/m²)`` with
  ``m = max_displacement``, so ``|d| < m`` for every free vector ``v``;
* the charges satisfy ``Σq = Q`` as a constraint of their least-squares solve, then are
  projected, ``q ← q − (Σq − Q)/(N·K)`` over real atoms, so ``Σq = Q`` exactly (not a
  penalty).

Variable projection (Golub & Pereyra, SIAM J. Numer. Anal. 10, 413 (1973)): for given site
positions the best charges are a linear least-squares problem with one equality constraint,
solved exactly at every evaluation (:func:`_solve_charges`, the Lagrange system of
:func:`dcmnet.fitting.fit_monopoles` in JAX, float64); only the free displacements ``v`` are
optimised, with L-BFGS and a zoom line search (``optax.lbfgs``; Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Alg. 7.4 and 3.5), per conformer (``jax.vmap``, so conformers never
share a step length), for ``steps`` iterations; the best iterate is kept.

Start: the sites of each atom displaced by ``init_offset`` Å along K fixed directions with
zero mean (a centred Fibonacci spiral, :func:`dcmnet.surface.fibonacci_sphere`), so the
optimisation breaks the site symmetry deterministically. ``K = 1`` starts at the atoms
(zero displacement), where the solved charges are exactly the ESP-fitted monopoles of
:func:`dcmnet.fitting.fit_monopoles` (``steps = 0`` reproduces them); since the start of
``K ≥ 2`` contains that monopole solution (equal charges on nearby sites) as a special
case to second order in ``init_offset``, no fit is worse than the monopoles. The problem
is not convex: the result is an upper bound of the true limit (a local optimum).

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

from dcmnet.config import FIT_DCM_STEPS, ModelConfig
from dcmnet.electrostatics import inverse_distances
from dcmnet.errors import DataError
from dcmnet.units import HARTREE_TO_KCAL_MOL

#: Default bound on a site's distance from its atom, Å (the model's default).
DEFAULT_MAX_DISPLACEMENT = ModelConfig().max_displacement
#: Default L-BFGS iterations per conformer.
DEFAULT_STEPS = FIT_DCM_STEPS
#: Default distance of the start sites from their atom, Å.
DEFAULT_INIT_OFFSET = 0.05

__all__ = ["bounded_displacement", "initial_directions", "fit_dcm_batch", "fit_dcm_dataset", "DEFAULT_MAX_DISPLACEMENT", "DEFAULT_STEPS"]


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


def _design(v, R, atom_mask, grid, grid_mask, K, max_displacement):
    """(G, A·K) ESP kernel in kcal/(mol·e) per e of one conformer's sites, masked rows and
    columns, and the site positions (A·K, 3) Å."""
    A = R.shape[0]
    d = bounded_displacement(v, max_displacement) * atom_mask[:, None, None]
    x = (R[:, None, :] + d).reshape(A * K, 3)
    smask = jnp.repeat(atom_mask, K)
    T = inverse_distances(grid, x) * HARTREE_TO_KCAL_MOL
    return T * grid_mask[:, None] * smask[None, :], x, smask


#: Ridge of the charge normal equations, relative to the mean diagonal (float64).
RIDGE = 1e-10


def _solve_charges(T, b, smask, net_charge):
    """Charges (S,) minimising ``|T q − b|² + λ|q|²`` with ``Σ q = Q`` over real sites.

    Lagrange (KKT) system of the normal equations, as :func:`dcmnet.fitting.fit_monopoles`
    (Singh & Kollman 1984), solved in float64 with a tiny ridge ``λ = RIDGE × mean diag``
    (near-coincident sites make ``TᵀT`` nearly singular); padded sites get 0; then the
    model's projection removes the rounding drift, so ``Σ q = Q`` exactly.
    """
    S = smask.shape[0]
    n = jnp.sum(smask)
    H = T.T @ T
    lam = RIDGE * jnp.trace(H) / jnp.maximum(n, 1.0)
    H = H + jnp.diag(lam * smask + (1.0 - smask))
    kkt = jnp.zeros((S + 1, S + 1), T.dtype).at[:S, :S].set(H)
    kkt = kkt.at[:S, S].set(smask).at[S, :S].set(smask).at[S, S].set(jnp.where(n > 0, 0.0, 1.0))
    rhs = jnp.concatenate([T.T @ b, jnp.reshape(net_charge, (1,))])
    q = jnp.linalg.solve(kkt, rhs)[:S] * smask
    return q - smask * (jnp.sum(q) - net_charge) / jnp.maximum(n, 1.0)


def _loss_one(v, R, atom_mask, grid, esp, grid_mask, net_charge, K, max_displacement):
    """Mean squared ESP error (kcal/(mol·e))² of one conformer with the charges that are
    optimal for the site positions (variable projection: Golub & Pereyra, SIAM J. Numer.
    Anal. 10, 413 (1973)); the charges are held fixed in the gradient, which is exact at the
    optimum (the derivative of the inner minimum in ``q`` vanishes)."""
    T, _, smask = _design(v, R, atom_mask, grid, grid_mask, K, max_displacement)
    b = esp * grid_mask * HARTREE_TO_KCAL_MOL
    q = jax.lax.stop_gradient(_solve_charges(T, b, smask, net_charge))
    r = T @ q - b
    return jnp.sum(r * r) / jnp.maximum(jnp.sum(grid_mask), 1.0)


@functools.partial(jax.jit, static_argnames=("steps", "K", "max_displacement", "memory_size"))
def _fit_padded(v0, R, atom_mask, grid, esp, grid_mask, net_charge, *, steps: int, K: int,
                max_displacement: float, memory_size: int = 10):
    """Per-conformer L-BFGS over the free displacements (vmapped): the best ``v`` (B, A, K, 3),
    its charges (B, A·K) e and loss (B,)."""

    def one(p0, R, am, g, e, gm, Q):
        f = functools.partial(_loss_one, R=R, atom_mask=am, grid=g, esp=e, grid_mask=gm,
                              net_charge=Q, K=K, max_displacement=max_displacement)
        opt = optax.lbfgs(memory_size=memory_size)
        vg = optax.value_and_grad_from_state(f)

        def body(_, carry):
            p, state, best_p, best_l = carry
            value, grad = vg(p, state=state)
            better = jnp.isfinite(value) & (value < best_l)
            best_p = jnp.where(better, p, best_p)
            best_l = jnp.where(better, value, best_l)
            upd, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=f)
            return optax.apply_updates(p, upd), state, best_p, best_l

        carry = (p0, opt.init(p0), p0, f(p0))
        p, _, best_p, best_l = jax.lax.fori_loop(0, steps, body, carry)
        last = f(p)
        take = jnp.isfinite(last) & (last < best_l)
        best_p = jnp.where(take, p, best_p)
        T, _, smask = _design(best_p, R, am, g, gm, K, max_displacement)
        q = _solve_charges(T, e * gm * HARTREE_TO_KCAL_MOL, smask, Q)
        return best_p, q, jnp.where(take, last, best_l)

    return jax.vmap(one)(v0, R, atom_mask, grid, esp, grid_mask, net_charge)


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


def fit_dcm_batch(batch: dict, n_dcm: int = 2,
                  max_displacement: float = DEFAULT_MAX_DISPLACEMENT,
                  steps: int = DEFAULT_STEPS, init_offset: float = DEFAULT_INIT_OFFSET) -> dict:
    """Fit ``n_dcm`` charges per atom to the ESP of every conformer of a padded batch.

    Args:
        batch: a padded batch (:func:`dcmnet.data.batching.make_batch`): ``R`` (B, A, 3) Å,
            ``atom_mask`` (B, A), ``grid`` (B, G, 3) Å, ``esp`` (B, G) Hartree/e,
            ``grid_mask`` (B, G), ``net_charge`` (B,) e.
        n_dcm: K ≥ 1 sites per atom. max_displacement: bound on ``|x − R|``, Å (> 0).
        steps: L-BFGS iterations per conformer (0: the start itself).
        init_offset: distance of the start sites from their atom, Å (capped at half the
            bound).
    Returns:
        dict of NumPy arrays: ``charges`` (B, A, K) e (Σ = net charge to float32
        rounding, 0 on padding), ``positions`` (B, A, K, 3) Å, ``esp_rmse`` (B,)
        kcal/(mol·e) over each conformer's real points (0 for dummy molecules). Computed
        in float64 (``jax.enable_x64`` around the call only).
    Raises:
        ConfigError: n_dcm < 1, max_displacement ≤ 0 or steps < 0.
    """
    _check_options(n_dcm, max_displacement, steps)
    K, m = int(n_dcm), float(max_displacement)
    am = np.asarray(batch["atom_mask"], np.float32)
    offset = min(float(init_offset), 0.5 * m)
    v0 = _unbounded(offset * initial_directions(K), m)                           # (K, 3)
    v0 = np.broadcast_to(v0, am.shape + (K, 3)) * am[..., None, None]
    with jax.enable_x64(True):                 # float64 normal equations (local switch)
        args = [jnp.asarray(np.asarray(batch[k], np.float64)) for k in
                ("R", "atom_mask", "grid", "esp", "grid_mask", "net_charge")]
        best, q, loss = _fit_padded(jnp.asarray(v0, jnp.float64), *args, steps=int(steps),
                                    K=K, max_displacement=m)
        x = args[0][:, :, None, :] + bounded_displacement(best, m) * args[1][..., None, None]
        q, x, loss = jax.device_get((q, x, loss))
    B, A = am.shape
    return {"charges": np.asarray(q).reshape(B, A, K), "positions": np.asarray(x),
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
    rmse_mono = np.zeros(M)
    for i in range(M):
        mol = data.molecule(i)
        try:
            q = fit_monopoles(mol["R"], mol["grid"], mol["esp"], mol["net_charge"])
        except DataError as exc:
            raise DataError(f"{data.source}: molecule {i} ({mol['name']}): {exc}") from exc
        err = (monopole_esp(mol["R"], q, mol["grid"]) - mol["esp"]) * HARTREE_TO_KCAL_MOL
        rmse_mono[i] = math.sqrt(float(np.mean(err**2)))
    out_q = np.zeros((int(ao[-1]), K))
    out_x = np.zeros((int(ao[-1]), K, 3))
    rmse = np.full(M, np.nan)
    it = BatchIterator(data, min(int(batch_size), M), shuffle=False)
    for (k, idx), batch in zip(it.batch_plan(0), it.epoch_batches(0)):
        res = fit_dcm_batch(batch, K, max_displacement, steps, init_offset)
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
