"""NPZ harmonization: one test per rule (aliases, counts, padding, D/Q shapes, layouts)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from dcmnet import units
from dcmnet.data import Dataset, load_dataset, load_dataset_with_report, read_npz
from dcmnet.data.readers.npz import ALIASES
from dcmnet.errors import DataError


# ---------------------------------------------------------------------------- synthetic data
def _shell(R, n=30, radius=1.9):
    k = np.arange(n) + 0.5
    phi, th = np.arccos(1 - 2 * k / n), np.pi * (1 + 5 ** 0.5) * k
    u = np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], 1)
    p = (R[:, None] + radius * u[None]).reshape(-1, 3)
    d = np.linalg.norm(p[:, None] - R[None], axis=-1)
    return p[(d >= radius * 0.999).all(1)]


def _mol(Z, R, q, shift=(0.0, 0.0, 0.0)):
    R = np.asarray(R, float) + shift
    g = _shell(R)
    d = np.linalg.norm(g[:, None] - R[None], axis=-1) * units.ANGSTROM_TO_BOHR
    return {"Z": np.array(Z), "R": R, "grid": g, "esp": (np.array(q) / d).sum(1),
            "mono": np.array(q, float)}


WATER = _mol([8, 1, 1], [[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]],
             [-0.8, 0.4, 0.4], (0.3, 0.2, -0.1))
AMMONIUM = _mol([7, 1, 1, 1, 1], np.array([[0, 0, 0], [1, 1, 1], [-1, -1, 1], [-1, 1, -1],
                                          [1, -1, -1]]) * 1.03 / 3 ** 0.5,
                [-0.4, 0.35, 0.35, 0.35, 0.35], (1.0, -0.5, 0.2))
FORMATE = _mol([6, 8, 8, 1], [[0, 0, 0], [1.13, 0.65, 0], [-1.13, 0.65, 0], [0, -1.10, 0]],
               [0.7, -0.8, -0.8, -0.1])
MOLS = [WATER, AMMONIUM, FORMATE]


def padded(mols=MOLS, A=None, G=None, keys=None):
    """mmml-style arrays (n, A, ...) with zero padding; ``keys`` renames roles."""
    n = len(mols)
    A = A or max(len(m["Z"]) for m in mols)
    G = G or max(len(m["esp"]) for m in mols)
    out = {"R": np.zeros((n, A, 3)), "Z": np.zeros((n, A), int), "esp": np.zeros((n, G)),
           "vdw_surface": np.zeros((n, G, 3)), "mono": np.zeros((n, A))}
    for i, m in enumerate(mols):
        a, g = len(m["Z"]), len(m["esp"])
        out["R"][i, :a], out["Z"][i, :a], out["mono"][i, :a] = m["R"], m["Z"], m["mono"]
        out["esp"][i, :g], out["vdw_surface"][i, :g] = m["esp"], m["grid"]
    for old, new in (keys or {}).items():
        out[new] = out.pop(old)
    return out


def _read(tmp_path, name="f.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_npz(p)


def _check(ds, mols=MOLS, mono=True):
    assert len(ds) == len(mols)
    for i, m in enumerate(mols):
        got = ds.molecule(i)
        np.testing.assert_array_equal(got["Z"], m["Z"])
        np.testing.assert_allclose(got["R"], m["R"], atol=1e-12)
        np.testing.assert_allclose(got["grid"], m["grid"], atol=1e-6)
        np.testing.assert_allclose(got["esp"], m["esp"], rtol=1e-6)
        if mono:
            np.testing.assert_allclose(got["mono"], m["mono"], atol=1e-12)


# ---------------------------------------------------------------------------- aliases
@pytest.mark.parametrize("grid_key", ["esp_grid", "vdw_grid", "grid", "surface_points"])
def test_grid_aliases(tmp_path, grid_key):
    ds, rep = _read(tmp_path, **padded(keys={"vdw_surface": grid_key}))
    _check(ds)
    text = "\n".join(rep)
    assert f"'{grid_key}'" in text and ("read as 'vdw_surface'" in text or "alias" in text)


@pytest.mark.parametrize("r_key,z_key,esp_key,mono_key", [
    ("positions", "atomic_numbers", "esp_values", "charges"),
    ("coordinates", "numbers", "potential", "atomic_charges"),
    ("coords", "Z", "esp", "monopoles"),
])
def test_field_aliases_are_translated_and_reported(tmp_path, r_key, z_key, esp_key, mono_key):
    ds, rep = _read(tmp_path, **padded(keys={"R": r_key, "Z": z_key, "esp": esp_key,
                                              "mono": mono_key}))
    _check(ds)
    text = "\n".join(rep)
    for key, role in ((r_key, "R"), (z_key, "Z"), (esp_key, "esp"), (mono_key, "mono")):
        if key != role:
            assert f"field '{key}' read as '{role}'" in text
    assert "harmonized to the mmml-style layout" in rep[0] or r_key == "R"


def test_two_names_for_one_role_reported(tmp_path):
    arr = padded()
    arr["positions"] = arr["R"] + 100.0
    ds, rep = _read(tmp_path, **arr)
    _check(ds)
    assert any("used 'R', ignored 'positions'" in ln for ln in rep)


def test_element_symbols_as_atomic_numbers(tmp_path):
    arr = padded()
    sym = np.array([["O", "H", "H", "", ""], ["N", "H", "H", "H", "H"], ["C", "O", "O", "H", "X"]])
    del arr["Z"]
    ds, rep = _read(tmp_path, elements=sym, **arr)
    _check(ds)
    assert any("element symbols" in ln for ln in rep)


def test_alias_table_covers_issue_names():
    for k in ("esp_grid", "vdw_grid", "grid", "surface_points"):
        assert k in ALIASES["vdw_surface"]
    for k in ("R", "positions", "coordinates"):
        assert k in ALIASES["R"]
    for k in ("Z", "atomic_numbers"):
        assert k in ALIASES["Z"]


# ---------------------------------------------------------------------------- mono, counts
def test_missing_mono_warns_and_is_not_zero_filled(tmp_path):
    arr = padded()
    del arr["mono"]
    p = tmp_path / "nomono.npz"
    np.savez(p, **arr)
    with pytest.warns(UserWarning, match="no reference atomic charges"):
        ds, rep = read_npz(p)
    assert not ds.has_mono.any()
    assert any("WARNING" in ln and "no 'mono'" in ln and "switched off" in ln for ln in rep)


def test_missing_counts_from_zero_padding(tmp_path):
    ds, rep = _read(tmp_path, **padded(A=7, G=400))
    _check(ds)
    text = "\n".join(rep)
    assert "atom counts computed from Z > 0" in text
    assert "grid counts computed" in text and "trailing zero rows" in text


@pytest.mark.parametrize("sentinel", [1e4, 1e6, -1e6])
def test_missing_n_grid_from_sentinel_padding(tmp_path, sentinel):
    arr = padded(G=400)
    for i, m in enumerate(MOLS):
        arr["vdw_surface"][i, len(m["esp"]):] = sentinel
    ds, rep = _read(tmp_path, **arr)
    _check(ds)
    assert ds.n_grid.tolist() == [len(m["esp"]) for m in MOLS]
    assert any("sentinel" in ln and f"{abs(sentinel):g}" in ln for ln in rep)


def test_n_grid_contradicted_by_sentinel(tmp_path):
    arr = padded(G=400)
    arr["vdw_surface"][0, 5] = 1e6
    arr["n_grid"] = np.array([len(m["esp"]) for m in MOLS])
    with pytest.raises(DataError, match=r"field 'n_grid' of molecule 0 says .* padding sentinel"):
        _read(tmp_path, **arr)


def test_padded_atoms_by_Z_never_by_position(tmp_path):
    w = _mol([8, 1, 1], [[0, 0, 0], [0, 0.7572, -0.5865], [0, -0.7572, -0.5865]],
             [-0.8, 0.4, 0.4])
    assert (w["R"][0] == 0).all()  # a real oxygen at the origin
    arr = padded([w, FORMATE], A=6)
    arr["Z"][0, 3:] = 0
    ds, _ = _read(tmp_path, **arr)
    assert ds.n_atoms.tolist() == [3, 4]
    np.testing.assert_array_equal(ds.R[0], [0, 0, 0])


def test_several_files_with_different_padding_combined(tmp_path):
    a = tmp_path / "a.npz"
    b = tmp_path / "b.npz"
    np.savez(a, **padded([WATER], A=3, G=len(WATER["esp"])))
    np.savez(b, **padded([AMMONIUM, FORMATE], A=9, G=500, keys={"vdw_surface": "grid"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, rep = load_dataset_with_report([a, b])
    _check(ds)
    assert any("combined 2 files" in ln for ln in rep)


# ---------------------------------------------------------------------------- D by shape
def _dipoles(mols=MOLS):
    from ase.data import atomic_masses
    out = []
    for m in mols:
        w = atomic_masses[m["Z"]]
        com = (w[:, None] * m["R"]).sum(0) / w.sum()
        out.append((m["mono"][:, None] * (m["R"] - com)).sum(0))
    return np.array(out)  # e·Å about the COM


@pytest.mark.parametrize("flat", [False, True])
def test_D_magnitude(tmp_path, flat):
    mag = np.linalg.norm(_dipoles(), axis=1)
    ds, rep = _read(tmp_path, D=mag.reshape(-1) if flat else mag[:, None], **padded())
    assert not ds.has_dipole.any()
    assert any("'D'" in ln and "dipole magnitude" in ln for ln in rep)


@pytest.mark.parametrize("unit,factor", [("e·Bohr", 1 / units.BOHR_TO_ANGSTROM),
                                         ("e·Å", 1.0), ("Debye", units.EANGSTROM_TO_DEBYE)])
@pytest.mark.parametrize("flat", [False, True])
def test_D_vector_unit_judged_from_mono(tmp_path, unit, factor, flat):
    mols = [WATER, _mol([8, 1, 1], WATER["R"] * 1.05, [-0.7, 0.35, 0.35]),
            _mol([6, 8, 1, 1], [[0, 0, 0], [1.2, 0, 0], [-0.55, 0.94, 0], [-0.55, -0.94, 0]],
                 [0.5, -0.5, 0.0, 0.0])]
    mu = _dipoles(mols)
    D = mu * factor
    ds, rep = _read(tmp_path, D=D.reshape(-1) if flat else D, **padded(mols))
    np.testing.assert_allclose(ds.dipole, mu, atol=1e-10)
    assert any("molecular dipole vector" in ln and unit in ln for ln in rep)
    if flat:
        assert any("from flat storage" in ln for ln in rep)


def test_D_atom_centred(tmp_path):
    A = 5
    D = np.random.default_rng(0).normal(size=(3, A, 3))
    for flat in (False, True):
        ds, rep = _read(tmp_path, D=D.reshape(-1) if flat else D, **padded(A=A))
        assert not ds.has_dipole.any()
        assert any("atom-centred dipoles" in ln for ln in rep)


def test_Dxyz_validated_and_reshaped_from_flat(tmp_path):
    mu = _dipoles() / units.BOHR_TO_ANGSTROM
    ds, rep = _read(tmp_path, Dxyz=mu.reshape(-1), Q=np.array([0.0, 1.0, -1.0]), **padded())
    np.testing.assert_allclose(ds.dipole, _dipoles(), atol=1e-10)
    assert any("reshaped to (3, 3)" in ln for ln in rep)
    with pytest.raises(DataError, match=r"field 'Dxyz' has shape \(7,\), expected \(3, 3\)"):
        _read(tmp_path, "bad.npz", Dxyz=np.zeros(7), **padded())


# ---------------------------------------------------------------------------- Q by shape
@pytest.mark.parametrize("shape", [(3,), (3, 1), "flat"])
def test_Q_net_charge(tmp_path, shape):
    q = np.array([0.0, 1.0, -1.0])
    ds, rep = _read(tmp_path, Q=q if shape in ((3,), "flat") else q[:, None], **padded())
    assert ds.net_charge.tolist() == [0.0, 1.0, -1.0]
    assert any("net charge" in ln for ln in rep)


@pytest.mark.parametrize("shape", [(3, 6), (18,), (3, 9), (27,), (3, 3, 3)])
def test_Q_quadrupoles(tmp_path, shape):
    Q = np.arange(np.prod(shape), dtype=float).reshape(shape)
    ds, rep = _read(tmp_path, Q=Q, **padded(A=5))
    assert ds.net_charge.tolist() == [0.0, 1.0, -1.0]  # from mono, not from Q
    want = "quadrupole components" if np.prod(shape) == 18 else "quadrupole tensor"
    assert any(want in ln for ln in rep)
    if len(shape) == 1:
        assert any("from flat storage" in ln for ln in rep)


@pytest.mark.parametrize("flat", [False, True])
def test_Q_atomic_charges_warns_and_used_as_mono(tmp_path, flat):
    arr = padded(A=5)
    mono = arr.pop("mono")
    p = tmp_path / "q.npz"
    np.savez(p, Q=mono.reshape(-1) if flat else mono, **arr)
    with pytest.warns(UserWarning, match="should|store reference atomic charges under 'mono'"):
        ds, rep = read_npz(p)
    _check(ds)
    assert ds.has_mono.all()
    assert any("interpreted as atomic charges" in ln and "'mono'" in ln for ln in rep)


def test_Q_ambiguous_shape_resolved_by_content(tmp_path):
    # 6 atom slots: (n, 6) may be quadrupole components or atomic charges
    arr = padded(A=6)
    mono = arr.pop("mono")
    ds, rep = _read(tmp_path, Q=mono, **arr)
    assert ds.has_mono.all()
    assert any("ambiguous" in ln and "atomic charges" in ln for ln in rep)
    quad = np.random.default_rng(1).normal(size=(3, 6))
    ds, rep = _read(tmp_path, "b.npz", Q=quad, **padded(A=6))
    assert any("ambiguous" in ln and "quadrupole components" in ln for ln in rep)


def test_Q_and_total_charge_must_agree(tmp_path):
    arr = padded()
    with pytest.raises(DataError, match=r"field 'total_charge' of molecule 1 is 0 but 'Q' says 1"):
        _read(tmp_path, Q=np.array([0.0, 1.0, -1.0]), total_charge=np.zeros(3), **arr)
    ds, rep = _read(tmp_path, "c.npz", net_charge=np.array([0, 1, -1]), **arr)
    assert ds.net_charge.tolist() == [0.0, 1.0, -1.0]
    assert any("net charge read from 'net_charge'" in ln for ln in rep)


# ---------------------------------------------------------------------------- layouts
def test_ragged_flat_layout_with_counts(tmp_path):
    ds0 = Dataset.from_molecules(MOLS)
    ds, rep = _read(tmp_path, Z=ds0.Z, R=ds0.R, esp=ds0.esp, grid=ds0.grid, N=ds0.n_atoms,
                    n_grid=ds0.n_grid, mono=ds0.mono)
    _check(ds)
    assert any("ragged flat layout" in ln for ln in rep)


def test_single_molecule_without_leading_axis(tmp_path):
    ds, rep = _read(tmp_path, Z=WATER["Z"], positions=WATER["R"], esp=WATER["esp"],
                    grid=WATER["grid"], charges=WATER["mono"])
    _check(ds, [WATER])
    assert any("single molecule" in ln for ln in rep)


def test_flat_per_molecule_arrays_reshaped(tmp_path):
    arr = padded()
    arr["R"] = arr["R"].reshape(3, -1)
    arr["vdw_surface"] = arr["vdw_surface"].reshape(-1)
    ds, rep = _read(tmp_path, **arr)
    _check(ds)
    assert any("'R' of shape (3, 15) reshaped" in ln for ln in rep)


def test_length_unit_override_on_npz(tmp_path):
    arr = padded()
    arr["R"] = arr["R"] / units.BOHR_TO_ANGSTROM
    arr["vdw_surface"] = arr["vdw_surface"] / units.BOHR_TO_ANGSTROM
    p = tmp_path / "bohr.npz"
    np.savez(p, **arr)
    with pytest.raises(DataError, match="--length-unit bohr"):
        load_dataset(p, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(p, verbose=False, length_unit="bohr")
    _check(ds)


def test_canonical_file_still_loads_and_is_reported(tmp_path):
    p = Dataset.from_molecules(MOLS).save(tmp_path / "c.npz")
    ds, rep = read_npz(p)
    _check(ds)
    assert "canonical dcmnet dataset" in rep[0]


def test_per_atom_values_under_a_net_charge_name(tmp_path):
    arr = padded()
    mono = arr.pop("mono")
    p = tmp_path / "c.npz"
    np.savez(p, charge=mono, **arr)
    with pytest.warns(UserWarning, match="one value per atom"):
        ds, rep = read_npz(p)
    _check(ds)
    assert ds.net_charge.tolist() == [0.0, 1.0, -1.0]
