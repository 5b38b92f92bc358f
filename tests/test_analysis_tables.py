"""Issue 10 item 13: the tables of ``analyze`` and ``compare`` read at 80 columns (no line
wider, no cell cut with "…", no header folded), ``analyze`` lists the worst molecules
first, and the parity plot reports the R² of the neutral molecules next to the pooled one."""
import math

import numpy as np
import pytest

from conftest import bundled_subset
from dcmnet.analysis import DatasetPrediction, analyze_predictions
from dcmnet.analysis.result import CheckpointAnalysis
from dcmnet.analysis.tables import (analysis_table, comparison_table, history_table,
                                    worst_molecules_table)
from dcmnet.data.dataset import Dataset
from dcmnet.fitting import monopole_esp

LONG_NAME = "CC(C)(C)c1ccc(cc1)C(=O)N[C@@H](Cc1ccccc1)C(=O)OCC_conformer_0042"


def _render(renderable, width=80) -> str:
    from rich.console import Console
    con = Console(width=width, record=True, file=open("/dev/null", "w"))
    con.print(renderable)
    return con.export_text()


def _assert_fits(text, width=80):
    wide = [ln for ln in text.splitlines() if len(ln) > width]
    assert not wide, "\n".join(wide)
    assert "…" not in text, text


@pytest.fixture(scope="module")
def analysis():
    """Four molecules (two ions) with exact atomic-charge ESPs; DCM-net's charges are right
    except on methanol (halved), so methanol is by construction the worst molecule."""
    base = bundled_subset(["water", "methanol", "acetate", "methylammonium"], 1)
    rng = np.random.default_rng(0)
    mols, q_pred = [], []
    for i in range(len(base)):
        m = base.molecule(i)
        q = rng.normal(0, 0.4, len(m["Z"]))
        q += (m["net_charge"] - q.sum()) / len(q)
        grid = m["grid"].astype(np.float64)
        mols.append(dict(Z=m["Z"], R=m["R"], grid=grid, esp=monopole_esp(m["R"], q, grid),
                         net_charge=m["net_charge"], mono=q, name=m["name"]))
        q_pred.append(0.5 * q if m["name"] == "methanol" else q)
    mols[0]["name"] = LONG_NAME                       # a long name wraps, never cut
    data = Dataset.from_molecules(mols, source="synthetic")
    ao = data.atom_offsets
    esp = np.concatenate([monopole_esp(data.R[ao[i]:ao[i + 1]], q_pred[i], mols[i]["grid"])
                          for i in range(len(data))])
    q = np.concatenate(q_pred)
    seg = np.repeat(np.arange(len(data)), data.n_atoms)
    com = data.centre_of_mass()
    dip = np.zeros((len(data), 3))
    np.add.at(dip, seg, q[:, None] * (data.R - com[seg]))
    pred = DatasetPrediction(q[:, None], data.R[:, None, :].copy(), esp, dip)
    return analyze_predictions(data, pred, source="/a/rather/long/path/to/experiments/"
                                                   "my-experiment/checkpoints/best")


def test_analysis_table_fits_80_columns(analysis):
    text = _render(analysis_table(analysis))
    _assert_fits(text)
    for label in ("ESP RMSE median", "ESP RMSE all points", "closest atom H", "fitted q",
                  "fitted monopoles", "q+μ+Θ", "values/mol", "kcal/(mol·e)"):
        assert label in text, label
    # numbers are the summary's, three decimals
    med = analysis.summary["methods"]["dcmnet"]["esp_rmse_median_kcal_mol_e"]
    line = next(ln for ln in text.splitlines() if "ESP RMSE median" in ln and "│" in ln)
    assert f"{med:.3f}" in line


def test_worst_molecules_first_and_csv_named(analysis):
    text = _render(worst_molecules_table(analysis, n=3, csv_path="EXP/analysis/predictions.csv"))
    _assert_fits(text)
    assert "worst 3 of 4 molecules" in text
    assert "all 4 molecules: EXP/analysis/predictions.csv" in text
    rows = [[c.strip() for c in ln.split("│")] for ln in text.splitlines()]
    rows = [r for r in rows if len(r) > 4 and r[1].isdigit()]
    assert rows[0][2] == "methanol" and len(rows) == 3
    # the RMSE shown is that of methanol, computed independently from the points
    i = int(rows[0][1])
    sel = analysis.points["molecule"] == i
    err = analysis.points["esp_dcmnet"][sel] - analysis.points["esp_ref"][sel]
    assert float(rows[0][4]) == pytest.approx(math.sqrt(np.mean(err ** 2)), abs=1e-3)
    shown = [float(r[4]) for r in rows]
    assert shown == sorted(shown, reverse=True)
    # the long name is folded over lines, all of it shown
    full = _render(worst_molecules_table(analysis, n=4))
    _assert_fits(full)
    cells = "".join(ln.split("│")[2].strip() for ln in full.splitlines() if ln.count("│") > 4)
    assert LONG_NAME in cells


def _row(name, kind="best", epoch=10, n_dcm=2, npar=123_456, v=1.0):
    return dict(name=name, path=f"experiments/{name}" if kind != "baseline" else "", kind=kind,
                epoch=epoch, n_dcm=n_dcm, n_parameters=npar, esp_rmse_median=v,
                esp_rmse_mean=1.1 * v, esp_rmse_pooled=1.3 * v, esp_mae_pooled=0.8 * v,
                dipole_mae_debye=0.081, max_abs_net_charge_error_e=2.3e-7, n_molecules=66,
                n_values_per_molecule=62.5, inference_ms_per_molecule=0.52)


BASELINES = [_row("fitted monopoles", "baseline", None, 1, None, 0.830),
             _row("fitted monopoles + dipoles", "baseline", None, None, None, 0.4),
             _row("fitted monopoles + dipoles + quadrupoles", "baseline", None, None, None, 0.2),
             _row("reference mono", "baseline", None, 1, None, 1.7)]


@pytest.mark.parametrize("n_ckpt", [1, 2, 9])
def test_comparison_table_fits_80_columns(n_ckpt):
    names = ["demo", "a-rather-long-experiment-name"] + [f"ndcm{k}" for k in range(3, 10)]
    rows = [_row(names[k], v=0.5 + 0.1 * k) for k in range(n_ckpt)] + BASELINES
    text = _render(comparison_table(rows, width=80))
    _assert_fits(text)
    for label in ("ESP RMSE median", "dipole MAE [D]", "max|Σq−Q| [e]", "fitted q", "q+μ+Θ",
                  "ref q", "checkpoint comparison"):
        assert label in text, label
    if n_ckpt >= 2:   # a name too long for a column header gets a key, explained below
        assert "#2 = a-rather-long-experiment-name (experiments/a-rather-long" in text
    # every checkpoint's median is shown once, with three decimals
    for k in range(n_ckpt):
        assert f"{0.5 + 0.1 * k:.3f}" in text
    if n_ckpt == 9:
        assert "checkpoint comparison (continued)" in text
    # a wide console gets one row per checkpoint
    wide = _render(comparison_table(rows, width=200), width=200)
    assert "fitted monopoles + dipoles + quadrupoles" in wide and "…" not in wide


def test_history_table_fits_80_columns():
    rows = [dict(epoch=e, lr=1e-3 / e, train_loss=100.0 / e, valid_loss=90.0 / e,
                 train_esp_rmse=10.0 / e, valid_esp_rmse=9.5 / e) for e in range(1, 201)]
    hist = {"rows": rows, "columns": list(rows[0]), "best_epoch": 200, "status": "improving",
            "diagnosis": "still improving at the last epoch: train longer"}
    text = _render(history_table(hist))
    _assert_fits(text)
    assert "valid ESP RMSE" in text and "200 *" in text and "EMA" in text


def test_cli_analyze_top(tiny_experiment, small_npz, capsys):
    from dcmnet.cli.main import build_parser, main
    assert build_parser().parse_args(["analyze", "x"]).top == 10
    assert main(["analyze", str(tiny_experiment), "--data-files", str(small_npz),
                 "--top", "3"]) == 0
    err = capsys.readouterr().err
    assert "worst 3 of 16 molecules" in err
    assert "all 16 molecules: " in err and "predictions.csv" in err


# ------------------------------------------------------------------ parity: neutral-only R²
def _tiny_parity_case(net_charge):
    """Two molecules: neutral (3 points) and ``net_charge`` (2 points, large ESP)."""
    pts = {"molecule": np.array([0, 0, 0, 1, 1]),
           "esp_ref": np.array([1.0, 2.0, 3.0, 100.0, 120.0]),
           "esp_dcmnet": np.array([1.5, 2.0, 2.5, 90.0, 125.0])}
    return CheckpointAnalysis(source="hand", checkpoint={}, n_dcm=1, n_parameters=None,
                              data_source="hand", per_molecule={
                                  "index": np.arange(2), "net_charge": np.array(
                                      [0.0, net_charge])},
                              by_element=[], by_shell=[], summary={"methods": {}},
                              points=pts, sites={})


def test_parity_plot_reports_neutral_only_r2(tmp_path):
    from dcmnet.analysis import plots
    p = plots.plot_esp_parity(_tiny_parity_case(1.0), tmp_path / "parity", dpi=30,
                              methods=("dcmnet",))
    st = p.stats["dcmnet"]
    # by hand: neutral residuals 0.5, 0, -0.5 about mean 2 -> SSE 0.5, SST 2
    assert st["neutral"]["r2"] == pytest.approx(1 - 0.5 / 2)
    assert st["neutral"]["rmse"] == pytest.approx(math.sqrt(0.5 / 3))
    assert st["neutral"]["n_points"] == 3
    # all 5 points: SSE 0.5 + 100 + 25, mean 45.2, SST 14198.8
    assert st["all"]["r2"] == pytest.approx(1 - 125.5 / 14198.8)
    assert st["ions"]["r2"] == pytest.approx(1 - 125.0 / 200.0)
    assert p.stats["n_ions"] == 1 and p.stats["n_neutral"] == 1
    assert p.paths[0].stat().st_size > 0
    assert len(p.axis_labels) == 4              # a second row: neutral molecules only
    # without ions: one row, neutral == all
    q = plots.plot_esp_parity(_tiny_parity_case(0.0), tmp_path / "parity0", dpi=30,
                              methods=("dcmnet",))
    assert len(q.axis_labels) == 2 and q.stats["n_ions"] == 0
    assert q.stats["dcmnet"]["neutral"]["r2"] == pytest.approx(1 - 125.5 / 14198.8)
