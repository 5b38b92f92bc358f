"""Tests of dcmnet.electrostatics: ESP of point charges, dipoles, padding safety, chunking."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcmnet import units
from dcmnet.electrostatics import (
    dipole_from_charges,
    esp_from_charges,
    flatten_sites,
    inverse_distances,
)

# Water (Å), TIP3P-like charges (e).
WATER_R = np.array([[0.0000, 0.0000, 0.1173],
                    [0.0000, 0.7572, -0.4692],
                    [0.0000, -0.7572, -0.4692]])
WATER_Q = np.array([-0.834, 0.417, 0.417])


def _esp_reference(q, x, grid):
    """float64 NumPy reference, Hartree/e, for one molecule."""
    d = np.linalg.norm(grid[:, None, :] - x[None, :, :], axis=-1) / units.BOHR_TO_ANGSTROM
    return (q[None, :] / d).sum(-1)


def test_unit_charge_at_one_angstrom():
    v = esp_from_charges(jnp.ones((1, 1)), jnp.zeros((1, 1, 3)),
                         jnp.array([[[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 2.0]]]))
    v = np.asarray(v)
    assert v.shape == (1, 3)
    np.testing.assert_allclose(v[0, :2], units.BOHR_TO_ANGSTROM, rtol=1e-6)
    np.testing.assert_allclose(v[0, 0], 0.529177, rtol=1e-6)
    np.testing.assert_allclose(v[0, 2], units.BOHR_TO_ANGSTROM / 2, rtol=1e-6)


def test_negative_charge_and_dtype():
    v = esp_from_charges(-jnp.ones((1, 1)) * 2, jnp.array([[[1.0, 1.0, 1.0]]]),
                         jnp.array([[[1.0, 1.0, 4.0]]]))
    assert v.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(v)[0, 0], -2 * units.BOHR_TO_ANGSTROM / 3, rtol=1e-6)


def test_point_dipole_far_field():
    q, d = 1.0, 0.1  # e, Å: p = q d
    charges = jnp.array([[q, -q]])
    pos = jnp.array([[[0.0, 0.0, d / 2], [0.0, 0.0, -d / 2]]])
    r = np.array([10.0, 20.0, 40.0])  # Å, r >> d
    grid = np.zeros((1, 6, 3), np.float32)
    grid[0, :3, 2] = r  # on the axis
    grid[0, 3:, 0] = r  # in the equatorial plane
    v = np.asarray(esp_from_charges(charges, pos, jnp.asarray(grid)))[0]
    p_au = q * d * units.ANGSTROM_TO_BOHR  # e·Bohr
    r_au = r * units.ANGSTROM_TO_BOHR
    expected = p_au / r_au ** 2  # Hartree/e
    np.testing.assert_allclose(v[:3], expected, rtol=0.02)
    assert np.all(np.abs(v[3:]) < 1e-3 * expected)  # no potential in the equatorial plane


def test_matches_float64_reference_and_superposition():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(2, 7)).astype(np.float32) * 0.3
    x = rng.normal(size=(2, 7, 3)).astype(np.float32)
    grid = (rng.normal(size=(2, 50, 3)) * 3 + 0.5).astype(np.float32)
    v = np.asarray(esp_from_charges(q, x, grid))
    for b in range(2):
        np.testing.assert_allclose(v[b], _esp_reference(q[b].astype(np.float64),
                                                        x[b].astype(np.float64),
                                                        grid[b].astype(np.float64)),
                                   rtol=1e-4, atol=1e-6)
    # superposition: the ESP of the union equals the sum of the parts
    va = np.asarray(esp_from_charges(q[:, :3], x[:, :3], grid))
    vb = np.asarray(esp_from_charges(q[:, 3:], x[:, 3:], grid))
    np.testing.assert_allclose(v, va + vb, rtol=1e-5, atol=1e-6)
    # linearity in the charges
    np.testing.assert_allclose(np.asarray(esp_from_charges(2.5 * q, x, grid)), 2.5 * v,
                               rtol=1e-5, atol=1e-6)


def test_padded_grid_points_give_zero():
    grid = np.zeros((1, 5, 3), np.float32)
    grid[0, :3] = [[2.0, 0, 0], [0, 3.0, 0], [0, 0, -2.5]]
    mask = np.array([[1, 1, 1, 0, 0]], np.float32)
    v = np.asarray(esp_from_charges(WATER_Q[None].astype(np.float32),
                                    WATER_R[None].astype(np.float32), grid, grid_mask=mask))
    assert np.all(v[0, 3:] == 0.0)
    assert np.all(v[0, :3] != 0.0)
    np.testing.assert_allclose(v[0, :3], _esp_reference(WATER_Q, WATER_R, grid[0, :3]),
                               rtol=1e-5)


def test_padding_at_origin_no_nan_in_values_or_gradients():
    # real charges + padded charges (q=0) at the origin; real grid points + a padded grid
    # point at the origin; one real grid point also coincides with a (padded) charge.
    charges = jnp.array([[0.5, -0.5, 0.0, 0.0]])
    pos = jnp.array([[[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    grid = jnp.array([[[0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    gmask = jnp.array([[1.0, 0.0, 0.0]])

    def f(c, x, g):
        return jnp.sum(esp_from_charges(c, x, g, grid_mask=gmask) ** 2) + jnp.sum(
            esp_from_charges(c, x, g, grid_mask=gmask, chunk_size=2))

    val = jax.jit(f)(charges, pos, grid)
    grads = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(charges, pos, grid)
    assert np.isfinite(float(val))
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    v = np.asarray(esp_from_charges(charges, pos, grid, grid_mask=gmask))
    assert np.all(v[0, 1:] == 0.0)
    # unmasked: a charge sitting exactly on a grid point contributes 0, not inf
    v2 = np.asarray(esp_from_charges(charges, pos, grid))
    assert np.all(np.isfinite(v2))
    np.testing.assert_allclose(v2[0, 1], 0.5 * units.BOHR_TO_ANGSTROM
                               - 0.5 * units.BOHR_TO_ANGSTROM, atol=1e-7)
    # gradient with respect to the position of a coincident site is exactly 0
    gx = jax.grad(lambda x: jnp.sum(inverse_distances(jnp.zeros((1, 3)), x)))(jnp.zeros((1, 3)))
    assert np.all(np.asarray(gx) == 0.0)


@pytest.mark.parametrize("chunk", [1, 16, 200])
def test_chunked_equals_unchunked(chunk):
    rng = np.random.default_rng(2)
    q = rng.normal(size=(3, 9)).astype(np.float32)
    x = rng.normal(size=(3, 9, 3)).astype(np.float32)
    grid = (rng.normal(size=(3, 101, 3)) * 4).astype(np.float32)
    gmask = (rng.random((3, 101)) > 0.2).astype(np.float32)
    full = np.asarray(jax.jit(esp_from_charges)(q, x, grid, gmask))
    chunked = np.asarray(jax.jit(lambda *a: esp_from_charges(*a, chunk_size=chunk))(
        q, x, grid, gmask))
    assert chunked.shape == full.shape == (3, 101)
    # identical up to float32 rounding of the sum (a few ulp of the largest value)
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-6 * np.abs(full).max())
    assert np.all(chunked[gmask == 0] == 0.0)
    ref = np.stack([_esp_reference(q[b].astype(np.float64), x[b].astype(np.float64),
                                   grid[b].astype(np.float64)) for b in range(3)]) * gmask
    np.testing.assert_allclose(chunked, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    # gradients agree as well
    gf = jax.grad(lambda c: jnp.sum(esp_from_charges(c, x, grid, gmask) ** 2))(q)
    gc = jax.grad(lambda c: jnp.sum(esp_from_charges(c, x, grid, gmask, chunk) ** 2))(q)
    np.testing.assert_allclose(np.asarray(gc), np.asarray(gf), rtol=1e-5, atol=1e-7)


def test_chunk_size_invalid():
    with pytest.raises(ValueError):
        esp_from_charges(jnp.ones((1, 1)), jnp.zeros((1, 1, 3)), jnp.ones((1, 4, 3)),
                         chunk_size=0)
    with pytest.raises(ValueError, match="flatten_sites"):
        esp_from_charges(jnp.ones((1, 2, 2)), jnp.zeros((1, 2, 2, 3)), jnp.ones((1, 4, 3)))


def test_dipole_of_water():
    origin = np.array([[0.1, -0.2, 0.3]])
    mu = np.asarray(dipole_from_charges(WATER_Q[None], WATER_R[None], origin))
    # neutral: independent of the origin; along -z (O above the H's): 0.834 * (0.1173+0.4692)
    expected_z = -0.834 * 0.1173 + 2 * 0.417 * (-0.4692)
    np.testing.assert_allclose(mu[0], [0.0, 0.0, expected_z], atol=1e-6)
    assert abs(units.eangstrom_to_debye(mu[0, 2]) - expected_z * 4.80320) < 1e-3


def test_dipole_of_ion_depends_on_origin():
    q = np.array([[1.0, 0.5, -0.5]], np.float32)  # net +1
    x = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]], np.float32)
    o1 = np.zeros((1, 3), np.float32)
    o2 = np.array([[0.5, 0.5, -1.0]], np.float32)
    mu1 = np.asarray(dipole_from_charges(q, x, o1))
    mu2 = np.asarray(dipole_from_charges(q, x, o2))
    np.testing.assert_allclose(mu1[0], [0.5, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(mu2 - mu1, -1.0 * (o2 - o1), atol=1e-6)


def test_flatten_sites_order():
    c = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    x = np.arange(2 * 3 * 2 * 3, dtype=np.float32).reshape(2, 3, 2, 3)
    cf, xf = flatten_sites(c, x)
    assert cf.shape == (2, 6) and xf.shape == (2, 6, 3)
    # site i*n + k is charge k of atom i
    assert float(cf[1, 2 * 2 + 1]) == c[1, 2, 1]
    np.testing.assert_array_equal(np.asarray(xf[1, 2 * 2 + 1]), x[1, 2, 1])
    with pytest.raises(ValueError):
        flatten_sites(c, x[..., :2])
