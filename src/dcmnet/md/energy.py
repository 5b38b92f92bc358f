"""Coulomb energy between distributed charges of different molecules (pure JAX).

.. math::

    E = \\tfrac12 \\sum_{i \\ne j,\\; m_i \\ne m_j} k\\, q_i q_j\\, f(r_{ij})
        + \\sum_{i, k} k\\, q_i Q_k\\, f(r_{ik})

over the charge sites ``i, j`` (charges ``q`` in e at ``x`` in Å, molecule ``m``) and the
external point charges ``k`` (an MM environment, ``Q`` at ``y``), with
``k = e²/(4πε₀)`` = :data:`dcmnet.units.COULOMB_EV_ANGSTROM` eV·Å. Pairs inside one molecule
are excluded (the molecule's own electrostatics is in its reference energy; DCM charges
reproduce the ESP *outside* the molecule). Pairs of external charges are not included: their
energy belongs to the MM engine. The energy is in eV; multiply by
:data:`dcmnet.units.EV_TO_KCAL_MOL` for kcal/mol.

Pair function ``f(r)`` (``method``):

* ``"coulomb"``: ``1/r`` for every pair (no cutoff; non-periodic systems only, or with
  ``cutoff`` a plain truncation, which does not conserve energy and is refused);
* ``"shifted-force"`` (default with a cutoff):
  ``f = 1/r − 1/r_c + (r − r_c)/r_c²`` for ``r < r_c``, else 0 — energy and force go to zero
  continuously at the cutoff (Levitt et al., Comput. Phys. Commun. 91, 215 (1995); the
  undamped case of Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006));
* ``"reaction-field"``: ``f = 1/r + k_rf r² − c_rf`` for ``r < r_c``, with
  ``k_rf = (ε_rf − 1)/((2ε_rf + 1) r_c³)`` and ``c_rf = 1/r_c + k_rf r_c²`` (Tironi et al.,
  J. Chem. Phys. 102, 5451 (1995)); the same expression as OpenMM's ``NonbondedForce`` with
  ``CutoffPeriodic`` / ``CutoffNonPeriodic``, default ``ε_rf = 78.5`` as OpenMM.

Periodic cells: minimum image (fractional displacement minus its rounded value along the
periodic axes) with a real-space cutoff that must not exceed half the smallest
perpendicular width of the cell (checked; :class:`~dcmnet.errors.ConfigError` otherwise).
No Ewald/PME sum: long-range electrostatics beyond ``r_c`` is represented only by the
shifted-force or reaction-field treatment; for neutral molecules of small dipole (water) and
``r_c`` = 9–12 Å the shifted-force energy differs from Ewald by a few per cent of the total,
forces are more accurate (Fennell & Gezelter 2006).

Memory: the pair sum runs in blocks of ``block_size`` sites against all sites (recomputed
in the backward pass, ``jax.checkpoint``), so energy and gradient need
O(block_size × n_sites) memory.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dcmnet.errors import ConfigError
from dcmnet.units import COULOMB_EV_ANGSTROM, EV_TO_KCAL_MOL

__all__ = ["coulomb_energy", "pair_function", "check_cutoff", "METHODS",
           "DEFAULT_EPSILON_RF", "COULOMB_EV_ANGSTROM", "EV_TO_KCAL_MOL"]

#: Pair treatments understood by :func:`coulomb_energy`.
METHODS = ("coulomb", "shifted-force", "reaction-field")
#: Dielectric constant beyond the cutoff for ``reaction-field`` (OpenMM's default).
DEFAULT_EPSILON_RF = 78.5


def pair_function(r, method: str, cutoff: float | None, epsilon_rf: float = DEFAULT_EPSILON_RF):
    """``f(r)`` of the module docstring (1/Å) for distances ``r`` (Å), without the cutoff mask."""
    if method == "coulomb":
        return 1.0 / r
    rc = float(cutoff)
    if method == "shifted-force":
        return 1.0 / r - 1.0 / rc + (r - rc) / (rc * rc)
    if method == "reaction-field":
        k_rf = (epsilon_rf - 1.0) / ((2.0 * epsilon_rf + 1.0) * rc ** 3)
        c_rf = 1.0 / rc + k_rf * rc * rc
        return 1.0 / r + k_rf * r * r - c_rf
    raise ConfigError(f"unknown electrostatics method {method!r}; choose one of "
                      f"{', '.join(METHODS)}")


def check_cutoff(cell, pbc, cutoff: float | None, method: str) -> None:
    """Validate ``method``/``cutoff`` for a cell.

    Raises:
        ConfigError: unknown method; a periodic cell without cutoff or with plain Coulomb;
            a cutoff above half the smallest perpendicular width of the periodic cell; a
            method that needs a cutoff without one; plain Coulomb with a cutoff.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown electrostatics method {method!r}; choose one of "
                          f"{', '.join(METHODS)}")
    pbc = np.asarray(pbc, bool) if pbc is not None else np.zeros(3, bool)
    if method == "coulomb":
        if pbc.any():
            raise ConfigError("a periodic cell needs a cutoff and method 'shifted-force' or "
                              "'reaction-field' (plain Coulomb has no minimum image sum); "
                              "e.g. DCMNetCalculator(..., cutoff=10.0)")
        if cutoff is not None:
            raise ConfigError("method 'coulomb' with a cutoff would truncate the potential "
                              "(energy not conserved); use 'shifted-force' or "
                              "'reaction-field'.")
        return
    if cutoff is None or not float(cutoff) > 0:
        raise ConfigError(f"method {method!r} needs a positive cutoff (Å), got {cutoff!r}")
    if pbc.any():
        cell = np.asarray(cell, np.float64)
        if pbc.sum() != 3:
            raise ConfigError("partly periodic cells are not supported; make the cell "
                              "periodic in all three directions or in none.")
        vol = abs(np.linalg.det(cell))
        widths = [vol / np.linalg.norm(np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3]))
                  for a in range(3)]
        if float(cutoff) > 0.5 * min(widths) + 1e-9:
            raise ConfigError(f"cutoff {float(cutoff):g} Å exceeds half the smallest cell "
                              f"width ({0.5 * min(widths):.3f} Å), so the minimum image is "
                              "not unique; use a smaller cutoff or a larger cell.")


def _min_image(d, cell, inv_cell):
    s = d @ inv_cell
    s = s - jnp.round(jax.lax.stop_gradient(s))
    return s @ cell


def _site_blocks(x, q, mol, block_size: int):
    """Sites padded (charge 0, molecule −1) to whole blocks of ``bs`` sites.

    Returns:
        ``(xr (nb, bs, 3), qr (nb, bs), mr (nb, bs), bs)``.
    """
    S = x.shape[0]
    bs = int(min(block_size, max(S, 1)))
    nb = -(-S // bs)
    pad = nb * bs - S
    xr = jnp.concatenate([x, jnp.zeros((pad, 3), x.dtype)]).reshape(nb, bs, 3)
    qr = jnp.concatenate([q, jnp.zeros((pad,), x.dtype)]).reshape(nb, bs)
    mr = jnp.concatenate([mol, -jnp.ones((pad,), jnp.int32)]).reshape(nb, bs)
    return xr, qr, mr, bs


def _image_fn(cell, orthorhombic: bool | None, dtype):
    """``d -> d`` for the displacement vectors (..., 3), Å: the minimum image in ``cell``
    (per axis for an orthorhombic cell, detected when ``orthorhombic`` is None and the cell
    concrete), the identity for ``cell`` None."""
    if cell is None:
        return lambda d: d
    ortho = bool(orthorhombic)
    if orthorhombic is None and not isinstance(cell, jax.core.Tracer):
        c = np.asarray(cell)
        ortho = bool(np.all(c == np.diag(np.diag(c))))
    cell = jnp.asarray(cell, dtype)
    if ortho:                                        # orthorhombic: per axis, no matmul
        lengths = jnp.diagonal(cell)
        return lambda d: d - lengths * jnp.round(jax.lax.stop_gradient(d / lengths))
    inv_cell = jnp.linalg.inv(cell)
    return lambda d: _min_image(d, cell, inv_cell)


def coulomb_energy(q, x, mol, ext_q=None, ext_x=None, *, cell=None, cutoff: float | None = None,
                   method: str | None = None, epsilon_rf: float = DEFAULT_EPSILON_RF,
                   block_size: int = 1024, orthorhombic: bool | None = None):
    """Electrostatic energy of the module docstring, eV (differentiable w.r.t. everything).

    Args:
        q: (S,) site charges, e; sites with ``mol < 0`` are ignored (padding).
        x: (S, 3) site positions, Å.
        mol: (S,) int molecule index of every site (pairs with equal index excluded).
        ext_q: (K,) external charges, e (optional); ext_x: (K, 3) their positions, Å.
        cell: (3, 3) Å, rows the cell vectors, for a periodic system (all three axes;
            minimum image); None for an isolated system.
        cutoff: real-space cutoff, Å (needed with a cell).
        method: see :data:`METHODS`; default ``"shifted-force"`` with a cutoff, else
            ``"coulomb"``.
        epsilon_rf: dielectric constant of the reaction field.
        block_size: sites per block of the pair sum (memory vs speed).
        orthorhombic: use the per-axis minimum image (about 4× faster; only valid for a
            diagonal cell, and not for derivatives w.r.t. shear of the cell); default:
            detected when ``cell`` is concrete, else the general (matrix) form.
    Returns:
        scalar energy, eV, in the dtype of ``x``.
    Raises:
        ConfigError: bad method/cutoff combination (:func:`check_cutoff`; the cell is only
            checked when concrete).
    """
    method = method or ("shifted-force" if cutoff is not None else "coulomb")
    if cell is not None and not isinstance(cell, jax.core.Tracer):
        check_cutoff(np.asarray(cell), [True] * 3, cutoff, method)
    elif cell is None:
        check_cutoff(None, None, cutoff, method)
    x = jnp.asarray(x)
    dtype = x.dtype
    q = jnp.asarray(q, dtype)
    mol = jnp.asarray(mol, jnp.int32)
    xr, qr, mr, bs = _site_blocks(x, q, mol, block_size)
    image = _image_fn(cell, orthorhombic, dtype)
    rc2 = float(cutoff) ** 2 if cutoff is not None else None
    has_ext = ext_q is not None and np.shape(ext_q)[0] > 0
    if has_ext:
        ext_q = jnp.asarray(ext_q, dtype)
        ext_x = jnp.asarray(ext_x, dtype)

    def pair_sum(xi, qi, ok, xj, qj):
        d = image(xj[None, :, :] - xi[:, None, :])
        r2 = jnp.sum(d * d, axis=-1)
        if rc2 is not None:
            ok = ok & (r2 < rc2)
        r = jnp.sqrt(jnp.where(ok, r2, 1.0))          # double-where: no NaN for masked pairs
        f = jnp.where(ok, pair_function(r, method, cutoff, epsilon_rf), 0.0)
        return jnp.sum(qi[:, None] * qj[None, :] * f)

    @jax.checkpoint
    def block(args):
        xi, qi, mi = args
        ok = (mi[:, None] != mol[None, :]) & (mi[:, None] >= 0) & (mol[None, :] >= 0)
        e = 0.5 * pair_sum(xi, qi, ok, x, q)
        if has_ext:
            ok_e = jnp.broadcast_to((mi >= 0)[:, None], (bs, ext_q.shape[0]))
            e = e + pair_sum(xi, qi, ok_e, ext_x, ext_q)
        return e

    e = jnp.sum(jax.lax.map(block, (xr, qr, mr)))
    return COULOMB_EV_ANGSTROM * e
