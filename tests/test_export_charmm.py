"""CHARMM DCM export: write -> read back (own reader) -> global sites and charges equal the
prediction; refusals for what frames cannot express."""
import jax
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from conftest import TINY
from dcmnet.errors import DataError
from dcmnet.export.charmm import dcm_global_sites, read_dcm, to_charmm
from dcmnet.model import create_model


@pytest.fixture(scope="module")
def tiny_model():
    model = create_model(**TINY)
    w = molecule("H2O")
    params = jax.jit(model.init)(jax.random.PRNGKey(2), np.array([[8, 1, 1]]),
                                 w.positions[None].astype(np.float32), np.ones((1, 3)),
                                 np.zeros(1))
    return model, params


@pytest.mark.parametrize("name,charge", [("CH3OH", 0.0), ("CH3COOH", -1.0), ("H2O", 0.0)])
def test_round_trip_global_sites(tiny_model, tmp_path, name, charge):
    at = molecule(name)
    files = to_charmm(tiny_model, at, tmp_path, name="mol", charge=charge)
    pred = files["prediction"]
    text = files["dcm"].read_text()
    assert text.startswith("1 ") and " BO " in text
    parsed = read_dcm(files["dcm"])
    (resname, frames), = parsed.items()
    covered = {a for fr, _, _ in frames for a in fr}
    assert covered == set(range(len(at)))
    atom, q, x = dcm_global_sites(frames, pred.R)
    # every atom's sites appear exactly once, in order
    assert sorted(atom.tolist()) == sorted(np.repeat(np.arange(len(at)), TINY["n_dcm"]).tolist())
    order = np.argsort(atom, kind="stable")
    np.testing.assert_allclose(x[order], pred.positions.reshape(-1, 3), atol=1e-4)
    np.testing.assert_allclose(q[order], pred.charges.reshape(-1), atol=1e-6)
    assert q.sum() == pytest.approx(charge, abs=1e-6)
    # the frames follow a rigid rotation of the nuclei
    from scipy.spatial.transform import Rotation
    rot = Rotation.from_euler("xyz", [20, -40, 65], degrees=True).as_matrix()
    _, _, xr = dcm_global_sites(frames, pred.R @ rot.T + 1.0)
    np.testing.assert_allclose(xr[order], pred.positions.reshape(-1, 3) @ rot.T + 1.0,
                               atol=1e-4)
    fr_lines = files["frames"].read_text().splitlines()
    assert fr_lines[0] == resname and all(line.endswith("BO") for line in fr_lines[1:])


def test_refusals(tiny_model, tmp_path):
    with pytest.raises(DataError, match="three atoms"):
        to_charmm(tiny_model, Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.13]]), tmp_path)
    with pytest.raises(DataError, match="linear"):
        to_charmm(tiny_model, molecule("CO2"), tmp_path)
    two = molecule("H2O") + molecule("H2O")
    two.positions[3:] += [4.0, 0, 0]
    with pytest.raises(DataError, match="2 molecules"):
        to_charmm(tiny_model, two, tmp_path)
    bad = tmp_path / "bad.dcm"
    bad.write_text("1\nRES\n1\n 1 2 3 BO\n2 0\n 0.1 0.2\n")
    with pytest.raises(DataError, match="bad.dcm"):
        read_dcm(bad)


def test_cli_export_charmm_openmm_and_refusal(tiny_experiment, tmp_path, capsys):
    """`dcmnet export EXP --structures ... --format charmm|openmm --out DIR`; a molecule the
    format cannot express is refused with a clear message (exit 2, no traceback)."""
    from ase.io import write

    from dcmnet.md.calculator import DCMNetCalculator
    from dcmnet.cli.main import main

    w = molecule("H2O")
    write(tmp_path / "water.xyz", w)
    out = tmp_path / "out"
    assert main(["export", str(tiny_experiment), "--structures", str(tmp_path / "water.xyz"),
                 "--format", "charmm", "--out", str(out)]) == 0
    (_, frames), = read_dcm(out / "water.dcm").items()
    atom, q, x = dcm_global_sites(frames, w.positions)
    calc = DCMNetCalculator(tiny_experiment)
    w.calc = calc
    order = np.argsort(atom, kind="stable")
    np.testing.assert_allclose(x[order], calc.get_charge_positions(w).reshape(-1, 3), atol=1e-4)
    np.testing.assert_allclose(q[order], calc.get_distributed_charges(w).reshape(-1), atol=1e-6)
    pytest.importorskip("openmm")
    assert main(["export", str(tiny_experiment), "--structures", str(tmp_path / "water.xyz"),
                 "--format", "openmm", "--out", str(out)]) == 0
    assert (out / "water_system.xml").exists() and (out / "water.pdb").exists()
    assert (out / "water_forcefield.xml").exists()
    write(tmp_path / "co.xyz", Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.13]]))
    capsys.readouterr()
    assert main(["export", str(tiny_experiment), "--structures", str(tmp_path / "co.xyz"),
                 "--format", "charmm", "--out", str(out)]) == 2
    err = capsys.readouterr()
    text = err.out + err.err
    assert "three atoms" in text and "Traceback" not in text
