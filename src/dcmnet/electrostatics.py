"""Electrostatics of point charges: ESP on grid points and dipole moments (pure JAX).

Units (see ``docs/conventions.md``): positions and grid points in Å, charges in e, the
electrostatic potential (ESP) in Hartree/e and dipoles in e·Å. The only conversion factor,
Å→Bohr, is taken from :mod:`dcmnet.units`.

Padded batches: padded charge sites carry ``q = 0`` and may sit anywhere (often at the
origin); padded grid points sit at the origin and are flagged by ``grid_mask = 0``. A
site–point distance below :data:`MIN_DISTANCE` contributes exactly 0 to the ESP and has a
zero gradient (the "double ``where``" pattern: the distance is replaced by a safe value
*before* the division, and the result is masked *after*), so that neither the values nor
their gradients ever become NaN.

All functions are free of Python control flow on array values and can be jitted,
differentiated and vmapped.

Shapes in the signatures are jaxtyping annotations in the dimension names of
:data:`dcmnet.data.batching.DIMENSIONS` (B molecules, G grid points, S sites, A atoms,
K = n_dcm sites per atom, C multipole parameters; ``...`` any leading dimensions).
"""
from __future__ import annotations

from typing import Optional, no_type_check

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Shaped

from dcmnet.units import ANGSTROM_TO_BOHR

#: Site–point distances (Å) below this count as "coincident": their contribution to the
#: ESP is 0 (with a zero gradient) instead of infinite/NaN. Real ESP grids lie on van der
#: Waals shells, far above this.
MIN_DISTANCE: float = 1e-6

__all__ = [
    "MIN_DISTANCE",
    "inverse_distances",
    "esp_from_charges",
    "dipole_from_charges",
    "flatten_sites",
    "MULTIPOLE_COMPONENTS",
    "multipole_kernels",
    "esp_from_multipoles",
]


def inverse_distances(points: Float[ArrayLike, "... G 3"], sites: Float[ArrayLike, "... S 3"]
                      ) -> Float[Array, "... G S"]:
    """Safe inverse distances ``1 / |points_k - sites_j|`` in 1/Bohr.

    Args:
        points: (..., G, 3) points, Å.
        sites: (..., S, 3) sites, Å (leading dimensions broadcast with ``points``).

    Returns:
        (..., G, S) inverse distances in 1/Bohr; entries whose distance is below
        :data:`MIN_DISTANCE` are exactly 0 and have a zero gradient.
    """
    points = jnp.asarray(points)
    sites = jnp.asarray(sites)
    # One (..., G, S) difference per Cartesian component instead of a (..., G, S, 3) block
    # reduced over its last axis: XLA fuses the three into one elementwise loop, which on
    # CPU is 4-8x faster forward + backward (BENCHMARKS.md, "ESP block") and
    # gives the same sum (x² + y²) + z² in float32.
    d2 = None
    for c in range(3):
        dc = points[..., :, None, c] - sites[..., None, :, c]  # (..., G, S) Å
        d2 = dc * dc if d2 is None else d2 + dc * dc  # (..., G, S) Å²
    ok = d2 > MIN_DISTANCE * MIN_DISTANCE
    # First where: never take sqrt/divide at (near) zero, so the gradient stays finite.
    d = jnp.sqrt(jnp.where(ok, d2, 1.0)) * ANGSTROM_TO_BOHR  # Bohr
    # Second where: the masked entries contribute exactly 0.
    return jnp.where(ok, 1.0 / d, 0.0)


def _esp_dense(charges: Float[Array, "B S"], positions: Float[Array, "B S 3"],
               grid: Float[Array, "B G 3"]) -> Float[Array, "B G"]:
    """(B, G) ESP for (B, S) charges at (B, S, 3) sites on (B, G, 3) points (no masking)."""
    inv = inverse_distances(grid, positions)  # (B, G, S)
    return jnp.einsum("bgs,bs->bg", inv, charges)


@no_type_check  # no runtime shape check: its own ValueError names the fix (flatten_sites)
def esp_from_charges(
    charges: Float[ArrayLike, "B S"],
    positions: Float[ArrayLike, "B S 3"],
    grid: Float[ArrayLike, "B G 3"],
    grid_mask: Optional[Shaped[ArrayLike, "B G"]] = None,
    chunk_size: Optional[int] = None,
) -> Float[Array, "B G"]:
    r"""Electrostatic potential of point charges on grid points.

    .. math:: V(\mathbf r_k) = \sum_j \frac{q_j}{|\mathbf r_k - \mathbf x_j|}

    in atomic units (Coulomb's law with :math:`4\pi\varepsilon_0 = 1`): charges in e,
    distances converted from Å to Bohr, so that the potential is in Hartree/e. One
    elementary charge at 1 Å gives ``units.BOHR_TO_ANGSTROM`` Hartree/e (1 Bohr in Å, CODATA 2018).

    Args:
        charges: (B, S) charges, e. Padded sites must carry 0.
        positions: (B, S, 3) charge positions, Å (padded sites anywhere, e.g. the origin).
        grid: (B, G, 3) ESP points, Å (padded points anywhere, e.g. the origin).
        grid_mask: optional (B, G) mask, 1 for real points, 0 for padding; padded points
            give exactly 0. ``None`` treats every point as real.
        chunk_size: if given, the G points are processed ``chunk_size`` at a time (the
            memory of the (B, chunk, S) distance block instead of (B, G, S)); G is padded
            internally to a multiple of ``chunk_size``. The result equals the unchunked one
            up to float32 rounding of the sum (a few ulp of the largest value; XLA may
            order the summation differently for different block shapes).

    Returns:
        (B, G) ESP in Hartree/e.

    Raises:
        ValueError: charges not (B, S), positions not (B, S, 3) or grid not (B, G, 3) (the
            message points to :func:`flatten_sites` for the model's (B, A, K) output), or
            ``chunk_size < 1``.

    Notes:
        A site closer than :data:`MIN_DISTANCE` to a grid point contributes 0 (and a zero
        gradient) instead of infinity, so padded charges and padded points at the origin
        never create NaN in values or gradients.
    """
    charges = jnp.asarray(charges)
    positions = jnp.asarray(positions)
    grid = jnp.asarray(grid)
    if charges.ndim != 2 or positions.ndim != 3 or grid.ndim != 3:
        raise ValueError(
            "esp_from_charges expects charges (B, S), positions (B, S, 3) and grid (B, G, 3); "
            f"got {charges.shape}, {positions.shape}, {grid.shape} "
            "(use flatten_sites for the model's (B, A, n) output)")
    B, G, _ = grid.shape
    if chunk_size is None or chunk_size >= G:
        esp = _esp_dense(charges, positions, grid)
    else:
        chunk_size = int(chunk_size)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
        n_chunks = -(-G // chunk_size)
        pad = n_chunks * chunk_size - G
        grid_p = jnp.pad(grid, ((0, 0), (0, pad), (0, 0)))
        # (n_chunks, B, chunk, 3): lax.map runs one chunk at a time.
        chunks = jnp.moveaxis(grid_p.reshape(B, n_chunks, chunk_size, 3), 1, 0)
        out = jax.lax.map(lambda g: _esp_dense(charges, positions, g), chunks)
        esp = jnp.moveaxis(out, 0, 1).reshape(B, n_chunks * chunk_size)[:, :G]
    if grid_mask is not None:
        esp = jnp.where(jnp.asarray(grid_mask) > 0, esp, 0.0)
    return esp


def dipole_from_charges(charges: Float[ArrayLike, "B S"], positions: Float[ArrayLike, "B S 3"],
                        origin: Float[ArrayLike, "B 3"]) -> Float[Array, "B 3"]:
    r"""Dipole moment of point charges about an origin.

    .. math:: \boldsymbol\mu = \sum_j q_j (\mathbf x_j - \mathbf o)

    For a charged molecule the dipole depends on the origin; dcmnet uses the centre of
    mass (``com`` of a batch). Padded sites must carry 0 charge.

    Args:
        charges: (B, S) charges, e.
        positions: (B, S, 3) charge positions, Å.
        origin: (B, 3) origin, Å (usually the centre of mass).

    Returns:
        (B, 3) dipole, e·Å (``units.eangstrom_to_debye`` converts to Debye).
    """
    charges = jnp.asarray(charges)
    rel = jnp.asarray(positions) - jnp.asarray(origin)[:, None, :]
    return jnp.einsum("bs,bsx->bx", charges, rel)


@no_type_check  # no runtime shape check: its own ValueError says what it expects
def flatten_sites(charges: Float[ArrayLike, "B A K"], positions: Float[ArrayLike, "B A K 3"]
                  ) -> tuple[Float[Array, "B S"], Float[Array, "B S 3"]]:
    """Flattens the model's per-atom charge sites into one list of sites per molecule.

    Args:
        charges: (B, A, K) charges, e (model output, K = n_dcm).
        positions: (B, A, K, 3) absolute charge positions, Å (model output).

    Returns:
        ``(charges (B, S), positions (B, S, 3))`` with S = A·K; site ``i*K + k`` is charge
        ``k`` of atom ``i`` (atom-major order, the axes are never swapped).

    Raises:
        ValueError: other shapes (checked here, not by the runtime shape checker).
    """
    charges = jnp.asarray(charges)
    positions = jnp.asarray(positions)
    if charges.ndim != 3 or positions.shape != charges.shape + (3,):
        raise ValueError(
            "flatten_sites expects charges (B, A, n) and positions (B, A, n, 3); "
            f"got {charges.shape} and {positions.shape}")
    B, A, n = charges.shape
    return charges.reshape(B, A * n), positions.reshape(B, A * n, 3)


# ------------------------------------------------------------------ atomic point multipoles
#: Parameters per site of a point-multipole expansion up to each order: charge (1), + dipole
#: (3), + traceless quadrupole (5 independent components).
MULTIPOLE_COMPONENTS = {0: 1, 1: 4, 2: 9}
#: Order of the five independent traceless-quadrupole components in
#: :func:`multipole_kernels` (Θzz = −Θxx − Θyy).
QUADRUPOLE_COMPONENTS = ("xx", "yy", "xy", "xz", "yz")


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, float, int)) for a in arrays) else jnp


def multipole_kernels(points: Float[ArrayLike, "G 3"], sites: Float[ArrayLike, "S 3"],
                      order: int = 2) -> Float[Array | np.ndarray, "G S C"]:
    r"""ESP kernels of atomic point multipoles: V_k = Σ_s Σ_c T[k, s, c] p[s, c].

    For a site at :math:`\mathbf R`, :math:`\mathbf d = \mathbf r - \mathbf R`,
    :math:`d = |\mathbf d|`, in atomic units (:math:`4\pi\varepsilon_0 = 1`):

    .. math:: V = \frac{q}{d} + \frac{\boldsymbol\mu\cdot\mathbf d}{d^3}
              + \frac{\Theta_{ab}\, d_a d_b}{d^5}

    with the traceless quadrupole in Buckingham's convention,
    :math:`\Theta_{ab} = \tfrac12 \sum_i q_i (3 x_{ia} x_{ib} - x_i^2 \delta_{ab})`; the last
    term is :math:`\tfrac13 \Theta_{ab} T_{ab}` with
    :math:`T_{ab} = \nabla_a\nabla_b\, d^{-1} = (3 d_a d_b - d^2\delta_{ab})/d^5`
    (A. J. Stone, *The Theory of Intermolecular Forces*, 2nd ed., Oxford 2013, ch. 2–3;
    A. D. Buckingham, Q. Rev. Chem. Soc. 13, 183 (1959)).

    Parameter layout per site (``c``): ``[q, μx, μy, μz, Θxx, Θyy, Θxy, Θxz, Θyz]`` cut to
    ``MULTIPOLE_COMPONENTS[order]`` entries; Θzz = −Θxx − Θyy, so the quadrupole columns
    are ``(dx² − dz²), (dy² − dz²), 2 dx dy, 2 dx dz, 2 dy dz`` over d⁵.

    Units: points and sites in Å, charges in e, dipoles in e·Å, quadrupoles in e·Å²; the
    kernels times these give the ESP in Hartree/e (each term is computed in Å and
    multiplied by ``units.BOHR_TO_ANGSTROM``, i.e. e/Å → e/Bohr).

    NumPy float64 inputs give NumPy float64 kernels (the least-squares fits of
    :mod:`dcmnet.fitting`); JAX inputs give JAX arrays (jit/grad-able).

    Args:
        points: (G, 3) grid points, Å.
        sites: (S, 3) multipole sites (atoms), Å.
        order: 0 (monopoles), 1 (+ dipoles) or 2 (+ quadrupoles).
    Returns:
        (G, S, MULTIPOLE_COMPONENTS[order]) kernels in Hartree/e per unit parameter.
    Raises:
        ValueError: order outside 0..2. Coincident points and sites (d < MIN_DISTANCE)
            give 0 kernels, as in :func:`inverse_distances`.
    """
    from dcmnet.units import BOHR_TO_ANGSTROM

    if order not in MULTIPOLE_COMPONENTS:
        raise ValueError(f"order must be 0, 1 or 2, got {order}")
    xp = _xp(points, sites)
    d = points[:, None, :] - sites[None, :, :]                    # (G, S, 3) Å
    r2 = xp.sum(d * d, axis=-1)
    ok = r2 > MIN_DISTANCE * MIN_DISTANCE
    r2s = xp.where(ok, r2, 1.0)
    inv = xp.where(ok, 1.0 / xp.sqrt(r2s), 0.0)                   # 1/Å
    cols = [inv]
    if order >= 1:
        inv3 = inv ** 3
        cols += [d[..., 0] * inv3, d[..., 1] * inv3, d[..., 2] * inv3]
    if order >= 2:
        inv5 = inv ** 5
        x, y, z = d[..., 0], d[..., 1], d[..., 2]
        cols += [(x * x - z * z) * inv5, (y * y - z * z) * inv5, 2 * x * y * inv5,
                 2 * x * z * inv5, 2 * y * z * inv5]
    return xp.stack(cols, axis=-1) * BOHR_TO_ANGSTROM


def esp_from_multipoles(points: Float[ArrayLike, "G 3"], sites: Float[ArrayLike, "S 3"],
                        charges: Float[ArrayLike, " S"],
                        dipoles: Optional[Float[ArrayLike, "S 3"]] = None,
                        quadrupoles: Optional[Float[ArrayLike, "S 3 3"]] = None
                        ) -> Float[Array | np.ndarray, " G"]:
    r"""ESP of atomic point multipoles on points (formula: :func:`multipole_kernels`).

    Args:
        points: (G, 3) Å; sites: (S, 3) Å.
        charges: (S,) e; dipoles: optional (S, 3) e·Å; quadrupoles: optional (S, 3, 3)
            traceless Buckingham quadrupoles, e·Å²; only Θxx, Θyy, Θxy, Θxz, Θyz are read
            (Θzz = −Θxx − Θyy), so a trace is ignored.
    Returns:
        (G,) ESP in Hartree/e (NumPy for NumPy inputs, JAX otherwise).
    """
    xp = _xp(points, sites)
    order = 2 if quadrupoles is not None else (1 if dipoles is not None else 0)
    T = multipole_kernels(points, sites, order)
    p = [charges[:, None]]
    if order >= 1:
        p.append(dipoles if dipoles is not None else xp.zeros((sites.shape[0], 3)))
    if order >= 2:
        Q = quadrupoles
        p.append(xp.stack([Q[:, 0, 0], Q[:, 1, 1], Q[:, 0, 1], Q[:, 0, 2], Q[:, 1, 2]], -1))
    P = xp.concatenate(p, axis=-1)                               # (S, K)
    return xp.einsum("gsk,sk->g", T, P)
