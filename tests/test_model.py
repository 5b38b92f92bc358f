"""Tests of dcmnet.model.DCMNet: equivariance, padding, net charge, bounds, errors."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import dcmnet.model as model_mod
from dcmnet.electrostatics import esp_from_charges, flatten_sites
from dcmnet.errors import DataError
from dcmnet.model import DCMNet, check_atomic_numbers, count_parameters, create_model

# ---------------------------------------------------------------------------------------
# Small real molecules (Å)
WATER = ([8, 1, 1], [[0.0000, 0.0000, 0.1173],
                     [0.0000, 0.7572, -0.4692],
                     [0.0000, -0.7572, -0.4692]], 0.0)
METHANOL = ([6, 8, 1, 1, 1, 1], [[-0.0467, 0.6634, 0.0000],
                                 [-0.0467, -0.7566, 0.0000],
                                 [-1.0871, 0.9749, 0.0000],
                                 [0.4336, 1.0807, 0.8930],
                                 [0.4336, 1.0807, -0.8930],
                                 [0.8709, -1.0830, 0.0000]], 0.0)
AMMONIUM = ([7, 1, 1, 1, 1], [[0.0000, 0.0000, 0.0000],
                              [0.5900, 0.5900, 0.5900],
                              [-0.5900, -0.5900, 0.5900],
                              [-0.5900, 0.5900, -0.5900],
                              [0.5900, -0.5900, -0.5900]], 1.0)
HYDROXIDE = ([8, 1], [[0.0000, 0.0000, 0.0000], [0.0000, 0.0000, 0.9640]], -1.0)
# formate, a planar -1 ion
FORMATE = ([6, 8, 8, 1], [[0.0000, 0.0000, 0.3220],
                          [0.0000, 1.1340, -0.2050],
                          [0.0000, -1.1340, -0.2050],
                          [0.0000, 0.0000, 1.4470]], -1.0)

MOLS = [WATER, METHANOL, AMMONIUM, FORMATE]
A_PAD = 8  # padded atoms per molecule in the standard test batch
N_DCM = 3
MAXDISP = 0.8


def make_batch(mols, n_atoms=A_PAD, shift=(0.0, 0.0, 0.0)):
    """Padded batch (Z, R, atom_mask, net_charge) from (Z, R, Q) tuples; None = dummy."""
    B = len(mols)
    Z = np.zeros((B, n_atoms), np.int32)
    R = np.zeros((B, n_atoms, 3), np.float32)
    mask = np.zeros((B, n_atoms), np.float32)
    Q = np.zeros((B,), np.float32)
    for b, mol in enumerate(mols):
        if mol is None:
            continue
        z, r, q = mol
        n = len(z)
        Z[b, :n] = z
        R[b, :n] = np.asarray(r, np.float32) + np.asarray(shift, np.float32)
        mask[b, :n] = 1.0
        Q[b] = q
    return Z, R, mask, Q


@pytest.fixture(scope="module")
def setup():
    model = create_model(n_dcm=N_DCM, features=12, max_degree=2, num_iterations=2,
                         num_basis_functions=8, cutoff=4.0, max_atomic_number=18,
                         max_displacement=MAXDISP)
    Z, R, mask, Q = make_batch(MOLS)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), Z, R, mask, Q)
    # Scale the head so that displacements are O(0.1-0.5 Å): makes equivariance of the
    # positions a sharp test (the freshly initialised head gives tiny displacements).
    params = jax.tree_util.tree_map_with_path(
        lambda path, p: p * 6.0 if "head_b" in jax.tree_util.keystr(path) else p, params)
    apply = jax.jit(model.apply)
    return model, params, apply


def _grid_around(R, mask, n=40, seed=0):
    """(B, n, 3) points 1.5-3 Å from the centre of each molecule."""
    rng = np.random.default_rng(seed)
    c = (R * mask[..., None]).sum(1) / np.maximum(mask.sum(1), 1)[:, None]
    u = rng.normal(size=(R.shape[0], n, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return (c[:, None, :] + u * rng.uniform(2.0, 3.5, size=(R.shape[0], n, 1))).astype(
        np.float32)


def _esp(charges, positions, grid, gmask=None):
    return np.asarray(esp_from_charges(*flatten_sites(charges, positions), grid, gmask))


def test_output_shapes_and_basic_properties(setup):
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    c, x = apply(params, Z, R, mask, Q)
    assert c.shape == (4, A_PAD, N_DCM) and x.shape == (4, A_PAD, N_DCM, 3)
    assert c.dtype == jnp.float32 and x.dtype == jnp.float32
    c, x = np.asarray(c), np.asarray(x)
    assert np.all(np.isfinite(c)) and np.all(np.isfinite(x))
    d = np.linalg.norm(x - R[:, :, None, :], axis=-1)
    real = mask > 0
    # displacements are non-trivial (so the equivariance tests below mean something)
    assert d[real].mean() > 0.05
    assert np.all(d < MAXDISP)
    # padded atoms: no charge, sites on their own position
    assert np.all(c[~real] == 0.0)
    np.testing.assert_array_equal(x[~real], np.broadcast_to(R[~real][:, None, :],
                                                            x[~real].shape))
    assert count_parameters(params) > 1000


def test_net_charge_exact(setup):
    model, params, apply = setup
    mols = [METHANOL, AMMONIUM, HYDROXIDE, FORMATE]
    Z, R, mask, Q = make_batch(mols)
    c, _ = apply(params, Z, R, mask, Q)
    np.testing.assert_allclose(np.asarray(c).sum(axis=(1, 2)), [0.0, 1.0, -1.0, -1.0],
                               atol=1e-5)
    # a different requested net charge for the same molecule shifts every charge equally
    Q2 = Q.copy()
    Q2[0] = 2.0
    c2, _ = apply(params, Z, R, mask, Q2)
    c, c2 = np.asarray(c), np.asarray(c2)
    np.testing.assert_allclose(c2[0, :6] - c[0, :6], 2.0 / (6 * N_DCM), atol=1e-6)
    assert abs(c2[0].sum() - 2.0) < 1e-5


def _apply_np(apply, params, Z, R, mask, Q):
    c, x = apply(params, Z, R, mask, Q)
    return np.asarray(c), np.asarray(x)


@pytest.mark.parametrize("seed,reflect", [(0, False), (1, False), (2, True)])
def test_rotation_equivariance(setup, seed, reflect):
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    rot = Rotation.random(random_state=seed).as_matrix().astype(np.float32)
    if reflect:  # improper rotation: proper vectors (odd-parity l=1) still transform as M v
        rot = rot @ np.diag([1.0, 1.0, -1.0]).astype(np.float32)
    c0, x0 = _apply_np(apply, params, Z, R, mask, Q)
    R1 = (R @ rot.T).astype(np.float32)
    c1, x1 = _apply_np(apply, params, Z, R1, mask, Q)
    np.testing.assert_allclose(c1, c0, atol=2e-5)
    np.testing.assert_allclose(x1, x0 @ rot.T, atol=1e-4)
    grid = _grid_around(R, mask)
    v0 = _esp(c0, x0, grid)
    v1 = _esp(c1, x1, (grid @ rot.T).astype(np.float32))
    np.testing.assert_allclose(v1, v0, atol=1e-4 * np.abs(v0).max())


def test_wrong_l1_ordering_breaks_equivariance(setup, monkeypatch):
    """The equivariance test is sharp: a scrambled l=1 → (x, y, z) map fails it."""
    model, params, _ = setup
    monkeypatch.setattr(model_mod, "L1_TO_XYZ", (2, 0, 1))
    apply = jax.jit(lambda *a: model.apply(*a))  # a fresh function: no cached trace
    Z, R, mask, Q = make_batch(MOLS)
    rot = Rotation.random(random_state=3).as_matrix().astype(np.float32)
    _, x0 = _apply_np(apply, params, Z, R, mask, Q)
    _, x1 = _apply_np(apply, params, Z, (R @ rot.T).astype(np.float32), mask, Q)
    assert np.abs(x1 - x0 @ rot.T).max() > 1e-2


def test_translation_equivariance(setup):
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    t = np.array([3.7, -12.1, 5.3], np.float32)
    c0, x0 = _apply_np(apply, params, Z, R, mask, Q)
    Z1, R1, mask1, Q1 = make_batch(MOLS, shift=t)
    c1, x1 = _apply_np(apply, params, Z1, R1, mask1, Q1)
    np.testing.assert_allclose(c1, c0, atol=2e-5)
    real = mask > 0
    np.testing.assert_allclose(x1[real], x0[real] + t, atol=2e-4)


def test_permutation_equivariance(setup):
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    c0, x0 = _apply_np(apply, params, Z, R, mask, Q)
    rng = np.random.default_rng(5)
    perm = np.stack([rng.permutation(A_PAD) for _ in range(len(MOLS))])  # padding mixed in
    take = lambda a: np.take_along_axis(a, perm.reshape(perm.shape + (1,) * (a.ndim - 2)),
                                        axis=1)
    c1, x1 = _apply_np(apply, params, take(Z), take(R), take(mask), Q)
    np.testing.assert_allclose(c1, take(c0), atol=2e-5)
    np.testing.assert_allclose(x1, take(x0), atol=1e-4)
    # and the molecule order in the batch does not matter either
    order = [2, 0, 3, 1]
    c2, x2 = _apply_np(apply, params, Z[order], R[order], mask[order], Q[order])
    np.testing.assert_allclose(c2, c0[order], atol=2e-5)
    np.testing.assert_allclose(x2, x0[order], atol=1e-4)


def test_padding_atoms_and_grid_points_change_nothing(setup):
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    c0, x0 = _apply_np(apply, params, Z, R, mask, Q)
    # more padding rows: at the origin, on top of a real atom, at arbitrary positions,
    # with garbage atom_mask=0 but Z=0, and one with Z=0 but atom_mask=1 (still padding).
    A2 = A_PAD + 4
    Z2, R2, mask2, Q2 = make_batch(MOLS, n_atoms=A2)
    rng = np.random.default_rng(7)
    for b, (z, r, _) in enumerate(MOLS):
        n = len(z)
        R2[b, n] = R2[b, 0]  # on top of a real atom
        R2[b, n + 1] = 0.0  # at the origin
        R2[b, n + 2] = R2[b, 1] + 0.3  # close to a real atom, inside the cutoff
        R2[b, n + 3:] = rng.normal(size=(A2 - n - 3, 3))
    mask2[0, 5] = 1.0  # Z = 0 there: padding is recognised by Z, not by the mask
    c2, x2 = _apply_np(apply, params, Z2, R2, mask2, Q2)
    real = mask > 0
    np.testing.assert_allclose(c2[:, :A_PAD][real], c0[real], atol=2e-5)
    np.testing.assert_allclose(x2[:, :A_PAD][real], x0[real], atol=1e-4)
    pad2 = Z2 == 0
    assert np.all(c2[pad2] == 0.0)
    np.testing.assert_array_equal(x2[pad2], np.broadcast_to(R2[pad2][:, None], x2[pad2].shape))
    # padded grid points: the real points keep their ESP, the padded ones give 0
    grid = _grid_around(R, mask, n=30)
    v0 = _esp(c0, x0, grid)
    grid2 = np.concatenate([grid, np.zeros((len(MOLS), 7, 3), np.float32)], axis=1)
    grid2[:, -1] = R[:, 0]  # a padded point on top of an atom
    gmask2 = np.concatenate([np.ones((len(MOLS), 30)), np.zeros((len(MOLS), 7))], 1)
    v2 = _esp(c2, x2, grid2, gmask2.astype(np.float32))
    assert np.all(np.isfinite(v2))
    np.testing.assert_allclose(v2[:, :30], v0, atol=1e-4 * np.abs(v0).max())
    assert np.all(v2[:, 30:] == 0.0)


def test_dummy_molecule_gives_zeros_and_no_nan(setup):
    model, params, apply = setup
    Z, R, mask, Q = make_batch([WATER, None, AMMONIUM, None])
    c, x = _apply_np(apply, params, Z, R, mask, Q)
    assert np.all(np.isfinite(c)) and np.all(np.isfinite(x))
    assert np.all(c[[1, 3]] == 0.0)
    assert np.all(x[[1, 3]] == 0.0)  # padded atoms at the origin stay there
    np.testing.assert_allclose(c.sum(axis=(1, 2)), [0.0, 0.0, 1.0, 0.0], atol=1e-5)
    # (gradients with a dummy molecule present: test_gradients_finite_with_padding)


def test_gradients_finite_with_padding(setup):
    model, params, apply = setup
    Z, R, mask, Q = make_batch([WATER, METHANOL, HYDROXIDE, None])
    R[0, 3] = R[0, 0]  # padded atom on top of a real atom
    R[2, 4] = 0.0  # padded atom on top of the O of hydroxide (at the origin)
    grid = _grid_around(R, mask, n=20)
    grid[:, -3:] = 0.0  # padded grid points at the origin
    gmask = np.ones(grid.shape[:2], np.float32)
    gmask[:, -3:] = 0.0
    ref = np.full(grid.shape[:2], 0.01, np.float32) * gmask

    def loss(p, R):
        c, x = model.apply(p, Z, R, mask, Q)
        v = esp_from_charges(*flatten_sites(c, x), grid, gmask)
        return jnp.sum((v - ref) ** 2) + 1e-3 * jnp.sum(x ** 2)

    val, (gp, gR) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, R)
    assert np.isfinite(float(val))
    leaves = jax.tree_util.tree_leaves(gp)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0.0
    gR = np.asarray(gR)
    assert np.all(np.isfinite(gR))
    # padded atoms get no gradient through the model (only their own site, x = R, which
    # enters the loss through the 1e-3 * sum(x^2) term)
    np.testing.assert_allclose(gR[Z == 0], 2e-3 * R[Z == 0] * N_DCM, atol=1e-7)


@pytest.mark.parametrize("scale", [30.0, 1e4])
def test_displacement_bounded_for_large_raw_vectors(setup, scale):
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    big = jax.tree_util.tree_map_with_path(  # huge raw l=1 vectors from the head
        lambda path, p: p * scale if "head_b" in jax.tree_util.keystr(path) else p, params)
    c, x = _apply_np(apply, big, Z, R, mask, Q)
    d = np.linalg.norm(x - R[:, :, None], axis=-1)
    assert np.all(np.isfinite(d)) and np.all(np.isfinite(c))
    # |d| < m mathematically; float32 rounds |d| to m for huge raw vectors
    assert np.all(d <= MAXDISP * (1 + 2e-6))
    assert d[mask > 0].max() > 0.9 * MAXDISP  # the bound is active, and respected


def test_atomic_number_out_of_range_raises(setup):
    model, params, _ = setup
    Z, R, mask, Q = make_batch(MOLS)
    Z[1, 2] = 35  # bromine
    with pytest.raises(DataError) as err:
        model.apply(params, Z, R, mask, Q)
    msg = str(err.value)
    assert "35" in msg and "18" in msg and "max-atomic-number" in msg
    with pytest.raises(DataError, match="35"):
        check_atomic_numbers(Z, 18)
    Z[1, 2] = -1
    with pytest.raises(DataError, match="negative"):
        check_atomic_numbers(Z, 18)
    Z[1, 2] = 18
    check_atomic_numbers(Z, 18)  # argon is fine
    # also at init time
    with pytest.raises(DataError):
        create_model(max_atomic_number=10).init(jax.random.PRNGKey(0),
                                                np.array([[17, 1]], np.int32),
                                                np.zeros((1, 2, 3), np.float32),
                                                np.ones((1, 2), np.float32),
                                                np.zeros((1,), np.float32))


def test_out_of_range_under_jit_is_not_silent(setup):
    """Under jit the check is impossible; the affected molecule becomes NaN, never wrong."""
    model, params, apply = setup
    Z, R, mask, Q = make_batch(MOLS)
    Z[1, 2] = 35
    c, _ = _apply_np(apply, params, Z, R, mask, Q)
    assert np.all(np.isnan(c[1, :len(METHANOL[0])]))
    assert np.all(np.isfinite(c[[0, 2, 3]]))  # other molecules are unaffected


def test_create_model_defaults_and_validation():
    m = create_model()
    assert isinstance(m, DCMNet)
    assert (m.n_dcm, m.features, m.max_degree, m.num_iterations, m.num_basis_functions,
            m.cutoff, m.max_atomic_number, m.max_displacement) == (2, 32, 1, 2, 16, 4.0, 18,
                                                                   1.0)
    with pytest.raises(ValueError):
        create_model(max_degree=0)
    with pytest.raises(ValueError):
        create_model(n_dcm=0)
    assert count_parameters({"a": np.zeros((3, 4)), "b": [np.zeros(5)]}) == 17


# ---------------------------------------------------------------------- pair layouts (issue 13)
@pytest.mark.parametrize("layout", ["dense", "neighbors"])
def test_pair_layouts_share_parameters_and_predictions(setup, layout):
    """The per-molecule layouts use e3x's parameter tree and reproduce its predictions."""
    import dataclasses

    model, params, _ = setup
    pairs = dataclasses.replace(model, message_passing="pairs")
    other = dataclasses.replace(model, message_passing=layout,
                                max_neighbors=A_PAD - 1 if layout == "neighbors" else 0)
    Z, R, mask, Q = make_batch([WATER, None, METHANOL, FORMATE, AMMONIUM])
    init_p = pairs.init(jax.random.PRNGKey(3), Z, R, mask, Q)
    init_o = other.init(jax.random.PRNGKey(3), Z, R, mask, Q)
    assert jax.tree_util.tree_structure(init_p) == jax.tree_util.tree_structure(init_o)
    for a, b in zip(jax.tree_util.tree_leaves(init_p), jax.tree_util.tree_leaves(init_o)):
        np.testing.assert_array_equal(a, b)  # same names, shapes, initial values
    q0, x0 = jax.jit(pairs.apply)(params, Z, R, mask, Q)
    q1, x1 = jax.jit(other.apply)(params, Z, R, mask, Q)
    assert float(jnp.abs(q1 - q0).max()) <= 1e-5 * float(jnp.abs(q0).max())
    assert float(jnp.abs(x1 - x0).max()) <= 1e-5 * float(jnp.abs(x0).max())
    assert float(jnp.abs(q0).max()) > 1e-3  # predictions are not trivially zero


def test_auto_layout_switches_to_neighbor_list_for_large_molecules(setup):
    model, _, _ = setup
    assert model.pair_layout(16) == "dense"
    assert model.pair_layout(2 * model.neighbor_count + 1) == "neighbors"
    assert model.neighbor_count == 56  # 0.2 atoms/Å³ in a 4 Å sphere, rounded up to 8


def test_neighbor_list_drops_only_pairs_beyond_the_cutoff(setup):
    """A chain longer than the cutoff: 2 neighbours kept per atom reproduce all pairs."""
    import dataclasses

    model, params, _ = setup
    n = 8
    Z = np.full((1, n), 6, np.int32)
    R = np.zeros((1, n, 3), np.float32)
    R[0, :, 0] = np.arange(n) * 3.0  # spacing 3 Å, cutoff 4 Å → ≤ 2 neighbours inside
    mask = np.ones((1, n), np.float32)
    Q = np.zeros(1, np.float32)
    ref = dataclasses.replace(model, message_passing="pairs").apply(params, Z, R, mask, Q)
    nb = dataclasses.replace(model, message_passing="neighbors", max_neighbors=2)
    got = nb.apply(params, Z, R, mask, Q)
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-5 * float(jnp.abs(ref[0]).max()))
    with pytest.raises(DataError, match="more than 1 neighbours"):
        dataclasses.replace(model, message_passing="neighbors",
                            max_neighbors=1).apply(params, Z, R, mask, Q)
    jitted = jax.jit(dataclasses.replace(model, message_passing="neighbors",
                                         max_neighbors=1).apply)
    assert np.isnan(np.asarray(jitted(params, Z, R, mask, Q)[0])).all()  # loud under jit
