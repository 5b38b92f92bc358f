"""The ASE calculator: per-atom charges sum to the net charge, sites, dipole and ESP."""
import numpy as np
import pytest
from ase import Atoms
from ase.data import atomic_masses

from conftest import bundled_subset
from dcmnet.md.calculator import DCMNetCalculator
from dcmnet.inference.predict import Predictor
from dcmnet.units import HARTREE_TO_KCAL_MOL


@pytest.fixture(scope="module")
def calc(tiny_experiment):
    return DCMNetCalculator(tiny_experiment)


def _atoms(name):
    m = bundled_subset([name], 1).molecule(0)
    return Atoms(numbers=m["Z"], positions=m["R"]), m


@pytest.mark.parametrize("name,charge", [("methanol", 0.0), ("acetate", -1.0),
                                         ("methylammonium", 1.0)])
def test_charges_sum_to_net_charge(calc, name, charge):
    atoms, m = _atoms(name)
    atoms.info["charge"] = charge
    atoms.calc = calc
    q = atoms.get_charges()
    assert q.shape == (len(atoms),)
    assert q.sum() == pytest.approx(charge, abs=1e-5)
    sites = calc.get_distributed_charges()
    assert sites.shape == (len(atoms), calc.n_dcm)
    np.testing.assert_allclose(sites.sum(1), q, atol=1e-6)
    x = calc.get_charge_positions()
    assert x.shape == (len(atoms), calc.n_dcm, 3)
    assert np.all(np.linalg.norm(x - atoms.positions[:, None], axis=-1) < 1.0)
    mass = atomic_masses[atoms.numbers]
    com = (mass[:, None] * atoms.positions).sum(0) / mass.sum()
    mu = (sites.reshape(-1, 1) * (x.reshape(-1, 3) - com)).sum(0)
    np.testing.assert_allclose(atoms.get_dipole_moment(), mu, atol=1e-5)


def test_explicit_charge_esp_and_caching(tiny_experiment):
    atoms, m = _atoms("acetate")
    calc = DCMNetCalculator(tiny_experiment, charge=-1)
    atoms.calc = calc
    assert atoms.get_charges().sum() == pytest.approx(-1.0, abs=1e-5)
    pts = np.asarray(m["grid"][:50], np.float64)
    v = calc.get_electrostatic_potential(pts)
    # the model's evaluation path on the same points
    ref = Predictor.from_experiment(tiny_experiment).predict(atoms, charge=-1, grids=[pts])
    np.testing.assert_allclose(v, ref.esp, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(calc.get_electrostatic_potential(pts, unit="kcal/(mol*e)"),
                               v * HARTREE_TO_KCAL_MOL)
    # cached while the atoms are unchanged, recomputed when they move
    first = calc.get_distributed_charges().copy()
    assert calc.get_distributed_charges() is calc.results["distributed_charges"]
    atoms.positions[0] += 0.3
    assert not np.allclose(atoms.get_charges(), first.sum(1))
    with pytest.raises(ValueError, match="unit"):
        calc.get_electrostatic_potential(pts, unit="volts")
    with pytest.raises(ValueError):
        DCMNetCalculator()


def test_energy_forces_several_molecules_and_external_charges(calc):
    """Two molecules by connectivity + external charges: the energy equals the Coulomb sum
    over the predicted sites (pairs inside a molecule excluded); forces are minus the
    gradient (checked along one coordinate); one molecule alone has energy 0."""
    import jax

    from dcmnet.errors import ConfigError
    from dcmnet.md import coulomb_energy
    from dcmnet.units import EV_TO_KCAL_MOL

    a, _ = _atoms("methanol")
    b, _ = _atoms("acetate")
    b.translate([5.0, 0.0, 0.0])
    both = a + b
    both.info["mol_charges"] = [0.0, -1.0]
    ext = (np.array([0.5, -0.25]), np.array([[0.0, 6.0, 0.0], [2.5, -4.0, 1.0]]))
    c = DCMNetCalculator(model=calc.model, params=calc.params, external_charges=ext)
    both.calc = c
    E = both.get_potential_energy()
    assert c.get_molecule_ids().tolist() == [0] * len(a) + [1] * len(b)
    q, x = c.get_distributed_charges(), c.get_charge_positions()
    np.testing.assert_allclose(q.sum(1)[len(a):].sum(), -1.0, atol=1e-5)
    with jax.enable_x64():
        ref = float(coulomb_energy(q.reshape(-1), x.reshape(-1, 3),
                                   np.repeat(c.get_molecule_ids(), c.n_dcm), *ext))
    assert E == pytest.approx(ref, rel=1e-5)
    assert c.get_energy_kcal_mol() == pytest.approx(E * EV_TO_KCAL_MOL)
    F = both.get_forces()
    Fe = c.get_external_forces()
    assert F.shape == (len(both), 3) and Fe.shape == (2, 3)
    h = 2e-3
    p, m = both.copy(), both.copy()
    p.positions[len(a), 0] += h
    m.positions[len(a), 0] -= h
    for at in (p, m):
        at.calc = DCMNetCalculator(model=calc.model, params=calc.params, external_charges=ext)
    fd = -(p.get_potential_energy() - m.get_potential_energy()) / (2 * h)
    assert F[len(a), 0] == pytest.approx(fd, rel=2e-2, abs=1e-3 * np.abs(F).max())
    single, _ = _atoms("methanol")
    single.calc = DCMNetCalculator(model=calc.model, params=calc.params)
    assert single.get_potential_energy() == 0.0
    box = both.copy()
    box.cell, box.pbc = [20.0, 20.0, 20.0], True
    box.calc = DCMNetCalculator(model=calc.model, params=calc.params)
    with pytest.raises(ConfigError, match="cutoff"):
        box.get_potential_energy()
    box.calc = DCMNetCalculator(model=calc.model, params=calc.params, cutoff=8.0)
    assert box.get_stress().shape == (6,)
    with pytest.raises(ConfigError, match="periodic"):
        both.calc.get_stress(both)
