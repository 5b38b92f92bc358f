"""Electrostatic energy and forces with DCM-net charges (dcmnet.md): analytic values, finite
differences through the network, invariance, periodic cells, stress and an NVE run."""
import jax
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from conftest import TINY
from dcmnet.errors import ConfigError, DataError
from dcmnet.md import DCMSystem, coulomb_energy, find_molecules, molecule_charges, molecule_ids
from dcmnet.model import create_model
from dcmnet.units import COULOMB_EV_ANGSTROM, EV_TO_KCAL_MOL


@pytest.fixture(scope="module")
def tiny_model():
    """A randomly initialised tiny DCM-net (correctness does not need a trained model)."""
    model = create_model(**TINY)
    w = molecule("H2O")
    params = jax.jit(model.init)(jax.random.PRNGKey(0), np.array([[8, 1, 1]]),
                        w.positions[None].astype(np.float32), np.ones((1, 3)), np.zeros(1))
    return model, params


def waters(n=3, spacing=3.0, seed=0):
    """``n`` water molecules, rotated and placed ~``spacing`` Å apart."""
    rng = np.random.default_rng(seed)
    w = molecule("H2O")
    at = Atoms()
    for k in range(n):
        b = w.copy()
        b.rotate(rng.uniform(0, 360), rng.normal(size=3))
        b.translate([spacing * k, 0.7 * (k % 2), 0.3 * k])
        at += b
    return at


def test_two_charges_analytic_and_pure_fd():
    """k q1 q2 / r for two sites of different molecules; pairs in one molecule excluded;
    gradients of the pure Coulomb energy equal central differences (float64)."""
    with jax.enable_x64():
        q = np.array([0.7, -0.4, 0.3])
        x = np.array([[0.0, 0, 0], [0.0, 0, 2.5], [0.3, 0.1, 0.2]])
        e = float(coulomb_energy(q, x, np.array([0, 1, 0])))
        expect = COULOMB_EV_ANGSTROM * (0.7 * -0.4 / 2.5 + 0.3 * -0.4 / np.linalg.norm(
            x[2] - x[1]))
        assert e == pytest.approx(expect, rel=1e-12)
        assert COULOMB_EV_ANGSTROM == pytest.approx(14.399645, rel=1e-6)
        assert e * EV_TO_KCAL_MOL == pytest.approx(expect * 23.060548, rel=1e-6)
        ext_q, ext_x = np.array([0.5]), np.array([[1.0, 1.0, 1.0]])
        f = jax.jit(lambda x, ex: coulomb_energy(q, x, np.array([0, 1, 0]), ext_q, ex))
        gx, ge = jax.grad(f, argnums=(0, 1))(x, ext_x)
        h = 1e-5
        for arr, g, which in ((x, gx, 0), (ext_x, ge, 1)):
            for idx in np.ndindex(arr.shape):
                p, m = arr.copy(), arr.copy()
                p[idx] += h
                m[idx] -= h
                args_p = (p, ext_x) if which == 0 else (x, p)
                args_m = (m, ext_x) if which == 0 else (x, m)
                fd = (float(f(*args_p)) - float(f(*args_m))) / (2 * h)
                assert float(g[idx]) == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_forces_equal_finite_differences_through_dcmnet(tiny_model):
    """Forces on nuclei (autodiff through DCM-net: charges and site positions depend on R)
    and on external charges equal central differences of the energy (float64, rtol 1e-4)."""
    model, params = tiny_model
    at = waters(3)
    ext = (np.array([0.6, -0.4]), np.array([[1.0, 2.0, 3.0], [-2.0, 1.0, 0.5]]))
    with jax.enable_x64():
        sysm = DCMSystem(model, params, at.numbers, molecule_ids(at), [1.0, -1.0, 0.0])
        out = sysm.compute(at.positions, external_charges=ext)
        assert out["charges"].reshape(3, -1).sum(1) == pytest.approx([1, -1, 0], abs=1e-9)
        R, h = at.positions.copy(), 3e-3

        def energy(R, ex=ext[1]):
            return sysm.compute(R, external_charges=(ext[0], ex))["energy"]

        fd = np.zeros_like(R)
        for idx in np.ndindex(R.shape):
            p, m = R.copy(), R.copy()
            p[idx] += h
            m[idx] -= h
            fd[idx] = -(energy(p) - energy(m)) / (2 * h)
        F = out["forces"]
        np.testing.assert_allclose(F, fd, rtol=1e-4, atol=1e-4 * np.abs(F).max())
        fde = np.zeros_like(ext[1])
        for idx in np.ndindex(ext[1].shape):
            p, m = ext[1].copy(), ext[1].copy()
            p[idx] += h
            m[idx] -= h
            fde[idx] = -(energy(R, p) - energy(R, m)) / (2 * h)
        Fe = out["external_forces"]
        np.testing.assert_allclose(Fe, fde, rtol=1e-4, atol=1e-4 * np.abs(Fe).max())
        # Newton's third law: no net force on the whole (isolated) system
        np.testing.assert_allclose(F.sum(0) + Fe.sum(0), 0.0, atol=1e-6 * np.abs(F).max())


def test_energy_invariant_under_rotation_and_translation(tiny_model):
    model, params = tiny_model
    at = waters(3, seed=1)
    ext = (np.array([0.5, -0.5]), np.array([[1.0, 2.0, 3.0], [-2.0, 1.0, 0.5]]))
    from scipy.spatial.transform import Rotation
    rot = Rotation.from_euler("zyx", [40, -25, 70], degrees=True).as_matrix()
    shift = np.array([3.0, -7.0, 11.0])
    with jax.enable_x64():
        sysm = DCMSystem(model, params, at.numbers, molecule_ids(at), [0.0, 1.0, -1.0])
        a = sysm.compute(at.positions, external_charges=ext)
        b = sysm.compute(at.positions @ rot.T + shift,
                         external_charges=(ext[0], ext[1] @ rot.T + shift))
    assert abs(a["energy"]) > 1e-3
    assert b["energy"] == pytest.approx(a["energy"], rel=1e-5)
    np.testing.assert_allclose(b["forces"], a["forces"] @ rot.T, rtol=1e-4,
                               atol=1e-4 * np.abs(a["forces"]).max())


def test_periodic_min_image_cutoff_and_stress(tiny_model):
    """Shifted force: whole-cell translation of one molecule changes nothing (minimum image);
    the energy goes to 0 at the cutoff; stress equals the strain derivative; cutoff checked."""
    model, params = tiny_model
    at = waters(2, spacing=3.2)
    at.cell = np.diag([9.0, 9.5, 10.0])
    cell = np.asarray(at.cell[:])
    with jax.enable_x64():
        sysm = DCMSystem(model, params, at.numbers, molecule_ids(at), [1.0, -1.0], cutoff=4.4)
        e_strain = jax.jit(lambda R, c: sysm.energy(R, cell=c))
        a = sysm.compute(at.positions, cell=cell, stress=True)
        moved = at.positions.copy()
        moved[3:] += cell[0] - cell[2]
        b = sysm.compute(moved, cell=cell)
        assert b["energy"] == pytest.approx(a["energy"], rel=1e-9)
        far = at.positions.copy()
        far[3:] += [0.0, 0.0, 4.9]        # every site pair beyond 4.4 Å (also the images)
        assert sysm.compute(far, cell=cell)["energy"] == pytest.approx(0.0, abs=1e-12)
        # stress = (1/V) dE/d(strain), central differences of a symmetric strain
        h, V = 1e-4, np.linalg.det(cell)
        for (i, j) in ((0, 0), (1, 2)):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = h
            ep = float(e_strain(at.positions @ (np.eye(3) + eps), cell @ (np.eye(3) + eps)))
            em = float(e_strain(at.positions @ (np.eye(3) - eps), cell @ (np.eye(3) - eps)))
            fd = (ep - em) / (2 * h * V * (1 if i == j else 2))
            assert a["stress"][i, j] == pytest.approx(fd, rel=1e-3, abs=1e-7)
        # the per-axis (orthorhombic) minimum image equals the general matrix form
        qs, xs = a["charges"].reshape(-1), a["positions"].reshape(-1, 3) + [7.0, -3.0, 12.0]
        ms = np.repeat(sysm.mol, sysm.n_dcm)
        e_o = coulomb_energy(qs, xs, ms, cell=cell, cutoff=4.4, orthorhombic=True)
        e_g = coulomb_energy(qs, xs, ms, cell=cell, cutoff=4.4, orthorhombic=False)
        assert float(e_o) == pytest.approx(float(e_g), rel=1e-10)
        assert float(e_g) == pytest.approx(a["energy"], rel=1e-9)
        with pytest.raises(ConfigError, match="half the smallest"):
            DCMSystem(model, params, at.numbers, molecule_ids(at), [0, 0],
                      cutoff=5.0).compute(at.positions, cell=cell)
    with pytest.raises(ConfigError, match="cutoff"):
        coulomb_energy(np.ones(2), np.eye(3)[:2], np.arange(2), method="shifted-force")


def test_reaction_field_matches_formula():
    with jax.enable_x64():
        q, x, rc, eps = np.array([1.0, -1.0]), np.array([[0.0, 0, 0], [0, 0, 3.0]]), 8.0, 78.5
        e = float(coulomb_energy(q, x, np.arange(2), cutoff=rc, method="reaction-field"))
        k_rf = (eps - 1) / ((2 * eps + 1) * rc ** 3)
        assert e == pytest.approx(-COULOMB_EV_ANGSTROM * (1 / 3 + k_rf * 9 - 1 / rc - k_rf * rc ** 2))


def test_molecules_by_connectivity_mol_id_and_charges():
    at = waters(4)
    assert find_molecules(at).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    at.new_array("mol_id", np.array([7, 7, 7, 7, 7, 7, 2, 2, 2, 5, 5, 5]))
    mol = molecule_ids(at)
    assert mol.tolist() == [0] * 6 + [1] * 3 + [2] * 3
    assert molecule_charges(at, mol).tolist() == [0, 0, 0]
    assert molecule_charges(at, mol, [1, 0, -1]).tolist() == [1, 0, -1]
    with pytest.raises(DataError, match="3 molecules"):
        molecule_charges(at, mol, [1, -1])
    with pytest.raises(DataError, match="ambiguous"):
        molecule_charges(at, mol, 1.0)
    at.info["charge"] = 1
    with pytest.raises(DataError, match="mol_charges"):
        molecule_charges(at, mol)
    at.arrays["mol_id"] = np.array([0.5] * 12)
    with pytest.raises(DataError, match="mol_id"):
        molecule_ids(at)


def _water_mm(at):
    """Harmonic O–H bonds and H–O–H angles of each water plus O–O Lennard-Jones (ase ff)."""
    from ase.calculators.ff import ForceField
    from ase.utils.ff import Angle, Bond, VdW

    n = len(at) // 3
    bonds = [Bond(3 * m, 3 * m + k, 45.0, 0.9572) for m in range(n) for k in (1, 2)]
    angles = [Angle(3 * m + 1, 3 * m, 3 * m + 2, 4.0, np.deg2rad(104.52)) for m in range(n)]
    vdws = [VdW(3 * a, 3 * b, epsilonij=0.0066, sigmaij=3.15)
            for a in range(n) for b in range(a + 1, n)]
    return ForceField(bonds=bonds, angles=angles, vdws=vdws)


def test_nve_energy_conservation(tiny_model):
    """Three waters, DCM-net electrostatics + bonded + LJ (SumCalculator), velocity Verlet
    0.2 fs × 300 steps: the total energy drift stays far below the kinetic energy."""
    from ase import units
    from ase.calculators.mixing import SumCalculator
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    from dcmnet.md.calculator import DCMNetCalculator

    model, params = tiny_model
    at = waters(3, spacing=3.1, seed=3)
    at.cell = [40.0, 40.0, 40.0]           # ase's ForceField needs a cell; pbc stays False
    at.new_array("mol_id", np.repeat(np.arange(3), 3))
    dcm = DCMNetCalculator(model=model, params=params, charge=[0.5, -0.5, 0.0])
    at.calc = SumCalculator([dcm, _water_mm(at)])
    thermalize_momenta(at, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(at, timestep=0.2 * units.fs)
    etot, e_el = [], []
    dyn.attach(lambda: (etot.append(at.get_total_energy()),
                        e_el.append(dcm.results["energy"])), interval=10)
    dyn.run(300)
    etot = np.array(etot)
    t_ps = 300 * 0.2e-3
    drift = abs(np.polyfit(np.linspace(0, t_ps, len(etot)), etot, 1)[0]) / len(at)
    print(f"NVE: drift {drift:.2e} eV/(ps·atom), fluctuation {np.ptp(etot):.2e} eV, "
          f"electrostatic energy {min(e_el):.4f}..{max(e_el):.4f} eV")
    assert np.ptp(e_el) > 1e-4                     # the electrostatics really acts
    assert np.ptp(etot) < 0.02 * at.get_kinetic_energy() + 1e-4
    assert drift < 1e-3
