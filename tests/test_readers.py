"""Every reader against the same PySCF reference ESP; round trips; detection; CLI.

Reference: HF/6-31G water, hydronium (+1) and formate (−1) (tests/fixtures_qm.py). Files
are written in each program's published layout; readers must reproduce the reference to
the file's printed precision (canonical ESP is float32: ~3e-8 Hartree/e at 0.5 Hartree/e).
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import fixtures_qm as fq
from dcmnet.cli.main import main
from dcmnet.data import Dataset, load_dataset, load_dataset_with_report
from dcmnet.data.mmml import write_mmml_npz
from dcmnet.data.readers import (ReadOptions, read_cube, sniff, write_espot, write_extxyz,
                                 write_gaussian_esp, write_hdf5, write_orca, write_psi4_grid)
from dcmnet.data.readers.cube import parse_cube
from dcmnet.errors import DataError
from dcmnet.units import BOHR_TO_ANGSTROM

pytestmark = pytest.mark.qm
pytest.importorskip("pyscf")

#: max |ESP − reference| allowed per format (Hartree/e): printed precision ⊕ float32
TOL = {"gesp": 1e-7, "espot": 1e-7, "psi4": 1e-7, "orca": 1e-7, "hdf5": 1e-7,
       "extxyz": 1e-7, "cube": 1e-5}


@pytest.fixture(scope="session")
def qm_files(tmp_path_factory):
    return fq.qm_files_fixture(tmp_path_factory)


def _which(m: dict) -> str:
    for name, (Z, _, q) in fq.MOLECULES.items():
        if list(m["Z"]) == list(Z) and m["net_charge"] == q:
            return name
    raise AssertionError(f"molecule {m['Z']} {m['net_charge']} matches no reference")


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset_with_report(path, **kw)


# ---------------------------------------------------------------------------- reference
@pytest.mark.parametrize("fmt", ["gesp", "espot", "psi4", "orca", "hdf5", "extxyz"])
def test_reader_reproduces_reference(qm_files, fmt):
    if fmt == "hdf5":
        pytest.importorskip("h5py")
    ds, report = _load(qm_files[fmt])
    seen = set()
    for i in range(len(ds)):
        m = ds.molecule(i)
        name = _which(m)  # also checks the net charge survived (cation and anion)
        seen.add(name)
        ref = fq.reference(name)
        np.testing.assert_allclose(m["R"], ref["R"], atol=2e-6)
        np.testing.assert_allclose(m["grid"], ref["grid"], atol=2e-6)
        dev = np.abs(m["esp"] - fq.reference_esp(name, m["grid"])).max()
        assert dev < TOL[fmt], (fmt, name, dev)
        if fmt in ("gesp", "extxyz", "hdf5"):
            assert m["mono"] is not None
            np.testing.assert_allclose(m["mono"], ref["mono"], atol=2e-7)
        else:
            assert m["mono"] is None
        if fmt == "gesp":
            np.testing.assert_allclose(m["dipole"], ref["dipole"], atol=1e-7)
    assert seen == set(fq.MOLECULES)
    assert any("sanity checks passed" in ln for ln in report)


def test_cube_reader_shells_and_density(qm_files):
    ds, report = _load(qm_files["cube"])
    assert sorted(ds.net_charge.tolist()) == [-1.0, 0.0, 1.0]
    for i in range(len(ds)):
        m = ds.molecule(i)
        name = _which(m)
        dev = np.abs(m["esp"] - fq.reference_esp(name, m["grid"])).max()
        assert dev < TOL["cube"], (name, dev)
        # every kept point lies on one of the shells within half a voxel
        from ase.data import vdw_radii
        r = vdw_radii[m["Z"]]
        d = np.linalg.norm(m["grid"][:, None].astype(float) - m["R"][None], axis=-1)
        cube = parse_cube(Path(qm_files["cube"]) / f"{name}_pot.cube")
        h = np.linalg.norm(cube.axes, axis=1).max()
        on = np.zeros(len(d), bool)
        for s in (1.4, 1.6, 1.8, 2.0):
            on |= np.abs((d - s * r).min(axis=1)) <= 0.5 * h + 1e-6
        assert on.all()
    text = "\n".join(report)
    assert "density cube" in text and "vdW shells" in text
    assert text.count("used with") >= 3  # the density cubes were paired, not read as data


def test_cube_outside_mode_angstrom_cube_and_no_density(qm_files, tmp_path):
    pot = Path(qm_files["cube"]) / "hydronium_pot.cube"
    shells, _ = read_cube(pot)
    outside, rep = read_cube(pot, options=ReadOptions(cube_mode="outside", cube_min_scale=1.4))
    assert outside.n_grid[0] > shells.n_grid[0]
    from ase.data import vdw_radii
    d = np.linalg.norm(outside.grid[:, None].astype(float) - outside.R[None], axis=-1)
    assert ((d / vdw_radii[outside.Z][None]).min(axis=1) >= 1.4 - 1e-6).all()
    assert outside.net_charge[0] == 1.0 and any("estimated from the ESP" in ln for ln in rep)
    # the same cube with negative voxel counts (Å) must give the same points and values
    lines = pot.read_text().splitlines()
    t = lines[2].split()
    lines[2] = f"{int(t[0]):5d}" + "".join(f"{float(x) * BOHR_TO_ANGSTROM:12.6f}" for x in t[1:4])
    for k in (3, 4, 5):
        t = lines[k].split()
        lines[k] = f"{-int(t[0]):5d}" + "".join(
            f"{float(x) * BOHR_TO_ANGSTROM:12.6f}" for x in t[1:4])
    for k in range(6, 6 + 4):
        t = lines[k].split()
        lines[k] = f"{int(t[0]):5d}{float(t[1]):12.6f}" + "".join(
            f"{float(x) * BOHR_TO_ANGSTROM:12.6f}" for x in t[2:5])
    ang = tmp_path / "h3o_angstrom.txt"  # odd extension: detection is by content
    ang.write_text("\n".join(lines) + "\n")
    assert sniff(ang) == "cube"
    a, rep = read_cube(ang)
    assert any("Å" in ln for ln in rep)
    # same selection up to points that sit exactly on a shell boundary (rounded header)
    assert a.n_grid[0] == pytest.approx(shells.n_grid[0], rel=0.005)
    assert np.abs(a.esp - fq.reference_esp("hydronium", a.grid)).max() < TOL["cube"]


def test_cube_user_charge_contradicted_by_density_and_esp(qm_files):
    pot = Path(qm_files["cube"]) / "water_pot.cube"
    dens = Path(qm_files["cube"]) / "water_dens.cube"
    with pytest.raises(DataError, match="electron density integrates"):
        read_cube(pot, dens, ReadOptions(net_charge=-2))
    with pytest.raises(DataError, match="density cube, not an ESP cube"):
        read_cube(dens)


# ---------------------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def canonical():
    mols = []
    for name in fq.MOLECULES:
        ref = fq.reference(name)
        mols.append({k: ref[k] for k in ("Z", "R", "grid", "esp", "net_charge", "mono",
                                          "dipole", "name")})
    return Dataset.from_molecules(mols, source="reference")


def _write(fmt, ds, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "gesp":
        for i in range(len(ds)):
            write_gaussian_esp(ds.molecule(i), folder / f"m{i}.esp")
    elif fmt == "espot":
        for i in range(len(ds)):
            write_espot(ds.molecule(i), folder / f"m{i}.espot")
    elif fmt == "psi4":
        for i in range(len(ds)):
            write_psi4_grid(ds.molecule(i), folder / f"m{i}",
                            geometry="xyz" if i % 2 else "output")
    elif fmt == "orca":
        for i in range(len(ds)):
            write_orca(ds.molecule(i), folder, name=f"m{i}")
    elif fmt == "hdf5":
        return write_hdf5(ds, folder / "d.h5")
    elif fmt == "extxyz":
        return write_extxyz(ds, folder / "d.extxyz")
    elif fmt == "mmml":
        return write_mmml_npz(ds, folder / "d.npz")
    return folder


@pytest.mark.parametrize("fmt", ["gesp", "espot", "psi4", "orca", "hdf5", "extxyz", "mmml"])
def test_round_trip_canonical_format_canonical(canonical, tmp_path, fmt):
    if fmt == "hdf5":
        pytest.importorskip("h5py")
    back, _ = _load(_write(fmt, canonical, tmp_path / fmt))
    assert len(back) == len(canonical)
    order = [int(np.flatnonzero((canonical.net_charge == back.net_charge[i]))[0])
             for i in range(len(back))]
    for i, j in enumerate(order):
        a, b = back.molecule(i), canonical.molecule(j)
        np.testing.assert_array_equal(a["Z"], b["Z"])
        assert a["net_charge"] == b["net_charge"]
        np.testing.assert_allclose(a["R"], b["R"], atol=1e-6)
        np.testing.assert_allclose(a["grid"], b["grid"], atol=1e-6)
        np.testing.assert_allclose(a["esp"], b["esp"], atol=1e-7, rtol=1e-6)
        if fmt in ("gesp", "hdf5", "extxyz", "mmml"):
            np.testing.assert_allclose(a["mono"], b["mono"], atol=1e-7)
        if fmt in ("gesp", "hdf5", "extxyz", "mmml"):
            np.testing.assert_allclose(a["dipole"], b["dipole"], atol=1e-7)


# ---------------------------------------------------------------------------- detection
def test_detection_by_content_not_extension(qm_files, tmp_path):
    pytest.importorskip("h5py")
    cases = {
        Path(qm_files["gesp"]) / "water.esp": "gaussian_esp",
        Path(qm_files["cube"]) / "water_pot.cube": "cube",
        Path(qm_files["cube"]) / "water_dens.cube": "cube_density",
        Path(qm_files["espot"]) / "water.espot": "espot",
        Path(qm_files["espot"]) / "water.xyz": "xyz",
        Path(qm_files["psi4"]) / "water" / "grid.dat": "psi4_grid",
        Path(qm_files["psi4"]) / "water" / "grid_esp.dat": "psi4_esp",
        Path(qm_files["psi4"]) / "water" / "output.dat": "psi4_output",
        Path(qm_files["orca"]) / "water.inp": "orca_input",
        Path(qm_files["orca"]) / "water_vpot.out": "orca_vpot",
        Path(qm_files["hdf5"]): "hdf5",
        Path(qm_files["extxyz"]): "extxyz",
    }
    for i, (src, kind) in enumerate(cases.items()):
        dst = tmp_path / f"file{i}.bin"
        shutil.copy(src, dst)
        assert sniff(dst) == kind, src


def test_espot_with_xyz_charge_and_mixed_folder_load(qm_files, tmp_path):
    pytest.importorskip("h5py")
    # the xyz comment states the charge: used instead of the estimate
    d = tmp_path / "mix"
    fq.espot_file("formate", d / "anion.espot")
    fq.xyz_file("formate", d / "anion.xyz", comment="charge=-1 multiplicity=1")
    shutil.copy(Path(qm_files["gesp"]) / "hydronium.esp", d / "cation.esp")
    shutil.copy(qm_files["extxyz"], d / "all.extxyz")
    ds, rep = _load([d, qm_files["hdf5"]])
    assert len(ds) == 1 + 1 + 3 + 6
    assert any("net charge -1 e from anion.xyz" in ln for ln in rep)
    assert any("combined 4 files" in ln for ln in rep)


def test_psi4_with_xyz_geometry_and_prefixed_names(tmp_path):
    d = tmp_path / "resp_run"
    fq.psi4_files("hydronium", d, with_output=False)
    (d / "grid.dat").rename(d / "1_h3o_grid.dat")
    (d / "grid_esp.dat").rename(d / "1_h3o_grid_esp.dat")
    fq.xyz_file("hydronium", d / "h3o.xyz", comment="charge=1")
    ds, rep = _load(d)
    assert ds.net_charge.tolist() == [1.0]
    assert any("1_h3o_grid.dat" in ln for ln in rep)


def test_prepare_datasets_reads_any_format(qm_files):
    from dcmnet.data import prepare_datasets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, valid = prepare_datasets(0, num_train=6, num_valid=3,
                                        filename=[qm_files["gesp"], qm_files["extxyz"],
                                                  qm_files["orca"]], verbose=False)
    assert len(train) == 6 and len(valid) == 3
    assert sorted(set(np.concatenate([train.net_charge, valid.net_charge]))) == [-1, 0, 1]


# ---------------------------------------------------------------------------- CLI
def test_cli_inspect_and_convert(qm_files, tmp_path, capsys):
    files = [str(Path(qm_files["gesp"]) / "formate.esp"), str(qm_files["extxyz"]),
             str(Path(qm_files["psi4"]) / "hydronium")]
    assert main(["inspect", *files]) == 0
    out = capsys.readouterr().out
    for text in ("Gaussian ESP file", "extended XYZ", "psi4 grid_esp.dat",
                 "grid points per molecule", "net charges: ", "ESP range", "elements (atoms)",
                 "all 3 readable files together", "Merz–Kollman ESP charges"):
        assert text in out, text
    target = tmp_path / "out.npz"
    assert main(["convert", *files, "--out", str(target), "--quiet"]) == 0
    ds = Dataset.load(target)
    assert len(ds) == 5 and sorted(set(ds.net_charge)) == [-1.0, 0.0, 1.0]
    assert "wrote 5 molecules" in capsys.readouterr().out
    # a bad file: inspect shows the good ones and the error, exit status 2
    bad = tmp_path / "bad.esp"
    bad.write_text(" ESP FILE - ATOMIC UNITS\n CHARGE =  0 - MULTIPLICITY =   1\n")
    assert main(["inspect", files[0], str(bad)]) == 2
    captured = capsys.readouterr()
    assert "ERROR" in captured.out and "bad.esp" in captured.out


def test_cli_units_override(qm_files, tmp_path, capsys):
    ds = load_dataset(Path(qm_files["gesp"]) / "water.esp", verbose=False)
    m = ds.molecule(0)
    kcal = {**m, "esp": m["esp"] * 627.509474}
    p = tmp_path / "kcal.extxyz"
    write_extxyz(kcal, p)
    assert main(["convert", str(p), "--out", str(tmp_path / "x.npz"), "--quiet"]) == 2
    assert "kcal/mol" in capsys.readouterr().err
    assert main(["convert", str(p), "--esp-unit", "kcal/mol", "--out",
                 str(tmp_path / "x.npz"), "--quiet"]) == 0
    back = Dataset.load(tmp_path / "x.npz")
    np.testing.assert_allclose(back.esp, m["esp"], rtol=1e-6)


def test_touching_fortran_fields_and_exact_stem_pairing(qm_files, tmp_path):
    # Gaussian numbers printed without a separating space are still read
    src = (Path(qm_files["gesp"]) / "water.esp").read_text().splitlines()
    k = next(i for i, ln in enumerate(src) if "#POINTS" in ln) + 1
    src[k] = src[k].replace(" -0.", "-0.").replace("  0.", " 0.")
    p = tmp_path / "touch.esp"
    p.write_text("\n".join(src) + "\n")
    a, _ = _load(p)
    b, _ = _load(Path(qm_files["gesp"]) / "water.esp")
    np.testing.assert_array_equal(a.esp, b.esp)
    # mol1.espot pairs with mol1.xyz, not with mol10.xyz
    d = tmp_path / "pairs"
    fq.espot_file("water", d / "mol1.espot")
    fq.xyz_file("water", d / "mol1.xyz")
    fq.espot_file("formate", d / "mol10.espot")
    fq.xyz_file("formate", d / "mol10.xyz")
    ds, rep = _load(d)
    assert sorted(ds.n_atoms.tolist()) == [3, 4]
    assert any("mol1.xyz: xyz geometry, used with mol1.espot" in ln for ln in rep)


def test_companions_found_next_to_a_single_given_file(qm_files):
    for path, kind in ((Path(qm_files["espot"]) / "formate.espot", "xyz geometry"),
                       (Path(qm_files["orca"]) / "hydronium_vpot.out", "ORCA input"),
                       (Path(qm_files["psi4"]) / "water" / "grid_esp.dat", "psi4 output"),
                       (Path(qm_files["cube"]) / "formate_pot.cube", "electron density")):
        ds, rep = _load(path)
        assert len(ds) == 1
        assert any(kind in ln and "found next to it" in ln for ln in rep), (path, rep)
