"""Structured reader reports: ReadReport/ReadWarning records, the canonical flag, the one
error builder, and ``dcmnet inspect`` reading through the loader."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from dcmnet.cli.main import main
from dcmnet.data import load_dataset_with_report, read_npz
from dcmnet.data.mmml_build import _err as mmml_err
from dcmnet.data.readers import ReadReport, ReadWarning
from dcmnet.data.readers.npz_layout import _Ctx
from dcmnet.data.readers.report import ReportLine, err
from dcmnet.errors import DataError, data_error
from test_harmonize import MOLS, padded


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


# ---------------------------------------------------------------------------- the record
def test_report_renders_the_old_lines_and_keeps_records(tmp_path):
    rep = ReadReport(tmp_path / "a.esp", "gaussian_esp")
    rep.note("first note.")
    with pytest.warns(UserWarning, match=r"a\.esp: charges sum to 0\.9 e\. Fix them\."):
        w = rep.warn("charges sum to 0.9 e.", "Fix them.", molecule=2, field="mono")
    assert w == ReadWarning(str(tmp_path / "a.esp"), "charges sum to 0.9 e.", 2, "mono",
                            "Fix them.")
    assert rep.lines() == ["a.esp: first note.",
                           "a.esp: WARNING: charges sum to 0.9 e. Fix them."]
    assert list(rep) == rep.lines() and rep[1] == rep.lines()[1] and len(rep) == 2
    assert rep.notes == ["first note."] and rep.warnings == [w]
    assert rep.format == "gaussian_esp" and rep.canonical is False
    outer = ReadReport()
    outer.title = ReportLine("dir/a.esp", "detected something.")
    outer.add(rep, indent="  ")
    outer.note("untagged line.")
    assert outer.lines() == ["dir/a.esp: detected something.", "  a.esp: first note.",
                             "  a.esp: WARNING: charges sum to 0.9 e. Fix them.",
                             "untagged line."]
    assert outer.warnings == [w] and [r.body for r in outer.entries][1].startswith("WARNING")


def test_warning_without_emit_is_silent(tmp_path):
    rep = ReadReport(tmp_path / "b.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep.warn("quiet.", emit=False, tag="x")
    assert rep.lines() == ["x: WARNING: quiet."]


# ---------------------------------------------------------------------------- readers
def test_npz_reader_returns_records_and_flags(tmp_path):
    arr = padded()
    arr["Q"] = arr.pop("mono")              # atomic charges stored as 'Q'
    p = tmp_path / "q.npz"
    np.savez(p, **arr)
    ds, rep = _quiet(read_npz, p)
    assert isinstance(rep, ReadReport) and rep.format == "npz" and not rep.canonical
    q = [w for w in rep.warnings if w.field == "Q"]
    assert q and q[0].file == str(p) and "used as 'mono'" in q[0].message
    assert "harmonized to the mmml-style layout" in rep[0]   # translated: 'Q' reinterpreted
    np.testing.assert_allclose(ds.molecule(0)["mono"], MOLS[0]["mono"], atol=1e-12)
    # a plain mmml file is not "translated", and a canonical one is flagged as such
    plain = tmp_path / "plain.npz"
    np.savez(plain, **padded())
    _, rep = _quiet(read_npz, plain)
    assert rep[0].endswith("detected mmml-style padded NPZ; lengths Å, ESP Hartree/e.")
    canon = tmp_path / "canon.npz"
    ds.save(canon)
    _, rep = read_npz(canon)
    assert rep.canonical and rep.warnings == [] and len(rep) == 1


def test_loader_report_structure(tmp_path):
    arr = padded()
    g = arr["vdw_surface"].copy()
    g[0, 0] = arr["R"][0, 0] + 0.05           # one grid point inside an atom
    arr["vdw_surface"] = g
    p = tmp_path / "inside.npz"
    np.savez(p, **arr)
    ds, rep = _quiet(load_dataset_with_report, p)
    assert isinstance(rep, ReadReport)
    dropped = [w for w in rep.warnings if w.message.startswith("dropped 1 grid points")]
    assert len(dropped) == 1 and dropped[0].file == str(p) and dropped[0].field == "esp"
    assert f"{p}: WARNING: dropped 1 grid points" in "\n".join(rep)
    assert int(ds.n_grid[0]) == len(MOLS[0]["esp"]) - 1
    # canonical files: flagged, no full unit checks
    canon = tmp_path / "canon.npz"
    ds.save(canon)
    _, rep = load_dataset_with_report(canon)
    assert rep.lines() == [f"{canon}: canonical dcmnet dataset, 3 molecules, 3..5 atoms, "
                           f"{int(ds.n_grid.min())}..{int(ds.n_grid.max())} grid points; Å, "
                           "e, Hartree/e."]


def test_inspect_reads_through_the_loader(tmp_path, capsys):
    arr = padded()
    g = arr["vdw_surface"].copy()
    g[1, 0] = arr["R"][1, 0] + 0.05
    arr["vdw_surface"] = g
    p = tmp_path / "inside.npz"
    np.savez(p, **arr)
    assert main(["inspect", str(p), "--no-unit-checks"]) == 0
    out = capsys.readouterr().out
    assert "   WARNING: dropped 1 grid points inside the atoms' vdW spheres" in out
    assert "   warnings: 1" in out
    n = [len(m["esp"]) for m in MOLS]
    n[1] -= 1                                 # the summary is of the screened dataset
    assert f"grid points per molecule: {min(n)}..{max(n)} (median {np.median(n):g})" in out


# ---------------------------------------------------------------------------- one builder
def test_one_error_message_builder(tmp_path):
    p = tmp_path / "f.npz"
    want = f"{p}: field 'esp' of molecule 2 has NaN. Fix it."
    assert str(data_error(p, "has NaN.", "Fix it.", field="esp", mol=2)) == want
    assert str(err(p, "has NaN.", "Fix it.", field="esp", mol=2)) == want
    assert str(mmml_err(p, "esp", "has NaN.", "Fix it.", mol=2)) == want
    assert str(_Ctx(p, ReadReport(p)).err("esp", "has NaN.", "Fix it.", mol=2)) == want
    assert err is data_error
    assert str(err(p, "is empty.")) == f"{p} is empty."
    assert str(err(p, "bad value.", line=4)) == f"{p}, line 4: bad value."
    assert isinstance(err(p, "x"), DataError)
