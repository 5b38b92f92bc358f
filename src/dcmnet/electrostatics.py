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
"""
from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

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
]


def inverse_distances(points: jax.Array, sites: jax.Array) -> jax.Array:
    """Safe inverse distances ``1 / |points_k - sites_j|`` in 1/Bohr.

    Args:
        points: (..., G, 3) points, Å.
        sites: (..., S, 3) sites, Å (leading dimensions broadcast with ``points``).

    Returns:
        (..., G, S) inverse distances in 1/Bohr; entries whose distance is below
        :data:`MIN_DISTANCE` are exactly 0 and have a zero gradient.
    """
    diff = points[..., :, None, :] - sites[..., None, :, :]  # (..., G, S, 3) Å
    d2 = jnp.sum(diff * diff, axis=-1)  # (..., G, S) Å²
    ok = d2 > MIN_DISTANCE * MIN_DISTANCE
    # First where: never take sqrt/divide at (near) zero, so the gradient stays finite.
    d = jnp.sqrt(jnp.where(ok, d2, 1.0)) * ANGSTROM_TO_BOHR  # Bohr
    # Second where: the masked entries contribute exactly 0.
    return jnp.where(ok, 1.0 / d, 0.0)


def _esp_dense(charges: jax.Array, positions: jax.Array, grid: jax.Array) -> jax.Array:
    """(B, G) ESP for (B, S) charges at (B, S, 3) sites on (B, G, 3) points (no masking)."""
    inv = inverse_distances(grid, positions)  # (B, G, S)
    return jnp.einsum("bgs,bs->bg", inv, charges)


def esp_from_charges(
    charges: jax.Array,
    positions: jax.Array,
    grid: jax.Array,
    grid_mask: Optional[jax.Array] = None,
    chunk_size: Optional[int] = None,
) -> jax.Array:
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


def dipole_from_charges(charges: jax.Array, positions: jax.Array,
                        origin: jax.Array) -> jax.Array:
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


def flatten_sites(charges: jax.Array, positions: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Flattens the model's per-atom charge sites into one list of sites per molecule.

    Args:
        charges: (B, A, n) charges, e (model output).
        positions: (B, A, n, 3) absolute charge positions, Å (model output).

    Returns:
        ``(charges (B, A*n), positions (B, A*n, 3))``; site ``i*n + k`` is charge ``k`` of
        atom ``i`` (atom-major order, the axes are never swapped).
    """
    charges = jnp.asarray(charges)
    positions = jnp.asarray(positions)
    if charges.ndim != 3 or positions.shape != charges.shape + (3,):
        raise ValueError(
            "flatten_sites expects charges (B, A, n) and positions (B, A, n, 3); "
            f"got {charges.shape} and {positions.shape}")
    B, A, n = charges.shape
    return charges.reshape(B, A * n), positions.reshape(B, A * n, 3)
