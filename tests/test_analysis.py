"""Analysis: baselines on synthetic charges, numbers against independent numpy, breakdowns
that partition the points, comparison, history diagnosis, report files and the CLI."""
import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from ase.data import atomic_masses, vdw_radii

from conftest import bundled_subset
from dcmnet.analysis import (DatasetPrediction, analyze_checkpoint, analyze_predictions,
                             analyze_training_history, batch_analysis_summary,
                             compare_checkpoints, export_analysis_report)
from dcmnet.cli.main import main
from dcmnet.data.dataset import Dataset
from dcmnet.errors import OptionalDependencyError
from dcmnet.fitting import monopole_esp
from dcmnet.surface import vdw_shell_points
from dcmnet.units import BOHR_TO_ANGSTROM, EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL


def _np_esp(q, x, grid):
    """Independent Coulomb sum: Hartree/e for e and Å (1 Bohr = BOHR_TO_ANGSTROM Å)."""
    d = np.sqrt(((grid[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return (q[None, :] * BOHR_TO_ANGSTROM / d).sum(1)


def _com(Z, R):
    m = atomic_masses[Z]
    return (m[:, None] * R).sum(0) / m.sum()


def _synthetic(seed=0):
    """Molecules whose ESP is exactly that of known atomic point charges."""
    base = bundled_subset(["water", "methanol", "acetate", "methylammonium"], 1)
    rng = np.random.default_rng(seed)
    mols, truth = [], []
    for i in range(len(base)):
        m = base.molecule(i)
        q = rng.normal(0, 0.4, len(m["Z"]))
        q += (m["net_charge"] - q.sum()) / len(q)
        grid = vdw_shell_points(m["Z"], m["R"])
        esp = monopole_esp(m["R"], q, grid)
        mu = (q[:, None] * (m["R"] - _com(m["Z"], m["R"]))).sum(0)
        mols.append(dict(Z=m["Z"], R=m["R"], grid=grid, esp=esp, net_charge=m["net_charge"],
                         mono=q, dipole=mu, name=m["name"]))
        truth.append(q)
    return Dataset.from_molecules(mols, source="synthetic"), truth


def _point_prediction(data, q_atoms, n_dcm=2, shift=0.0, seed=1):
    """Predictions placing ``n_dcm`` sites per atom (charges split evenly) near the atoms."""
    rng = np.random.default_rng(seed)
    N = len(data.Z)
    charges = np.repeat(q_atoms[:, None] / n_dcm, n_dcm, axis=1)
    pos = data.R[:, None, :] + shift * rng.normal(size=(N, n_dcm, 3))
    ao, go = data.atom_offsets, data.grid_offsets
    esp = np.concatenate([_np_esp(charges[ao[i]:ao[i + 1]].ravel(),
                                  pos[ao[i]:ao[i + 1]].reshape(-1, 3),
                                  data.grid[go[i]:go[i + 1]].astype(np.float64))
                          for i in range(len(data))])
    com = data.centre_of_mass()
    seg = np.repeat(np.arange(len(data)), data.n_atoms)
    dip = np.zeros((len(data), 3))
    for s in range(n_dcm):
        np.add.at(dip, seg, charges[:, s, None] * (pos[:, s] - com[seg]))
    return DatasetPrediction(charges, pos, esp, dip)


def test_fitted_monopoles_recover_known_charges():
    data, truth = _synthetic()
    pred = _point_prediction(data, np.concatenate(truth), shift=0.0)
    res = analyze_predictions(data, pred)
    ao = data.atom_offsets
    for i, q in enumerate(truth):
        np.testing.assert_allclose(res.sites["fitted_charges"][ao[i]:ao[i + 1]], q, atol=2e-4)
    for meth in ("dcmnet", "fitted_monopoles", "reference_mono"):
        assert np.all(res.per_molecule[f"{meth}_esp_rmse"] < 2e-3), meth
        assert np.all(np.abs(res.per_molecule[f"{meth}_net_charge_error"]) < 1e-6)
        assert np.all(res.per_molecule[f"{meth}_dipole_error"] < 1e-3)
    # ions are in the set, and their net charge is kept exactly by the fit
    assert set(np.round(data.net_charge)) == {-1.0, 0.0, 1.0}


def test_analysis_equals_independent_numpy():
    data, truth = _synthetic(seed=3)
    q = np.concatenate(truth) * 0.7 + 0.05  # deliberately wrong charges ...
    q_mol = np.bincount(np.repeat(np.arange(len(data)), data.n_atoms), weights=q)
    pred = _point_prediction(data, q, n_dcm=3, shift=0.2)  # ... on off-centre sites
    res = analyze_predictions(data, pred)
    ao, go = data.atom_offsets, data.grid_offsets
    for i in range(len(data)):
        m = data.molecule(i)
        qs = pred.charges[ao[i]:ao[i + 1]].ravel()
        xs = pred.positions[ao[i]:ao[i + 1]].reshape(-1, 3)
        g = m["grid"].astype(np.float64)
        err = (_np_esp(qs, xs, g) - m["esp"].astype(np.float64)) * HARTREE_TO_KCAL_MOL
        assert res.per_molecule["dcmnet_esp_rmse"][i] == pytest.approx(
            math.sqrt(np.mean(err ** 2)), rel=1e-9)
        assert res.per_molecule["dcmnet_esp_mae"][i] == pytest.approx(np.mean(np.abs(err)),
                                                                      rel=1e-9)
        mu = (qs[:, None] * (xs - _com(m["Z"], m["R"]))).sum(0)
        dv = (mu - m["dipole"]) * EANGSTROM_TO_DEBYE
        got = [res.per_molecule[f"dcmnet_dipole_error_{a}"][i] for a in "xyz"]
        np.testing.assert_allclose(got, dv, atol=1e-9)
        assert res.per_molecule["dcmnet_dipole_magnitude_error"][i] == pytest.approx(
            (np.linalg.norm(mu) - np.linalg.norm(m["dipole"])) * EANGSTROM_TO_DEBYE, abs=1e-9)
        assert res.per_molecule["dcmnet_net_charge_error"][i] == pytest.approx(
            q_mol[i] - m["net_charge"], abs=1e-9)
        # closest atom and vdW-scaled shell, independently
        d = np.linalg.norm(g[:, None] - m["R"][None], axis=-1)
        np.testing.assert_array_equal(res.points["nearest_Z"][go[i]:go[i + 1]],
                                      m["Z"][d.argmin(1)])
        np.testing.assert_allclose(res.points["shell_ratio"][go[i]:go[i + 1]],
                                   (d / vdw_radii[m["Z"]]).min(1))
    # per-element RMSE of DCM-net, independently
    err = res.points["esp_dcmnet"] - res.points["esp_ref"]
    for row in [r for r in res.by_element if r["method"] == "dcmnet"]:
        sel = res.points["nearest_Z"] == row["Z"]
        assert row["rmse"] == pytest.approx(math.sqrt(np.mean(err[sel] ** 2)), rel=1e-9)


@pytest.mark.parametrize("table", ["by_element", "by_shell"])
def test_breakdowns_partition_the_points(table):
    data, truth = _synthetic(seed=5)
    res = analyze_predictions(data, _point_prediction(data, np.concatenate(truth) * 0.5,
                                                      shift=0.1))
    total = int(data.n_grid.sum())
    for meth in ("dcmnet", "fitted_monopoles", "reference_mono"):
        rows = [r for r in getattr(res, table) if r["method"] == meth]
        assert sum(r["n_points"] for r in rows) == total
        err = res.points[f"esp_{meth}"] - res.points["esp_ref"]
        assert sum(r["sse"] for r in rows) == pytest.approx(float(np.sum(err ** 2)), rel=1e-12)
        pooled = res.summary["methods"][meth]["esp_rmse_pooled_kcal_mol_e"]
        assert math.sqrt(sum(r["sse"] for r in rows) / total) == pytest.approx(pooled)


def test_checkpoint_analysis_and_comparison(tiny_experiment, small_npz):
    from dcmnet.training.evaluate import model_errors
    from dcmnet.training.experiment import load_experiment
    from dcmnet.model import count_parameters

    data = Dataset.load(small_npz)
    res = analyze_checkpoint(tiny_experiment, data)
    _, model, params, _ = load_experiment(tiny_experiment)
    ref = model_errors(model, params, data)
    np.testing.assert_allclose(res.per_molecule["dcmnet_esp_rmse"], ref["esp_rmse"], rtol=1e-5)
    # the model's ESP equals an independent float64 Coulomb sum over its sites
    ao, go = data.atom_offsets, data.grid_offsets
    for i in range(len(data)):
        v = _np_esp(res.sites["charges"][ao[i]:ao[i + 1]].ravel(),
                    res.sites["positions"][ao[i]:ao[i + 1]].reshape(-1, 3),
                    data.grid[go[i]:go[i + 1]].astype(np.float64)) * HARTREE_TO_KCAL_MOL
        np.testing.assert_allclose(res.points["esp_dcmnet"][go[i]:go[i + 1]], v, atol=2e-4)
    assert np.all(np.abs(res.per_molecule["dcmnet_net_charge_error"]) < 1e-4)
    assert res.n_parameters == count_parameters(params)
    assert res.summary["inference_ms_per_molecule"] > 0

    rows = compare_checkpoints([tiny_experiment, tiny_experiment / "checkpoints" / "latest"],
                               data)
    assert [r["kind"] for r in rows] == ["best", "checkpoint"] + ["baseline"] * 4
    assert [r["name"] for r in rows[2:5]] == ["fitted monopoles", "fitted monopoles + dipoles",
                                             "fitted monopoles + dipoles + quadrupoles"]
    assert rows[0]["n_parameters"] == res.n_parameters and rows[0]["n_dcm"] == 2
    assert rows[0]["esp_rmse_median"] == pytest.approx(
        float(np.median(res.per_molecule["dcmnet_esp_rmse"])), rel=1e-6)
    assert rows[0]["inference_ms_per_molecule"] > 0


def _fake_history(tmp_path, valid, train):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.json").write_text("{}")
    with open(exp / "training_history.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "lr", "train_loss", "valid_loss", "train_esp_rmse",
                    "valid_esp_rmse"])
        for e, (v, t) in enumerate(zip(valid, train)):
            w.writerow([e + 1, 1e-3, t, v, math.sqrt(t), math.sqrt(v)])
    return exp


@pytest.mark.parametrize("valid,train,status,best", [
    ([10, 8, 6, 4, 3, 2.5, 2.0, 1.6, 1.3, 1.1], [9, 7, 5, 3.5, 2.8, 2.3, 1.9, 1.5, 1.2, 1.0],
     "improving", 10),
    ([10, 5, 3, 2, 1.5, 1.2, 1.0, 1.0, 1.0, 1.0], [9, 5, 3, 2, 1.5, 1.2, 1.0, 1.0, 1.0, 1.0],
     "plateau", 7),
    ([10, 5, 3, 2, 1.5, 1.7, 1.9, 2.1, 2.4, 2.6], [9, 5, 3, 2, 1.4, 1.1, 0.9, 0.7, 0.5, 0.4],
     "overfitting", 5),
    ([10, 5], [9, 5], "too_short", 2),
])
def test_training_history_diagnosis(tmp_path, valid, train, status, best):
    h = analyze_training_history(_fake_history(tmp_path, valid, train))
    assert h["status"] == status and h["best_epoch"] == best
    assert h["n_epochs"] == len(valid) and len(h["rows"]) == len(valid)
    assert h["diagnosis"] and isinstance(h["diagnosis"], str)
    assert h["best_valid_loss"] == pytest.approx(min(valid))


def test_batch_summary_files_and_export_formats(tiny_experiment, small_npz, tmp_path,
                                                monkeypatch):
    data = Dataset.load(small_npz)
    out = batch_analysis_summary(tiny_experiment, data)
    a = tiny_experiment / "analysis"
    for f in ("best_analysis.json", "predictions.csv", "training_history.csv",
              "by_element.csv", "by_shell.csv"):
        assert (a / f).stat().st_size > 0, f
    rep = json.loads((a / "best_analysis.json").read_text())
    assert rep["training"]["best_epoch"] in (1, 2) and rep["units"]["esp"] == "kcal/(mol*e)"
    assert len(rep["per_molecule"]) == len(data)
    with open(a / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(data) and "fitted_monopoles_esp_rmse" in rows[0]
    hist = list(csv.DictReader(open(a / "training_history.csv")))
    assert len(hist) == 2 and sum(int(r["is_best"]) for r in hist) == 1

    res = out["analysis"]
    for fmt in ("json", "csv", "parquet", "pkl"):
        p = export_analysis_report(res, tmp_path / f"report.{fmt}")
        assert p.stat().st_size > 0
    import pandas as pd
    assert len(pd.read_parquet(tmp_path / "report.parquet")) == len(data)
    assert len(list(csv.DictReader(open(tmp_path / "report.csv")))) == len(data)
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"
    # parquet without pyarrow: a clear optional-dependency error
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(OptionalDependencyError, match="analysis"):
        export_analysis_report(res, tmp_path / "again.parquet")


def test_cli_analyze_and_compare(tiny_experiment, small_npz, tmp_path, capsys):
    assert main(["analyze", str(tiny_experiment), "--data-files", str(small_npz),
                 "--format", "json", "csv"]) == 0
    err = capsys.readouterr().err
    assert "fitted monopoles" in err and "ESP RMSE median" in err and "closest atom" in err
    assert (tiny_experiment / "analysis" / "best_analysis.csv").exists()
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(tiny_experiment), "--data-files", str(small_npz), "--out",
                 str(out)]) == 0
    assert "checkpoint comparison" in capsys.readouterr().err
    assert len(list(csv.DictReader(open(out)))) == 5   # + fitted dipoles, quadrupoles
    assert main(["analyze", str(tmp_path / "nope")]) == 2


def test_cli_parsing_imports_no_jax():
    code = ("import sys; from dcmnet.cli.main import build_parser; build_parser(); "
            "print(any(m in sys.modules for m in ('jax', 'matplotlib', 'plotly')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
