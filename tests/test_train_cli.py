"""Training end to end on real bundled molecules: the CLI twice in a row, resume,
evaluation on an unseen mmml-style file, and a run that beats fitted monopoles."""
import json

import numpy as np
import pytest

from conftest import bundled_subset
from dcmnet.cli.main import main
from dcmnet.config import ExperimentConfig
from dcmnet.data.mmml import write_mmml_npz
from dcmnet.training.evaluate import fitted_monopole_errors, model_errors
from dcmnet.training.experiment import load_experiment

TINY_FLAGS = ["--n-dcm", "2", "--features", "8", "--max-degree", "1", "--num-iterations",
              "1", "--num-basis-functions", "8", "--batch-size", "4", "--no-progress"]


def _out(capsys) -> str:
    """stdout (normal output: header, epochs, summary) followed by stderr."""
    o = capsys.readouterr()
    return o.out + o.err


@pytest.mark.slow
def test_cli_twice_resume_and_evaluate_on_unseen_mmml(tmp_path, small_npz, capsys):
    base = ["train", "--name", "t", "--output-dir", str(tmp_path / "exp"), "--data-files",
            str(small_npz)] + TINY_FLAGS
    assert main(base + ["--num-epochs", "2"]) == 0
    exp = tmp_path / "exp" / "t"
    for f in ("config.json", "split.json", "training_history.csv",
              "analysis/validation_evaluation.json"):
        assert (exp / f).exists(), f
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ["best", "latest"]
    cfg = ExperimentConfig.load(exp / "config.json")
    assert cfg.training.num_epochs == 2 and cfg.model.features == 8
    err = _out(capsys)
    assert "Train" in err and "Valid" in err and "% Diff" in err
    assert "fitted" in err and "monopoles" in err
    # the same command again: finished, nothing to do, no crash
    assert main(base + ["--num-epochs", "2"]) == 0
    assert "nothing to do" in _out(capsys)
    # changed settings on a finished run are ignored and config.json is kept
    events = len(list((exp / "tensorboard").iterdir()))
    assert main(base + ["--num-epochs", "2", "--learning-rate", "0.02"]) == 0
    assert "config.json is kept" in " ".join(_out(capsys).split())
    assert ExperimentConfig.load(exp / "config.json").training.learning_rate == cfg.training.learning_rate
    assert len(list((exp / "tensorboard").iterdir())) == events
    # more epochs: resumes from epoch 2
    assert main(base + ["--num-epochs", "3"]) == 0
    err = _out(capsys)
    assert "resuming from latest checkpoint (epoch 2)" in err
    hist = (exp / "training_history.csv").read_text().strip().splitlines()
    assert len(hist) == 1 + 3
    # a different architecture under the same name is refused with advice
    assert main(base + ["--num-epochs", "3", "--features", "16"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--overwrite" in err and "features (8 there, 16 now)" in err
    # a second process on the same experiment is refused while the first holds it
    from dcmnet.training.experiment import experiment_lock
    with experiment_lock(exp):
        assert main(base + ["--num-epochs", "4"]) == 2
    assert "being trained by another process" in " ".join(capsys.readouterr().err.split())
    # an output path that is a file fails at once
    (tmp_path / "afile").write_text("")
    assert main(["train", "--name", "t", "--output-dir", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in " ".join(capsys.readouterr().err.split())

    # evaluate on molecules the model never saw, given as an mmml-style padded NPZ
    unseen = bundled_subset(["ethanol", "formamide"], 3)
    mm = write_mmml_npz(unseen, tmp_path / "unseen_mmml.npz")
    with np.load(mm) as z:
        assert z["R"].ndim == 3 and "Dxyz" in z.files and "vdw_surface" in z.files
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(exp), "--data-files", str(mm), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["n_molecules"] == 6
    for k in ("esp_rmse_kcal_mol_e", "fitted_monopole_esp_rmse_kcal_mol_e"):
        assert set(s[k]) == {"median", "mean"} and s[k]["median"] > 0
    assert s["dipole_mae_debye"] is not None and s["dipole_mae_debye"] >= 0
    assert s["max_net_charge_error_e"] < 1e-4
    # the baseline on these molecules equals an independent computation
    mono = fitted_monopole_errors(unseen)
    assert s["fitted_monopole_esp_rmse_kcal_mol_e"]["median"] == pytest.approx(
        float(np.median(mono["esp_rmse"])), rel=1e-3)


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["train", "--name", "x", "--output-dir", str(tmp_path), "--data-files",
                 str(tmp_path / "missing.npz"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "missing.npz" in err and "not found" in err and "Traceback" not in err
    assert main(["train", "--name", "x", "--output-dir", str(tmp_path), "--num-train",
                 "100000", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "660" in err  # says how many molecules there are
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_short_training_beats_fitted_monopoles_on_training_molecules(tmp_path):
    from dcmnet.training.runner import run_training
    from rich.console import Console

    ds = bundled_subset(["water", "methanol"], 3)
    f = ds.save(tmp_path / "wm.npz")
    params, best, exp = run_training(
        "fit", output_dir=str(tmp_path), data_files=[str(f)], num_train=5, num_valid=1,
        num_epochs=150, batch_size=5, learning_rate=5e-3, features=16, max_degree=1,
        num_iterations=1, num_basis_functions=8, warmup_epochs=0, ema_decay=0.0,
        save_every_n_epochs=0, progress=False, table_every=0,
        console=Console(stderr=True, quiet=True))
    cfg, model, params, _ = load_experiment(exp, kind="latest")
    split = json.loads((exp / "split.json").read_text())
    train = ds.subset(split["train"])
    m = model_errors(model, params, train)
    b = fitted_monopole_errors(train)
    assert np.median(m["esp_rmse"]) < np.median(b["esp_rmse"]), (m["esp_rmse"], b["esp_rmse"])
    assert np.max(m["net_charge_error"]) < 1e-5


def test_flag_typos_get_the_subcommand_usage_and_a_suggestion(capsys):
    for argv, hint in ((["train", "--nmae", "x"], "did you mean --name?"),
                       (["train", "--num-epoch", "3"], "did you mean --num-epochs?")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "dcmnet train: error: unrecognized arguments" in err and hint in err
