"""Units, the fitted-monopole baseline and the vdW-shell ESP points."""
import numpy as np
import pytest

from dcmnet import units
from dcmnet.errors import DataError
from dcmnet.fitting import coulomb_matrix, fit_monopoles, monopole_esp
from dcmnet.surface import vdw_shell_points


def test_codata_2018_constants():
    assert units.BOHR_TO_ANGSTROM == pytest.approx(0.529177210903, rel=1e-9)
    assert units.HARTREE_TO_KCAL_MOL == pytest.approx(627.509474, rel=1e-8)
    assert units.EANGSTROM_TO_DEBYE == pytest.approx(4.80320, rel=1e-5)
    assert units.hartree_to_kcal(units.kcal_to_hartree(3.0)) == pytest.approx(3.0)


def test_unit_charge_at_one_angstrom():
    v = coulomb_matrix(np.array([[1.0, 0.0, 0.0]]), np.zeros((1, 3)))
    assert v[0, 0] == pytest.approx(0.529177210903, rel=1e-9)


def _random_molecule(rng, n=5):
    R = rng.normal(scale=1.0, size=(n, 3))
    R += np.arange(n)[:, None] * np.array([1.2, 0.0, 0.0])
    return R


def test_fit_recovers_exact_point_charges():
    rng = np.random.default_rng(0)
    R = _random_molecule(rng)
    Z = np.array([6, 8, 7, 1, 1])
    grid = vdw_shell_points(Z, R)
    q_true = np.array([0.4, -0.6, -0.3, 0.35, 0.15])  # sums to 0
    esp = monopole_esp(R, q_true, grid)
    q = fit_monopoles(R, grid, esp, 0.0)
    np.testing.assert_allclose(q, q_true, atol=1e-8)


def test_fit_net_charge_exact_for_ion():
    rng = np.random.default_rng(1)
    R = _random_molecule(rng, 4)
    grid = vdw_shell_points([7, 1, 1, 1], R)
    esp = rng.normal(scale=0.05, size=len(grid))  # noise: the constraint must still hold
    q = fit_monopoles(R, grid, esp, 1.0)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)


def test_fit_refuses_too_few_points_and_points_on_atoms():
    R = np.zeros((3, 3)) + np.arange(3)[:, None]
    with pytest.raises(DataError, match="cannot determine"):
        fit_monopoles(R, np.ones((2, 3)) * 5, np.zeros(2))
    with pytest.raises(DataError, match="coincides"):
        fit_monopoles(R, np.vstack([R, R + 3]), np.zeros(6))


def test_vdw_shells_outside_atoms_and_density():
    Z = np.array([8, 1, 1])
    R = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    pts = vdw_shell_points(Z, R, shells=(1.4,), density=1.0)
    radii = np.array([1.52, 1.2, 1.2])
    d = np.linalg.norm(pts[:, None] - R[None], axis=-1)
    assert (d >= 1.4 * radii[None] - 1e-6).all()
    # on the surface of at least one sphere
    assert np.isclose(d, 1.4 * radii[None], atol=1e-6).any(axis=1).all()
    # a lone atom: 4 pi r^2 points per Å^2
    one = vdw_shell_points([8], np.zeros((1, 3)), shells=(1.4,), density=2.0)
    assert len(one) == int(np.ceil(2.0 * 4 * np.pi * (1.4 * 1.52) ** 2))
    # four shells give more points, further out
    four = vdw_shell_points(Z, R)
    assert len(four) > 3 * len(pts)


def test_vdw_unknown_radius():
    with pytest.raises(DataError, match="van der Waals radius"):
        vdw_shell_points([118], np.zeros((1, 3)))
