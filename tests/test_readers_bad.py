"""Bad input: one clear error per case (file, field/line, molecule, what to do)."""
from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fixtures_qm as fq
from dcmnet.data import load_dataset
from dcmnet.data.readers import (ReadOptions, read_espot, read_extxyz, read_gaussian_esp,
                                 read_hdf5, read_orca_vpot, read_psi4_grid, read_xyz_geometry,
                                 sniff)
from dcmnet.data.readers.chemistry import check_electron_count
from dcmnet.errors import DataError, OptionalDependencyError

pytestmark = pytest.mark.qm
pytest.importorskip("pyscf")


@pytest.fixture(scope="session")
def qm_files(tmp_path_factory):
    return fq.qm_files_fixture(tmp_path_factory)


def _load(paths, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(paths, verbose=False, **kw)


def _edit(src: Path, dst: Path, fn) -> Path:
    lines = Path(src).read_text().splitlines()
    dst.write_text("\n".join(fn(lines)) + "\n")
    return dst


def _first_value_line(lines):
    return next(i for i, ln in enumerate(lines) if "#POINTS" in ln) + 1


# ---------------------------------------------------------------------------- NaN / Inf
def test_nan_in_gaussian_esp_names_file_field_molecule(qm_files, tmp_path):
    def nan(lines):
        k = _first_value_line(lines) + 3
        t = lines[k].split()
        lines[k] = " NaN " + " ".join(t[1:])
        return lines
    p = _edit(Path(qm_files["gesp"]) / "water.esp", tmp_path / "nan.esp", nan)
    with pytest.raises(DataError) as exc:
        read_gaussian_esp(p)
    msg = str(exc.value)
    assert "nan.esp" in msg and "'esp'" in msg and "molecule 0" in msg and "NaN" in msg


def test_inf_in_psi4_values(qm_files, tmp_path):
    d = tmp_path / "psi4"
    shutil.copytree(Path(qm_files["psi4"]) / "water", d)
    lines = (d / "grid_esp.dat").read_text().splitlines()
    lines[4] = "inf"
    (d / "grid_esp.dat").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"grid_esp.dat: field 'esp' of molecule 0 contains NaN"):
        _load(d)


# ---------------------------------------------------------------------------- counts
def test_gaussian_point_count_mismatch(qm_files, tmp_path):
    p = _edit(Path(qm_files["gesp"]) / "water.esp", tmp_path / "short.esp",
              lambda lines: lines[:-5])
    with pytest.raises(DataError, match=r"short.esp: molecule 0 announces 146 ESP points in its header but 141 follow"):
        read_gaussian_esp(p)


def test_psi4_line_counts_must_match(qm_files, tmp_path):
    d = tmp_path / "psi4"
    shutil.copytree(Path(qm_files["psi4"]) / "water", d)
    lines = (d / "grid_esp.dat").read_text().splitlines()
    (d / "grid_esp.dat").write_text("\n".join(lines[:-2]) + "\n")
    from dcmnet.data.readers.registry import read_geometry
    with pytest.raises(DataError, match=r"has 144 values but grid.dat has 146 points"):
        read_psi4_grid(d / "grid.dat", d / "grid_esp.dat", read_geometry(d / "output.dat"))


def test_espot_and_orca_count_mismatch(qm_files, tmp_path):
    p = _edit(Path(qm_files["espot"]) / "water.espot", tmp_path / "w.espot",
              lambda lines: lines[:-1])
    geo = read_xyz_geometry(Path(qm_files["espot"]) / "water.xyz")
    with pytest.raises(DataError, match=r"w.espot: line 1 announces 3 atoms and 146 points"):
        read_espot(p, geo)
    p = _edit(Path(qm_files["orca"]) / "water_vpot.out", tmp_path / "w_vpot.out",
              lambda lines: lines[:-3])
    with pytest.raises(DataError, match=r"line 1 announces 146 points but 143 lines follow"):
        read_orca_vpot(p, geo)


def test_geometry_with_other_atoms(qm_files):
    geo = read_xyz_geometry(Path(qm_files["espot"]) / "hydronium.xyz")
    with pytest.raises(DataError, match=r"holds 3 atoms but its geometry hydronium.xyz has 4"):
        read_espot(Path(qm_files["espot"]) / "water.espot", geo)


def test_espot_without_geometry(qm_files, tmp_path):
    shutil.copy(Path(qm_files["espot"]) / "water.espot", tmp_path / "lonely.espot")
    with pytest.raises(DataError, match=r"needs the xyz geometry.*NAME.xyz"):
        _load(tmp_path / "lonely.espot")


# ---------------------------------------------------------------------------- pickles, ragged
def test_ragged_object_array_refused(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 3)), np.zeros((4, 3))
    np.savez(tmp_path / "r.npz", positions=ragged, atomic_numbers=np.ones((2, 4)),
             esp_values=np.zeros((2, 5)), grid=np.zeros((2, 5, 3)))
    with pytest.raises(DataError, match=r"field 'positions' is stored as pickled Python objects.*"
                                        "never unpickles"):
        _load(tmp_path / "r.npz")


# ---------------------------------------------------------------------------- elements
def test_unknown_element_symbols(qm_files, tmp_path):
    p = _edit(Path(qm_files["gesp"]) / "water.esp", tmp_path / "xx.esp",
              lambda lines: lines[:3] + [" Xx" + lines[3][3:]] + lines[4:])
    with pytest.raises(DataError, match=r"xx.esp: unknown element symbol 'Xx' \(line 4\)"):
        read_gaussian_esp(p)
    d = tmp_path / "espot"
    d.mkdir()
    shutil.copy(Path(qm_files["espot"]) / "water.espot", d / "w.espot")
    (d / "w.xyz").write_text("3\n\nO 0 0 0\nQq 1 0 0\nH 0 1 0\n")
    with pytest.raises(DataError, match=r"w.xyz: unknown element symbol 'Qq' \(line 4\)"):
        _load(d)
    np.savez(tmp_path / "sym.npz", R=np.zeros((1, 2, 3)), elements=np.array([["O", "Zz"]]),
             esp=np.ones((1, 4)), vdw_surface=np.ones((1, 4, 3)))
    with pytest.raises(DataError, match=r"field 'Z' of molecule 0 holds the unknown element "
                                        "symbol 'Zz'"):
        _load(tmp_path / "sym.npz")


# ---------------------------------------------------------------------------- geometry
def test_atoms_on_top_of_each_other(qm_files, tmp_path):
    text = Path(qm_files["extxyz"]).read_text().splitlines()
    n = int(text[0])
    # duplicate the first atom of the first frame (same position)
    frame = [str(n + 1), text[1], text[2]] + text[2:2 + n]
    p = tmp_path / "dup.extxyz"
    p.write_text("\n".join(frame) + "\n")
    with pytest.raises(DataError, match=r"dup.extxyz: atoms 0 and 1 of molecule 0 are 0.000 Å "
                                        "apart \\(on top of each other"):
        _load(p)


def test_empty_molecule_and_molecule_without_grid(qm_files, tmp_path):
    # NPZ molecule whose atom slots are all padding
    np.savez(tmp_path / "e.npz", R=np.zeros((2, 3, 3)), Z=np.array([[8, 1, 1], [0, 0, 0]]),
             esp=np.ones((2, 4)), vdw_surface=np.ones((2, 4, 3)))
    with pytest.raises(DataError, match=r"field 'Z' of molecule 1 has no real atom"):
        _load(tmp_path / "e.npz")
    # Gaussian file with zero ESP points
    p = _edit(Path(qm_files["gesp"]) / "water.esp", tmp_path / "nogrid.esp",
              lambda lines: lines[:_first_value_line(lines) - 1]
              + [" ESP VALUES AND GRID POINT COORDINATES. #POINTS =        0"])
    with pytest.raises(DataError, match=r"nogrid.esp: molecule 0 has no ESP grid points"):
        read_gaussian_esp(p)
    # extxyz frame without 'X' rows
    p = tmp_path / "nox.extxyz"
    p.write_text("3\nProperties=species:S:1:pos:R:3:esp:R:1 charge=0\n"
                 "O 0 0 0 0\nH 0.96 0 0 0\nH 0 0.96 0 0\n")
    with pytest.raises(DataError, match=r"nox.extxyz: molecule 0 has no ESP grid points"):
        read_extxyz(p)


# ---------------------------------------------------------------------------- charges
def test_charge_inconsistent_with_electron_count(qm_files, tmp_path):
    p = _edit(Path(qm_files["gesp"]) / "water.esp", tmp_path / "mult.esp",
              lambda lines: [lines[0], " CHARGE =  0 - MULTIPLICITY =   2"] + lines[2:])
    with pytest.raises(DataError, match=r"mult.esp: net charge of molecule 0 \+0 e gives 10 "
                                        "electrons, impossible with multiplicity 2"):
        read_gaussian_esp(p)
    with pytest.raises(DataError, match="integrates to 9.00"):
        check_electron_count([8, 1, 1], -1, "f.cube", n_electrons=9.0)
    # ORCA input stating an impossible charge/multiplicity pair
    d = tmp_path / "orca"
    d.mkdir()
    shutil.copy(Path(qm_files["orca"]) / "water_vpot.out", d / "water_vpot.out")
    text = (Path(qm_files["orca"]) / "water.inp").read_text().replace("* xyz 0 1", "* xyz 1 1")
    (d / "water.inp").write_text(text)
    with pytest.raises(DataError, match=r"net charge \+1 e gives 9 electrons, impossible with "
                                        "multiplicity 1"):
        _load(d)


def test_user_charge_only_for_files_that_do_not_state_it(qm_files):
    with pytest.warns(UserWarning, match=r"states net charge \+1 e .* --net-charge \+0 only "
                                         "applies to files that do not state it"):
        ds, _ = read_gaussian_esp(Path(qm_files["gesp"]) / "hydronium.esp",
                                  ReadOptions(net_charge=0))
    assert ds.net_charge.tolist() == [1.0]
    # a file that does not state it takes the user's value (here: a wrong one is caught by
    # the ESP check as a warning, not silently accepted)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = load_dataset(Path(qm_files["espot"]) / "hydronium.espot", verbose=False,
                          net_charge=0)
    assert ds.net_charge.tolist() == [0.0]
    assert any("looks like that of a" in str(x.message) for x in w)


# ---------------------------------------------------------------------------- formats
def test_unrecognised_and_companion_only_files(qm_files, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("this is not an ESP file\n1 2\n")
    with pytest.raises(DataError, match=r"notes.txt is in a format dcmnet does not recognise.*"
                                        "Gaussian cube"):
        sniff(p)
    shutil.copy(Path(qm_files["cube"]) / "water_dens.cube", tmp_path / "only_density.cube")
    with pytest.raises(DataError, match=r"electron-density cube without a potential cube"):
        _load(tmp_path / "only_density.cube")
    shutil.copy(Path(qm_files["psi4"]) / "water" / "grid_esp.dat", tmp_path / "grid_esp.dat")
    with pytest.raises(DataError, match=r"ESP values without their points"):
        _load(tmp_path / "grid_esp.dat")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"single .npy array"):
        _load(tmp_path / "a.npy")


def test_hdf5_without_esp_and_without_h5py(qm_files, tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    p = tmp_path / "spice_plain.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("water")
        g.create_dataset("atomic_numbers", data=np.array([8, 1, 1], np.int16))
        g.create_dataset("conformations", data=np.zeros((1, 3, 3)))
    with pytest.raises(DataError, match=r"none of its 1 molecule groups holds ESP data.*SPICE "
                                        "dataset itself has no ESP grid"):
        read_hdf5(p)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(OptionalDependencyError, match=r"pip install 'dcmnet\[hdf5\]'"):
        read_hdf5(qm_files["hdf5"])


def test_multi_file_load_reports_all_bad_files(qm_files, tmp_path):
    good = Path(qm_files["gesp"]) / "water.esp"
    bad1 = _edit(good, tmp_path / "bad1.esp", lambda lines: lines[:-3])
    bad2 = tmp_path / "bad2.extxyz"
    bad2.write_text("2\nProperties=species:S:1:pos:R:3:esp:R:1\nO 0 0 0 0\nH 0.9 0 0 0\n")
    bad3 = tmp_path / "bad3.npz"
    np.savez(bad3, foo=np.zeros(3))
    with pytest.raises(DataError) as exc:
        _load([good, bad1, bad2, bad3])
    msg = str(exc.value)
    assert "3 of 4 data files could not be loaded" in msg
    assert "bad1.esp" in msg and "announces 146 ESP points" in msg
    assert "bad2.extxyz" in msg and "no ESP grid points" in msg
    assert "bad3.npz" in msg and "unknown NPZ layout" in msg
