"""Every picture is written, non-empty, of a sensible size, and every axis carries a unit."""
import sys

import numpy as np
import pytest

from dcmnet.analysis import analyze_checkpoint, compare_checkpoints
from dcmnet.cli.main import main
from dcmnet.data.dataset import Dataset
from dcmnet.errors import OptionalDependencyError
from dcmnet.analysis import plot_style, plots


@pytest.fixture(scope="module")
def analysis(tiny_experiment, small_npz):
    return analyze_checkpoint(tiny_experiment, Dataset.load(small_npz))


def _check_png(path, min_w=300, min_h=200):
    from PIL import Image

    assert path.exists() and path.stat().st_size > 5000, path
    with Image.open(path) as im:
        w, h = im.size
        assert w >= min_w and h >= min_h, (path, im.size)
        px = np.asarray(im.convert("L"))
    assert px.std() > 5, f"{path} looks blank"


def _check_labels(plot):
    assert len(plot.axis_labels) >= 2
    for lab in plot.axis_labels:
        assert "[" in lab and "]" in lab or lab.split()[0] in plots.DIMENSIONLESS, lab


def test_training_curves(tiny_experiment, tmp_path):
    p = plots.plot_training_curves(tiny_experiment, tmp_path / "curves", formats=("png", "pdf"))
    assert [q.suffix for q in p.paths] == [".png", ".pdf"]
    _check_png(p.paths[0])
    assert p.paths[1].read_bytes()[:4] == b"%PDF"
    _check_labels(p)
    assert any("ESP RMSE [kcal/(mol·e)]" in lab for lab in p.axis_labels)


def test_parity_histogram_elements(analysis, tmp_path):
    for fn, name in ((plots.plot_esp_parity, "parity"), (plots.plot_error_histogram, "hist"),
                     (plots.plot_element_errors, "elements")):
        p = fn(analysis, tmp_path / name, dpi=60)
        _check_png(p.paths[0])
        _check_labels(p)
    assert "reference ESP [kcal/(mol·e)]" in plots.plot_esp_parity(
        analysis, tmp_path / "p2", dpi=40).axis_labels


def test_surface_and_charges_with_html(analysis, tmp_path):
    p = plots.plot_esp_surface(analysis, tmp_path / "surface", molecule=2, dpi=60, html=True)
    png, html = p.paths
    _check_png(png, min_w=600)
    assert html.suffix == ".html" and "plotly" in html.read_text()[:5000].lower()
    _check_labels(p)
    assert sum("[Å]" in lab for lab in p.axis_labels) == 9
    assert sum("kcal/(mol·e)" in lab for lab in p.axis_labels) == 3   # the colour bars
    d = analysis.data
    a = slice(d.atom_offsets[0], d.atom_offsets[1])
    p = plots.plot_charges_3d(d.Z[a], d.R[a], analysis.sites["charges"][a],
                              analysis.sites["positions"][a], tmp_path / "charges", dpi=60,
                              html=True)
    _check_png(p.paths[0])
    assert "scatter3d" in p.paths[1].read_text()
    _check_labels(p)
    assert "site charge [e]" in p.axis_labels


def test_comparison_bars(tiny_experiment, small_npz, tmp_path):
    rows = compare_checkpoints([tiny_experiment], Dataset.load(small_npz))
    p = plots.plot_checkpoint_comparison(rows, tmp_path / "cmp.png", dpi=60)
    assert p.paths == [tmp_path / "cmp.png"]
    _check_png(p.paths[0], min_h=100)
    _check_labels(p)


def test_make_all_plots_and_cli(tiny_experiment, analysis, monkeypatch, capsys):
    paths = plots.make_all_plots(tiny_experiment, analysis=analysis, dpi=50, html=False)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{n}.png" for n in ("training_curves", "esp_parity",
                                                "error_histogram", "esp_surface",
                                                "charges_3d", "element_errors"))
    assert all(p.parent == tiny_experiment / "plots" and p.stat().st_size > 0 for p in paths)
    assert main(["plot", str(tiny_experiment), "--history-only", "--dpi", "40"]) == 0
    assert "training_curves.png" in capsys.readouterr().err
    # without plotly: HTML refused with a clear message, static pictures unaffected
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(OptionalDependencyError, match="plotly"):
        plots.plot_charges_3d([8, 1, 1], np.eye(3), np.zeros((3, 1)), np.zeros((3, 1, 3)) +
                              np.eye(3)[:, None], tiny_experiment / "plots" / "x", html=True,
                              dpi=30)


def _no_plotly(monkeypatch):
    def missing():
        raise OptionalDependencyError("interactive HTML pictures need plotly: pip install "
                                      "'dcmnet[analysis]'")
    monkeypatch.setattr(plot_style, "_plotly", missing)


def test_plot_cli_without_plotly(tiny_experiment, small_npz, monkeypatch, capsys):
    _no_plotly(monkeypatch)
    assert not plots.plotly_available()
    out = tiny_experiment / "plots"
    for f in out.glob("*"):
        f.unlink()
    # explicit --html: a clear error before any picture is written
    assert main(["plot", str(tiny_experiment), "--data-files", str(small_npz), "--dpi", "30",
                 "--html"]) != 0
    err = capsys.readouterr().err
    assert "plotly" in err and "dcmnet[analysis]" in err and "wrote" not in err
    assert not list(out.glob("*.png"))
    with pytest.raises(OptionalDependencyError):
        plots.make_all_plots(tiny_experiment, small_npz, dpi=30, html=True)
    assert not list(out.glob("*.png"))
    # default: one warning, every PNG written and reported
    assert main(["plot", str(tiny_experiment), "--data-files", str(small_npz),
                 "--dpi", "30"]) == 0
    err = capsys.readouterr().err
    assert err.count("HTML pictures skipped") == 1 and "dcmnet[analysis]" in err
    names = ("training_curves", "esp_parity", "error_histogram", "esp_surface", "charges_3d",
             "element_errors")
    assert sorted(p.name for p in out.glob("*")) == sorted(f"{n}.png" for n in names)
    for n in names:
        assert f"{n}.png" in err
    assert "error" not in err.lower().replace("error_histogram", "").replace(
        "element_errors", "")


def test_identical_baselines_collapse(analysis, tmp_path):
    from dcmnet.analysis.compare import (MERGED_BASELINE_LABEL, baselines_identical,
                                         collapse_baselines)

    base = {"kind": "baseline", "epoch": None, "n_dcm": 1, "n_parameters": None,
            "esp_rmse_median": 0.8, "esp_rmse_mean": 0.9, "dipole_mae_debye": 0.04,
            "max_abs_net_charge_error_e": 1e-16, "inference_ms_per_molecule": None}
    rows = [dict(base, name="fitted monopoles"),
            dict(base, name="reference mono", esp_rmse_mean=0.9 + 1e-12)]
    out = collapse_baselines(rows)
    assert [r["name"] for r in out] == [MERGED_BASELINE_LABEL]
    rows[1]["esp_rmse_mean"] = 0.95
    assert [r["name"] for r in collapse_baselines(rows)] == ["fitted monopoles",
                                                             "reference mono"]
    # an analysis whose reference mono equals the fitted monopoles: one curve, merged label
    import copy
    same = copy.copy(analysis)
    same.points = dict(analysis.points, esp_reference_mono=analysis.points[
        "esp_fitted_monopoles"].copy())
    S = copy.deepcopy(analysis.summary)
    S["methods"]["reference_mono"] = dict(S["methods"]["fitted_monopoles"])
    same.summary = S
    assert baselines_identical(same)
    meths, labels = plots._shown_methods(same)
    assert "reference_mono" not in meths and labels["fitted_monopoles"] == MERGED_BASELINE_LABEL
    _check_png(plots.plot_error_histogram(same, tmp_path / "h", dpi=60).paths[0])
