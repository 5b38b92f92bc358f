"""mmml-style padded NPZ reader/writer and the format-detecting loader."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.data import atomic_masses
from ase.units import create_units

from dcmnet import units
from dcmnet.data import (Dataset, bundled_dataset_path, load_dataset, load_dataset_with_report,
                         read_mmml_npz, write_mmml_npz)
from dcmnet.data import loader as loader_mod
from dcmnet.errors import DataError


# ---------------------------------------------------------------------------- fixtures
def _shell_points(R: np.ndarray, n_per_atom: int, radius: float) -> np.ndarray:
    """Fibonacci-sphere points around each atom, outside every atom's sphere."""
    k = np.arange(n_per_atom) + 0.5
    phi = np.arccos(1 - 2 * k / n_per_atom)
    theta = np.pi * (1 + 5 ** 0.5) * k
    unit = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)
    pts = (R[:, None, :] + radius * unit[None]).reshape(-1, 3)
    d = np.linalg.norm(pts[:, None, :] - R[None], axis=-1)
    return pts[(d >= radius * 0.999).all(axis=1)]


def _esp(points: np.ndarray, R: np.ndarray, q: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(points[:, None, :] - R[None], axis=-1) * units.ANGSTROM_TO_BOHR
    return (q[None, :] / d).sum(axis=1)


def _molecule(Z, R, q, name, n_per_atom=24, radius=1.8, dipole=True, mono=True):
    Z = np.asarray(Z)
    R = np.asarray(R, float)
    q = np.asarray(q, float)
    grid = _shell_points(R, n_per_atom, radius)
    m = atomic_masses[Z]
    com = (m[:, None] * R).sum(0) / m.sum()
    return {"Z": Z, "R": R, "grid": grid, "esp": _esp(grid, R, q),
            "net_charge": float(np.round(q.sum())), "mono": q if mono else None,
            "dipole": (q[:, None] * (R - com)).sum(0) if dipole else None, "name": name}


def _water(shift=(0.0, 0.0, 0.0)):
    R = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    return _molecule([8, 1, 1], R + np.asarray(shift), [-0.8, 0.4, 0.4], "water")


def _ammonium():
    t = 1.03 / np.sqrt(3)
    R = np.array([[0, 0, 0], [t, t, t], [-t, -t, t], [-t, t, -t], [t, -t, -t]], float)
    return _molecule([7, 1, 1, 1, 1], R + [0.3, -0.2, 0.1], [-0.4, 0.35, 0.35, 0.35, 0.35],
                     "ammonium")


def _formate():
    R = np.array([[0.0, 0.0, 0.0], [1.13, 0.65, 0.0], [-1.13, 0.65, 0.0], [0.0, -1.10, 0.0]])
    return _molecule([6, 8, 8, 1], R, [0.7, -0.8, -0.8, -0.1], "formate")


def _methanol():
    R = np.array([[-0.0469, 0.6645, 0.0], [-0.0469, -0.7590, 0.0], [-1.0869, 0.9760, 0.0],
                  [0.4372, 1.0800, 0.8900], [0.4372, 1.0800, -0.8900], [0.8700, -1.0700, 0.0]])
    return _molecule([6, 8, 1, 1, 1, 1], R, [0.12, -0.65, 0.03, 0.03, 0.03, 0.44], "methanol")


@pytest.fixture
def small_dataset() -> Dataset:
    return Dataset.from_molecules([_water(), _ammonium(), _formate(), _methanol()],
                                  source="synthetic")


def _padded(mols, n_slots=None, g_slots=None):
    """A raw mmml-style dict (no optional keys) for a list of molecule dicts."""
    n = len(mols)
    A = n_slots or max(len(m["Z"]) for m in mols)
    G = g_slots or max(len(m["esp"]) for m in mols)
    out = {"R": np.zeros((n, A, 3)), "Z": np.zeros((n, A), np.int64),
           "esp": np.zeros((n, G)), "vdw_surface": np.zeros((n, G, 3)),
           "mono": np.zeros((n, A)), "N": np.zeros(n, np.int64), "n_grid": np.zeros(n, int)}
    for i, m in enumerate(mols):
        a, g = len(m["Z"]), len(m["esp"])
        out["R"][i, :a] = m["R"]
        out["Z"][i, :a] = m["Z"]
        out["mono"][i, :a] = m["mono"]
        out["esp"][i, :g] = m["esp"]
        out["vdw_surface"][i, :g] = m["grid"]
        out["N"][i], out["n_grid"][i] = a, g
    return out


# ---------------------------------------------------------------------------- round trip
def test_round_trip_canonical_mmml_canonical(small_dataset, tmp_path):
    ds = small_dataset
    p = write_mmml_npz(ds, tmp_path / "mm.npz")
    with np.load(p, allow_pickle=False) as z:
        # Dxyz is stored in atomic units (e·Bohr) about 'com' = centre of mass
        np.testing.assert_allclose(z["Dxyz"] * units.EBOHR_TO_EANGSTROM, ds.dipole, rtol=1e-12)
        np.testing.assert_allclose(z["com"], ds.centre_of_mass())
        np.testing.assert_array_equal(z["Q"], ds.net_charge)
        assert z["Z"].shape == (4, 6) and (z["Z"][0, 3:] == 0).all()
    back, report = read_mmml_npz(p)
    for f in ("n_atoms", "n_grid", "Z", "net_charge", "has_mono", "has_dipole", "name"):
        np.testing.assert_array_equal(getattr(back, f), getattr(ds, f), err_msg=f)
    for f in ("R", "grid", "esp", "mono", "dipole"):
        np.testing.assert_allclose(getattr(back, f), getattr(ds, f), rtol=1e-6, atol=1e-12,
                                   err_msg=f)
    assert back.esp.dtype == np.float32 and back.grid.dtype == np.float32
    assert any("from 'Q'" in line for line in report)
    # and through the canonical file + loader
    ds.save(tmp_path / "canon.npz")
    both, rep = load_dataset_with_report([tmp_path / "canon.npz", p])
    assert len(both) == 8
    assert any("canonical" in line for line in rep) and any("mmml" in line for line in rep)
    np.testing.assert_allclose(both.dipole[:4], both.dipole[4:], rtol=1e-12)


def test_dxyz_unit_conversion_ebohr(tmp_path):
    raw = _padded([_water()])
    raw["Dxyz"] = np.array([[1.0, 0.0, -2.0]])  # e·Bohr
    np.savez(tmp_path / "w.npz", **raw)
    ds, _ = read_mmml_npz(tmp_path / "w.npz")
    Bohr = create_units("2018")["Bohr"]  # CODATA 2018, independent of dcmnet.units
    np.testing.assert_allclose(ds.dipole[0], [Bohr, 0.0, -2 * Bohr], rtol=1e-12)
    assert ds.has_dipole[0]


def test_partial_mono_and_dipole_round_trip(tmp_path):
    mols = [_water(), _molecule([8, 1, 1], _water()["R"], [-0.8, 0.4, 0.4], "w2", mono=False,
                                dipole=False)]
    ds = Dataset.from_molecules(mols)
    back, _ = read_mmml_npz(write_mmml_npz(ds, tmp_path / "p.npz"))
    np.testing.assert_array_equal(back.has_mono, [True, False])
    np.testing.assert_array_equal(back.has_dipole, [True, False])
    assert (back.mono[3:] == 0).all() and (back.dipole[1] == 0).all()


# ---------------------------------------------------------------------------- padding
def test_real_atom_at_origin_is_kept(tmp_path):
    w = _water(shift=(0.0, 0.0, -0.1173))  # oxygen exactly at the origin
    assert (w["R"][0] == 0).all()
    raw = _padded([w, _methanol()])
    del raw["N"]  # counts must come from Z > 0, not from positions
    np.savez(tmp_path / "o.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "o.npz")
    assert ds.n_atoms.tolist() == [3, 6]
    assert ds.Z[:3].tolist() == [8, 1, 1]
    np.testing.assert_array_equal(ds.R[0], [0.0, 0.0, 0.0])
    assert any("Z > 0" in line for line in report)


def test_missing_n_grid_is_computed_and_reported(tmp_path):
    raw = _padded([_water(), _formate()], g_slots=200)
    del raw["n_grid"]
    np.savez(tmp_path / "g.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "g.npz")
    assert ds.n_grid.tolist() == [len(_water()["esp"]), len(_formate()["esp"])]
    assert any("n_grid" in line and "computed" in line for line in report)


# ---------------------------------------------------------------------------- net charge
def test_net_charge_from_Q(tmp_path):
    raw = _padded([_water(), _ammonium()])
    raw["Q"] = np.array([0.0, 1.0])
    np.savez(tmp_path / "q.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "q.npz")
    np.testing.assert_array_equal(ds.net_charge, [0.0, 1.0])
    assert any("net charge from 'Q'" in line for line in report)


def test_net_charge_from_rounded_mono_sum(tmp_path):
    raw = _padded([_water(), _ammonium(), _formate()])
    raw["mono"][1, 0] += 0.004  # sums need rounding
    np.savez(tmp_path / "m.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "m.npz")
    np.testing.assert_array_equal(ds.net_charge, [0.0, 1.0, -1.0])
    assert any("rounded sum of 'mono'" in line for line in report)


def test_net_charge_default_zero_and_missing_mono(tmp_path):
    raw = _padded([_water(), _methanol()])
    del raw["mono"]
    np.savez(tmp_path / "n.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "n.npz")
    np.testing.assert_array_equal(ds.net_charge, [0.0, 0.0])
    assert not ds.has_mono.any()
    assert any("assumed neutral" in line for line in report)
    assert any("no 'mono'" in line for line in report)


def test_extra_keys_noted_not_errors(tmp_path):
    raw = _padded([_water()])
    raw["E"] = np.array([-76.4])
    raw["F"] = np.zeros((1, 3, 3))
    np.savez(tmp_path / "x.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "x.npz")
    assert len(ds) == 1
    assert any("ignored extra key" in line and "'E'" in line and "'F'" in line
               for line in report)


# ---------------------------------------------------------------------------- dipole origin
def test_ion_dipole_moved_from_file_com_to_centre_of_mass(tmp_path):
    m = _ammonium()
    raw = _padded([m])
    raw["Q"] = np.array([1.0])
    origin = np.array([[0.5, -1.0, 2.0]])  # the file's dipole origin, not the COM
    mu_origin = (m["mono"][:, None] * (m["R"] - origin)).sum(0)
    raw["Dxyz"] = mu_origin[None] / units.EBOHR_TO_EANGSTROM
    raw["com"] = origin
    np.savez(tmp_path / "ion.npz", **raw)
    ds, report = read_mmml_npz(tmp_path / "ion.npz")
    np.testing.assert_allclose(ds.dipole[0], m["dipole"], atol=1e-10)
    assert any("moved to the centre of mass" in line for line in report)


def test_ion_dipole_without_com_warns(tmp_path):
    m = _formate()
    raw = _padded([m])
    raw["Dxyz"] = m["dipole"][None] / units.EBOHR_TO_EANGSTROM
    np.savez(tmp_path / "ion2.npz", **raw)
    with pytest.warns(UserWarning, match="origin"):
        ds, report = read_mmml_npz(tmp_path / "ion2.npz")
    assert any("WARNING" in line and "com" in line for line in report)
    np.testing.assert_allclose(ds.dipole[0], m["dipole"], atol=1e-12)


# ---------------------------------------------------------------------------- errors
def test_N_inconsistent_with_Z(tmp_path):
    raw = _padded([_water(), _methanol()])
    raw["N"][1] = 5
    p = tmp_path / "badN.npz"
    np.savez(p, **raw)
    with pytest.raises(DataError) as exc:
        read_mmml_npz(p)
    msg = str(exc.value)
    assert str(p) in msg and "'N'" in msg and "molecule 1" in msg and "Z" in msg


def test_pickled_object_array_is_refused(tmp_path):
    raw = _padded([_water()])
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 3)), np.zeros((6, 3))
    raw["R"] = ragged
    p = tmp_path / "pickled.npz"
    np.savez(p, **raw)
    with pytest.raises(DataError, match="pickled"):
        read_mmml_npz(p)
    with pytest.raises(DataError, match="pickled"):
        load_dataset(p, verbose=False)


def test_nan_in_esp_names_molecule(tmp_path):
    raw = _padded([_water(), _formate(), _methanol()])
    raw["esp"][2, 5] = np.nan
    p = tmp_path / "nan.npz"
    np.savez(p, **raw)
    with pytest.raises(DataError) as exc:
        read_mmml_npz(p)
    assert "'esp'" in str(exc.value) and "molecule 2" in str(exc.value)
    # NaN in the padding region is harmless
    raw["esp"][2, 5] = 0.1
    raw["esp"][0, -1] = np.nan
    np.savez(p, **raw)
    ds, _ = read_mmml_npz(p)
    assert np.isfinite(ds.esp).all()


def test_multi_file_load_reports_every_bad_file(tmp_path, small_dataset):
    good = write_mmml_npz(small_dataset, tmp_path / "good.npz")
    raw = _padded([_water(), _methanol()])
    raw["N"][0] = 2
    np.savez(tmp_path / "bad1.npz", **raw)
    raw = _padded([_water(), _methanol()])
    raw["esp"][1, 0] = np.inf
    np.savez(tmp_path / "bad2.npz", **raw)
    with pytest.raises(DataError) as exc:
        load_dataset([good, tmp_path / "bad1.npz", tmp_path / "bad2.npz"], verbose=False)
    msg = str(exc.value)
    assert "2 of 3" in msg
    assert "bad1.npz" in msg and "'N'" in msg
    assert "bad2.npz" in msg and "'esp'" in msg and "molecule 1" in msg


def test_unknown_layout_and_format_tag(tmp_path):
    np.savez(tmp_path / "u.npz", foo=np.zeros(3))
    with pytest.raises(DataError, match="unknown NPZ layout"):
        load_dataset(tmp_path / "u.npz", verbose=False)
    np.savez(tmp_path / "t.npz", format=np.array("something-else"), R=np.zeros((1, 3)))
    with pytest.raises(DataError, match="format"):
        load_dataset(tmp_path / "t.npz", verbose=False)


# ---------------------------------------------------------------------------- bundled
def test_bundled_path_and_missing_bundled(tmp_path, monkeypatch):
    p = bundled_dataset_path()
    assert isinstance(p, Path)
    assert p.parts[-4:] == ("dcmnet", "data", "bundled", "dcmnet_small.npz")
    monkeypatch.setattr(loader_mod, "bundled_dataset_path", lambda: tmp_path / "none.npz")
    for arg in (None, []):
        with pytest.raises(DataError, match="lacks the bundled dataset"):
            load_dataset(arg, verbose=False)


def test_load_dataset_verbose_prints(tmp_path, small_dataset, capsys):
    p = write_mmml_npz(small_dataset, tmp_path / "v.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(str(p), verbose=True)
    assert len(ds) == 4
    assert "mmml" in capsys.readouterr().err
