"""OpenMM export: virtual sites reproduce the predicted sites and follow rigid motion; the
electrostatic energy with probe charges equals dcmnet's; the ForceField template works."""
import jax
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

openmm = pytest.importorskip("openmm")
from openmm import app, unit  # noqa: E402

from conftest import TINY  # noqa: E402
from dcmnet.errors import DataError  # noqa: E402
from dcmnet.export.openmm import to_openmm  # noqa: E402
from dcmnet.md import coulomb_energy  # noqa: E402
from dcmnet.model import create_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model():
    model = create_model(**TINY)
    w = molecule("H2O")
    params = jax.jit(model.init)(jax.random.PRNGKey(1), np.array([[8, 1, 1]]),
                                 w.positions[None].astype(np.float32), np.ones((1, 3)),
                                 np.zeros(1))
    return model, params


def _context(system):
    integ = openmm.VerletIntegrator(0.001)
    return openmm.Context(system, integ, openmm.Platform.getPlatformByName("Reference"))


def _sites(ctx, R_angstrom, n_atoms):
    n_total = ctx.getSystem().getNumParticles()
    pos = np.zeros((n_total, 3))
    pos[:n_atoms] = R_angstrom
    ctx.setPositions([openmm.Vec3(*p) for p in pos] * unit.angstrom)
    ctx.computeVirtualSites()
    st = ctx.getState(getPositions=True)
    return st.getPositions(asNumpy=True).value_in_unit(unit.angstrom)[n_atoms:]


def test_virtual_sites_follow_rigid_motion(tiny_model):
    at = molecule("CH3OH")
    exp = to_openmm(tiny_model, at, charge=0)
    N, n = len(at), TINY["n_dcm"]
    assert exp.system.getNumParticles() == N + N * n
    assert all(exp.system.isVirtualSite(N + j) for j in range(N * n))
    assert not any(exp.system.isVirtualSite(i) for i in range(N))
    pred = exp.prediction.positions.reshape(-1, 3)
    ctx = _context(exp.system)
    np.testing.assert_allclose(_sites(ctx, at.positions, N), pred, atol=1e-4)
    from scipy.spatial.transform import Rotation
    rot = Rotation.from_euler("xyz", [30, 50, -70], degrees=True).as_matrix()
    shift = np.array([1.5, -2.0, 0.7])
    moved = _sites(ctx, at.positions @ rot.T + shift, N)
    np.testing.assert_allclose(moved, pred @ rot.T + shift, atol=1e-4)
    # atoms carry no charge; the sites sum to the net charge
    nb = [f for f in exp.system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    qs = [nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
          for i in range(N + N * n)]
    assert np.all(np.array(qs[:N]) == 0.0)
    assert sum(qs) == pytest.approx(0.0, abs=1e-6)


def test_energy_with_probe_charges_equals_dcmnet(tiny_model, tmp_path):
    """Two molecules + probe charges: OpenMM's Coulomb energy equals dcmnet's (1e-4 rel.),
    also after a round trip through the written System XML."""
    a = molecule("CH3OH")
    b = molecule("H2O")
    b.translate([3.5, 0.5, 0.3])
    sysat = a + b
    exp = to_openmm(tiny_model, sysat, charge=[1.0, -1.0])
    files = exp.write(tmp_path, "pair")
    assert {p.name for p in files.values()} == {"pair_system.xml", "pair.pdb",
                                                  "pair_forcefield.xml"}
    system = openmm.XmlSerializer.deserialize(files["system"].read_text())
    nb = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    probes_q = np.array([0.4, -0.7, 0.3])
    probes_x = np.array([[0.0, 4.0, 0.0], [-3.0, 0.0, 1.0], [2.0, -3.0, -2.0]])
    first = system.getNumParticles()
    for qq in probes_q:
        system.addParticle(1.0)
        nb.addParticle(qq * unit.elementary_charge, 1.0 * unit.nanometer, 0.0)
    for u in range(3):                       # probe-probe pairs are not part of dcmnet's sum
        for v in range(u + 1, 3):
            nb.addException(first + u, first + v, 0.0, 1.0, 0.0)
    ctx = _context(system)
    pos = np.concatenate([exp.positions, probes_x])
    ctx.setPositions([openmm.Vec3(*p) for p in pos] * unit.angstrom)
    ctx.computeVirtualSites()
    e_omm = ctx.getState(getEnergy=True).getPotentialEnergy()
    e_omm_ev = (e_omm / unit.AVOGADRO_CONSTANT_NA).value_in_unit(unit.kilojoule) * 1000 \
        / unit.elementary_charge.conversion_factor_to(unit.coulomb)
    pr = exp.prediction
    with jax.enable_x64():
        e_dcm = float(coulomb_energy(pr.charges.reshape(-1), pr.positions.reshape(-1, 3),
                                     np.repeat(pr.mol, pr.charges.shape[1]), probes_q, probes_x))
    assert abs(e_dcm) > 1e-2
    assert e_omm_ev == pytest.approx(e_dcm, rel=1e-4)


def test_forcefield_template_builds_the_same_sites(tiny_model, tmp_path):
    at = molecule("CH3OH")
    exp = to_openmm(tiny_model, at, charge=0)
    files = exp.write(tmp_path, "meoh")
    pdb = app.PDBFile(str(files["pdb"]))
    ff = app.ForceField(str(files["forcefield"]))
    system = ff.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    assert system.getNumParticles() == exp.system.getNumParticles()
    ctx = _context(system)
    ctx.setPositions(pdb.positions)
    ctx.computeVirtualSites()
    got = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(
        unit.angstrom)[len(at):]
    np.testing.assert_allclose(got, exp.prediction.positions.reshape(-1, 3), atol=2e-3)
    # bonds alone exclude only 1-2/1-3 (1-4 scaled): intramolecular charges still interact;
    # apply_dcm_exclusions removes them all (one molecule, ε = 0: energy exactly 0)
    from dcmnet.export.openmm import apply_dcm_exclusions
    e_before = ctx.getState(getEnergy=True).getPotentialEnergy()
    assert apply_dcm_exclusions(system, pdb.topology, "LIG") > 0
    ctx2 = _context(system)
    ctx2.setPositions(pdb.positions)
    e_after = ctx2.getState(getEnergy=True).getPotentialEnergy()
    assert abs(e_before.value_in_unit(unit.kilojoule_per_mole)) > 1e-6
    assert e_after.value_in_unit(unit.kilojoule_per_mole) == pytest.approx(0.0, abs=1e-9)


def test_fallbacks_and_refusal(tiny_model):
    co = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.13]])
    exp = to_openmm(tiny_model, co, charge=0)       # sites on the axis: average2 sites
    N = 2
    ctx = _context(exp.system)
    from scipy.spatial.transform import Rotation
    rot = Rotation.from_euler("xyz", [10, 80, 20], degrees=True).as_matrix()
    moved = _sites(ctx, co.positions @ rot.T, N)
    np.testing.assert_allclose(moved, exp.prediction.positions.reshape(-1, 3) @ rot.T,
                               atol=1e-4)
    from dcmnet.export import frames
    pred = exp.prediction
    pred.positions = pred.positions + np.array([0.05, 0.0, 0.0])
    with pytest.raises(DataError, match="linear"):
        frames.check_linear_sites(pred, 0)
