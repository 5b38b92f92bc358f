"""The fitted-DCM limit (dcmnet.fitting_dcm) and ``dcmnet fit-dcm``."""
import csv
import json

import numpy as np
import pytest

from conftest import bundled_subset
from dcmnet.data.batching import make_batch
from dcmnet.data.dataset import Dataset
from dcmnet.fitting import coulomb_matrix
from dcmnet.fitting_dcm import fit_dcm_batch, fit_dcm_dataset
from dcmnet.surface import vdw_shell_points

WATER_Z = np.array([8, 1, 1])
WATER_R = np.array([[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.0, -0.757, -0.467]])


@pytest.fixture(scope="module")
def synthetic():
    """Water whose ESP comes from 2 known charges per atom, 0.25 Å from their atoms."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3, 2, 3))
    d *= (0.25 / np.linalg.norm(d, axis=-1))[..., None]
    q = rng.normal(scale=0.4, size=(3, 2))
    q -= q.mean()                                           # neutral
    grid = vdw_shell_points(WATER_Z, WATER_R)
    esp = coulomb_matrix(grid, (WATER_R[:, None] + d).reshape(-1, 3)) @ q.reshape(-1)
    return Dataset.from_molecules([dict(Z=WATER_Z, R=WATER_R, grid=grid, esp=esp,
                                        name="synthetic")])


@pytest.fixture(scope="module")
def small():
    return bundled_subset(["water", "methanol", "acetate", "methylammonium"], 1)


def test_exact_recovery_of_two_sites_per_atom(synthetic):
    r = fit_dcm_dataset(synthetic, n_dcm=2, max_displacement=0.5, steps=800)
    assert r["esp_rmse_monopoles"][0] > 1.0                 # monopoles cannot do it
    assert r["esp_rmse_dcm"][0] < 1e-3                      # kcal/(mol·e)
    assert abs(r["charges"].sum()) < 1e-6
    assert r["net_charge_error"][0] < 1e-6
    assert r["max_site_distance"][0] < 0.5


def test_k1_without_steps_is_the_monopole_fit(small):
    r = fit_dcm_dataset(small, n_dcm=1, steps=0)
    np.testing.assert_allclose(r["esp_rmse_dcm"], r["esp_rmse_monopoles"], rtol=0.01)
    # a displacement bound far below the grid distance reduces K = 1 to monopoles too
    r = fit_dcm_dataset(small, n_dcm=1, max_displacement=1e-4, steps=20)
    np.testing.assert_allclose(r["esp_rmse_dcm"], r["esp_rmse_monopoles"], rtol=0.01)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_never_worse_than_monopoles_and_bounded(small, K):
    m = 0.3
    r = fit_dcm_dataset(small, n_dcm=K, max_displacement=m, steps=30)
    assert np.all(r["esp_rmse_dcm"] <= r["esp_rmse_monopoles"] * (1 + 1e-6))
    assert np.median(r["ratio"]) < 0.9
    d = np.linalg.norm(r["positions"] - small.R[:, None, :], axis=-1)
    assert d.max() < m
    np.testing.assert_allclose(r["net_charge_error"], 0, atol=1e-6)
    seg = np.repeat(np.arange(len(small)), small.n_atoms)
    np.testing.assert_allclose(np.bincount(seg, r["charges"].sum(1)), small.net_charge,
                               atol=1e-6)


def test_padding_invariance(small):
    A, G = int(small.n_atoms.max()), int(small.n_grid.max())
    tight = fit_dcm_batch(make_batch(small, [0, 1], 2, A, G), n_dcm=2, steps=15)
    loose = fit_dcm_batch(make_batch(small, [0, 1], 5, A + 7, G + 300), n_dcm=2, steps=15)
    np.testing.assert_allclose(loose["esp_rmse"][:2], tight["esp_rmse"], rtol=1e-6)
    np.testing.assert_allclose(loose["charges"][:2, :A], tight["charges"], atol=1e-6)
    assert np.all(loose["charges"][:2, A:] == 0) and np.all(loose["esp_rmse"][2:] == 0)


def test_cli_writes_json_and_csv(small_npz, tmp_path):
    from dcmnet.cli.main import main

    out = tmp_path / "fd"
    assert main(["fit-dcm", str(small_npz), "--n-dcm", "2", "--steps", "20",
                 "--max-conformers", "2", "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "fit_dcm.json").read_text())
    o = s["overall"]
    assert s["n_dcm"] == 2 and o["n_conformers"] == 8
    assert 0 < o["fitted_dcm"]["median"] < o["fitted_monopoles"]["median"]
    assert 0 < o["ratio_of_medians"] < 1
    assert set(s["per_molecule"]) == {"water", "methanol", "acetate", "methylammonium"}
    rows = list(csv.DictReader((out / "fit_dcm.csv").open()))
    assert len(rows) == 8
    for row in rows:
        for k, v in row.items():
            if k != "molecule":
                float(v)                                    # plain numbers only
        assert float(row["esp_rmse_dcm"]) < float(row["esp_rmse_monopoles"])


@pytest.mark.parametrize("argv, words", [
    (["--n-dcm", "0"], "n_dcm must be a whole number"),
    (["--max-displacement", "0"], "max_displacement must be > 0"),
])
def test_cli_bad_options(small_npz, capsys, argv, words):
    from dcmnet.cli.main import main

    assert main(["fit-dcm", str(small_npz), *argv]) == 2
    assert words in capsys.readouterr().err


def test_cli_missing_file(tmp_path, capsys):
    from dcmnet.cli.main import main

    missing = tmp_path / "nope.npz"
    assert main(["fit-dcm", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "nope.npz" in capsys.readouterr().err


def test_analyze_and_evaluate_report_the_ratio_to_the_limit(tiny_experiment, tmp_path, small):
    import shutil

    from dcmnet.cli.main import main
    from dcmnet.training.evaluate import evaluate_model
    from dcmnet.training.experiment import load_experiment

    exp = shutil.copytree(tiny_experiment, tmp_path / "exp")
    assert main(["analyze", str(exp), "--fit-dcm", "--fit-dcm-steps", "5"]) == 0
    fd = json.loads((exp / "analysis" / "best_analysis.json").read_text())["summary"]["fitted_dcm"]
    assert fd["n_dcm"] == 2 and fd["steps"] == 5
    lim = fd["esp_rmse_kcal_mol_e"]["median"]
    assert 0 < lim < fd["fitted_monopole_esp_rmse_kcal_mol_e"]["median"]
    assert fd["model_ratio_to_fitted_dcm"] > 1              # a 2-epoch model is far from it
    _, model, params, _ = load_experiment(exp)
    s = evaluate_model(model, params, small, batch_size=4, multipoles=False, fit_dcm=True,
                       fit_dcm_steps=5)
    assert s["fitted_dcm"]["model_ratio_to_fitted_dcm"] == pytest.approx(
        s["esp_rmse_kcal_mol_e"]["median"] / s["fitted_dcm"]["esp_rmse_kcal_mol_e"]["median"])
