"""The QM reference generator: ESP against PySCF's own evaluation, dipole, fitted charges,
and the ``dcmnet generate`` command (resume, shards, merge, provenance)."""
import json

import numpy as np
import pytest

pyscf = pytest.importorskip("pyscf")
pytest.importorskip("rdkit")

from dcmnet.cli.main import main  # noqa: E402
from dcmnet.data.dataset import Dataset  # noqa: E402
from dcmnet.errors import DataError  # noqa: E402
from dcmnet.fitting import monopole_esp  # noqa: E402
from dcmnet.generate.molecules import read_smiles_file  # noqa: E402
from dcmnet.generate.qm import (build_molecule, compute_conformer, esp_on_points,  # noqa: E402
                                run_scf)
from dcmnet.surface import vdw_shell_points  # noqa: E402
from dcmnet.units import ANGSTROM_TO_BOHR, EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL  # noqa: E402

WATER_Z = np.array([8, 1, 1])
WATER_R = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])


@pytest.fixture(scope="module")
def water_scf():
    mol = build_molecule(WATER_Z, WATER_R, 0, "def2-svp")
    mf = run_scf(mol, "b3lyp", density_fit=True, grid_level=1)
    return mol, mf, mf.make_rdm1()


def test_esp_matches_pyscf_cubegen(water_scf, tmp_path):
    from pyscf.tools import cubegen

    mol, _, dm = water_scf
    ref = cubegen.mep(mol, str(tmp_path / "mep.cube"), dm, nx=8, ny=8, nz=8).ravel()
    coords_bohr = cubegen.Cube(mol, 8, 8, 8).get_coords()
    pts = coords_bohr / ANGSTROM_TO_BOHR
    d = np.linalg.norm(pts[:, None] - WATER_R[None], axis=-1).min(1)
    keep = d > 0.5  # away from the nuclear cusps
    ours = esp_on_points(mol, dm, pts[keep])
    assert keep.sum() > 300
    np.testing.assert_allclose(ours, ref[keep], rtol=1e-7, atol=1e-9)


def test_esp_far_field_is_dipole_field(water_scf):
    mol, mf, dm = water_scf
    from dcmnet.generate.qm import dipole_about
    com = np.array([0.0, 0.0, 0.0])
    mu = dipole_about(mol, dm, com)  # e·Å
    # the odd part of V along the dipole axis is p/r² + O(1/r⁴) (quadrupole cancels)
    r = np.array([[0.0, 0.0, 30.0], [0.0, 0.0, -30.0]])  # Å
    v = esp_on_points(mol, dm, r)
    odd = 0.5 * (v[0] - v[1])
    rb = 30.0 * ANGSTROM_TO_BOHR
    assert abs(mu[2]) > 0.3
    np.testing.assert_allclose(odd, mu[2] * ANGSTROM_TO_BOHR / rb**2, rtol=2e-3)


def test_water_conformer_dipole_and_fitted_charges():
    grid = vdw_shell_points(WATER_Z, WATER_R)
    res = compute_conformer(WATER_Z, WATER_R, 0, grid)
    mu_qm = np.linalg.norm(res["dipole"]) * EANGSTROM_TO_DEBYE
    assert 1.8 < mu_qm < 2.2  # B3LYP/def2-SVP water ~1.98 D
    q = res["mono"]
    assert abs(q.sum()) < 1e-10
    assert q[0] < -0.5 and q[1] > 0.25 and q[2] > 0.25
    from ase.data import atomic_masses
    m = atomic_masses[WATER_Z]
    com = (m[:, None] * WATER_R).sum(0) / m.sum()
    mu_fit = (q[:, None] * (WATER_R - com)).sum(0) * EANGSTROM_TO_DEBYE
    assert np.linalg.norm(mu_fit - res["dipole"] * EANGSTROM_TO_DEBYE) < 0.1
    rmse = np.sqrt(np.mean((monopole_esp(WATER_R, q, grid) - res["esp"]) ** 2)) * HARTREE_TO_KCAL_MOL
    assert 0.5 < rmse < 2.0  # point charges leave ~1.1 kcal/(mol·e) on water


def test_open_shell_is_refused():
    with pytest.raises(DataError, match="open shell"):
        build_molecule([8, 1], [[0, 0, 0], [0, 0, 0.97]], 0)


def test_smiles_file_parsing(tmp_path):
    f = tmp_path / "m.smi"
    f.write_text("# comment\nCC#N acetonitrile  # nitrile\nCC(=O)[O-] acetate -1\nC[NH3+] mam\n")
    specs = read_smiles_file(f)
    assert [s.name for s in specs] == ["acetonitrile", "acetate", "mam"]
    assert specs[0].smiles == "CC#N"
    assert [s.net_charge for s in specs] == [0, -1, 1]
    f.write_text("CC(=O)[O-] acetate 0\n")
    with pytest.raises(DataError, match="disagrees with the formal"):
        read_smiles_file(f)
    f.write_text("C1CC bad\n")
    with pytest.raises(DataError, match="cannot parse"):
        read_smiles_file(f)


@pytest.mark.slow
def test_generate_cli_resume_shards_merge(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.smi").write_text("O water\n[NH4+] ammonium\n")
    common = ["generate", "--smiles", "m.smi", "--n-conformers", "2", "--method", "hf",
              "--basis", "sto-3g", "--workers", "1", "--no-progress"]
    # two shards, then merge
    assert main(common + ["--out", "d.npz", "--shard", "0/2"]) == 0
    assert main(common + ["--out", "d.npz", "--shard", "1/2"]) == 0
    files = sorted(p.name for p in (tmp_path / "d.work" / "conformers").glob("*.npz"))
    assert files == ["ammonium__0000.npz", "ammonium__0001.npz", "water__0000.npz",
                     "water__0001.npz"]
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "d.work" / "conformers").glob("*")}
    # an unsharded rerun recomputes nothing and merges
    assert main(common + ["--out", "d.npz"]) == 0
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "d.work" / "conformers").glob("*")}
    ds = Dataset.load(tmp_path / "d.npz")
    assert len(ds) == 4 and ds.has_mono.all() and ds.has_dipole.all()
    assert sorted(set(ds.name)) == ["ammonium", "water"]
    assert set(ds.net_charge[ds.name == "ammonium"]) == {1.0}
    seg = np.repeat(np.arange(len(ds)), ds.n_atoms)
    np.testing.assert_allclose(np.bincount(seg, weights=ds.mono), ds.net_charge, atol=1e-9)
    prov = json.loads((tmp_path / "d.provenance.json").read_text())
    assert prov["method"] == "hf" and prov["basis"] == "sto-3g"
    assert prov["n_conformers"] == 4 and "pyscf" in prov["versions"]
    assert prov["command"].startswith("dcmnet generate")
    # merge command gives the same data
    assert main(["merge", "d.work", "--out", "m.npz"]) == 0
    ds2 = Dataset.load(tmp_path / "m.npz")
    assert len(ds2) == len(ds)  # merge orders conformers by key, generate by input order
    np.testing.assert_array_equal(np.sort(ds2.esp), np.sort(ds.esp))
    # other settings in the same work folder are refused
    other = [a if a != "hf" else "b3lyp" for a in common]
    assert main(other + ["--out", "d.npz"]) == 2


def test_generate_from_xyz_frames_with_charge(tmp_path, monkeypatch):
    from ase import Atoms
    from ase.io import write

    monkeypatch.chdir(tmp_path)
    frames = [Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97 + 0.02 * k]]) for k in range(2)]
    write(tmp_path / "hydroxide.xyz", frames)
    rc = main(["generate", "--structures", "hydroxide.xyz", "--charge", "-1", "--method", "hf",
               "--basis", "sto-3g", "--workers", "1", "--no-progress", "--out", "oh.npz"])
    assert rc == 0
    ds = Dataset.load(tmp_path / "oh.npz")
    assert len(ds) == 2 and list(ds.net_charge) == [-1.0, -1.0]
    np.testing.assert_allclose(ds.molecule(1)["R"][1, 2], 0.99)
    # the wrong charge makes an open shell: one clear error per conformer, exit status 1
    rc = main(["generate", "--structures", "hydroxide.xyz", "--method", "hf", "--basis",
               "sto-3g", "--workers", "1", "--no-progress", "--out", "oh0.npz"])
    assert rc != 0
