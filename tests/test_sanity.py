"""Unit sanity checks: each classic mistake gives an actionable message; clean data passes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import fixtures_qm as fq
from dcmnet import units
from dcmnet.data import Dataset, bundled_dataset_path, load_dataset
from dcmnet.data.readers import write_extxyz
from dcmnet.data.sanity import apply_checks, check_dataset
from dcmnet.errors import DataError

pytestmark = pytest.mark.qm
pytest.importorskip("pyscf")


@pytest.fixture(scope="module")
def ref_ds():
    mols = []
    for name in fq.MOLECULES:
        r = fq.reference(name)
        mols.append({k: r[k] for k in ("Z", "R", "grid", "esp", "net_charge", "mono", "name")})
    return Dataset.from_molecules(mols, source="reference")


def _with(ds, **fields):
    mols = []
    for i in range(len(ds)):
        m = ds.molecule(i)
        for k, f in fields.items():
            m[k] = f(m)
        mols.append(m)
    return Dataset.from_molecules(mols, source="modified")


def _errors(ds, **kw):
    return [f for f in check_dataset(ds, **kw) if f.level == "error"]


def test_clean_data_passes(ref_ds):
    assert check_dataset(ref_ds) == []
    bundled = Dataset.load(bundled_dataset_path())
    assert check_dataset(bundled) == []


def test_bohr_read_as_angstrom(ref_ds):
    bohr = _with(ref_ds, R=lambda m: m["R"] * units.ANGSTROM_TO_BOHR,
                 grid=lambda m: m["grid"] * units.ANGSTROM_TO_BOHR)
    (f,) = _errors(bohr)
    assert f.check == "bond_lengths"
    assert "1.89" in f.message and "Bohr" in f.message and "--length-unit bohr" in f.message
    # the user said the unit: downgraded to a warning
    assert not _errors(bohr, length_unit_given=True)


def test_angstrom_read_as_bohr(ref_ds):
    small = _with(ref_ds, R=lambda m: m["R"] * units.BOHR_TO_ANGSTROM,
                  grid=lambda m: m["grid"] * units.BOHR_TO_ANGSTROM)
    (f,) = _errors(small)
    assert "0.53" in f.message and "--length-unit angstrom" in f.message


@pytest.mark.parametrize("unit,factor", [("kcal/mol", units.HARTREE_TO_KCAL_MOL),
                                         ("volt", units.HARTREE_PER_E_TO_VOLT),
                                         ("kj/mol", units.HARTREE_TO_KJ_MOL)])
def test_esp_in_wrong_unit(ref_ds, unit, factor):
    big = _with(ref_ds, esp=lambda m: m["esp"] * factor)
    (f,) = _errors(big)
    assert f.check == "esp_units"
    assert f"--esp-unit {unit}" in f.message and "far too large" in f.message


def test_esp_unit_override_end_to_end(tmp_path):
    r = fq.reference("water")
    m = {k: r[k] for k in ("Z", "R", "grid", "net_charge", "mono", "name")}
    m["esp"] = r["esp"] * units.HARTREE_TO_KCAL_MOL
    p = write_extxyz(m, tmp_path / "kcal.extxyz")
    with pytest.raises(DataError, match=r"kcal.extxyz: the ESP is far too large .* --esp-unit "
                                        "kcal/mol"):
        load_dataset(p, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(p, verbose=False, esp_unit="kcal/mol")
    np.testing.assert_allclose(ds.esp, r["esp"], rtol=1e-6)


def test_grid_in_other_unit_than_atoms(ref_ds):
    g_bohr = _with(ref_ds, grid=lambda m: m["grid"] * units.ANGSTROM_TO_BOHR)
    (f,) = _errors(g_bohr)
    assert f.check == "grid_units" and "grid looks like it is in Bohr" in f.message


def test_grid_far_from_molecule(ref_ds):
    moved = _with(ref_ds, grid=lambda m: m["grid"] + np.array([25.0, 0.0, 0.0]))
    (f,) = _errors(moved)
    assert f.check == "grid_units" and "centroid" in f.message and "frames" in f.message


def test_grid_points_inside_atoms(ref_ds):
    def add_inner(m):
        return np.concatenate([m["grid"], m["R"] + np.array([0.3, 0.0, 0.0])])

    def inner_esp(m):
        pts = np.concatenate([m["grid"], m["R"] + np.array([0.3, 0.0, 0.0])])
        return np.concatenate([m["esp"], np.ones(len(m["R"]))])[: len(pts)]
    some = _with(ref_ds, esp=inner_esp, grid=add_inner)
    found = check_dataset(some)
    (f,) = [f for f in found if f.check == "grid_inside_atoms"]
    assert f.level == "warning" and "inside the atoms' vdW spheres" in f.message
    # mostly inside: an error
    most = _with(ref_ds, grid=lambda m: (m["grid"] - m["R"].mean(0)) * 0.2 + m["R"].mean(0))
    errs = _errors(most)
    assert errs and errs[0].check in ("grid_inside_atoms", "grid_units")


def test_net_charge_contradicted_by_esp(ref_ds):
    wrong = _with(ref_ds, net_charge=lambda m: 0.0, mono=lambda m: None)
    found = check_dataset(wrong)
    f = [x for x in found if x.check == "net_charge_esp"]
    assert f and f[0].level == "warning" and "looks like that of a" in f[0].message


def test_apply_checks_reports_and_raises(ref_ds, tmp_path):
    lines = []
    apply_checks(ref_ds, tmp_path / "ok.npz", lines)
    assert lines and "sanity checks passed" in lines[0]
    bad = _with(ref_ds, esp=lambda m: m["esp"] * units.HARTREE_TO_KCAL_MOL)
    with pytest.raises(DataError, match=r"bad.npz: the ESP is far too large"):
        apply_checks(bad, tmp_path / "bad.npz", [])
