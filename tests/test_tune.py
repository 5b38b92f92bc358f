"""``dcmnet tune``: search-space parsing, and a tiny study that is killed, resumed and
found complete with pruned and finished trials (issue 6, hyperparameter search)."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcmnet.cli.main import main
from dcmnet.config import ExperimentConfig
from dcmnet.errors import ConfigError, OptionalDependencyError
from dcmnet.tune import (DEFAULT_SEARCH_SPACE, default_search_space, load_search_space,
                         parse_search_space)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "search_space.json"


# ------------------------------------------------------------------ search space (fast)

def test_default_space_and_example_file_agree():
    space = default_search_space()
    assert set(space.searched) >= {"n_dcm", "features", "num_iterations", "max_degree",
                                   "cutoff", "learning_rate", "chg_w", "dipole_w",
                                   "batch_size", "gradient_accumulation_steps"}
    assert space.fixed == {"esp_w": 1.0}
    assert load_search_space(EXAMPLE).to_dict() == space.to_dict()
    # the canonical form reads back to itself
    assert parse_search_space(space.to_dict()).to_dict() == space.to_dict()
    assert parse_search_space(DEFAULT_SEARCH_SPACE).params["learning_rate"].log


def test_space_forms_and_types(tmp_path):
    s = parse_search_space({
        "_comment": "ignored",
        "n_dcm": {"low": 1, "high": 3},
        "cutoff": {"low": 3, "high": 5, "step": 0.5},
        "learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
        "features": {"choices": [8, 16]},
        "lr_schedule_type": ["cosine", "constant"],
        "use_ema": [True, False],
        "esp_w": {"value": 2},
        "chg_w": 0.5,
        "max_degree": {"low": 2, "high": 2},          # degenerate range → fixed
    })
    p = s.params
    assert p["n_dcm"].kind == "int" and p["cutoff"].kind == "float"
    assert p["cutoff"].low == 3.0 and isinstance(p["cutoff"].low, float)
    assert p["features"].kind == "categorical" and p["lr_schedule_type"].choices[1] == "constant"
    assert s.fixed == {"esp_w": 2.0, "chg_w": 0.5, "max_degree": 2}
    assert "_comment" not in p
    yml = tmp_path / "s.yaml"
    yml.write_text("n_dcm: {low: 1, high: 2}\nfeatures: [8, 16]\n")
    pytest.importorskip("yaml")
    assert load_search_space(yml).searched == ["n_dcm", "features"]


@pytest.mark.parametrize("space, words", [
    ({"n_dmc": [1, 2]}, ["unknown parameter 'n_dmc'", "n_dcm"]),
    ({"num_epochs": [1, 2]}, ["--num-epochs"]),
    ({"n_dcm": {"low": 4, "high": 1}}, ["n_dcm", "low 4 is above high 1"]),
    ({"chg_w": {"low": 0.0, "high": 10.0, "log": True}}, ["log range", "low > 0"]),
    ({"learning_rate": {"low": 0.0, "high": 1e-2}}, ["learning_rate must be > 0"]),
    ({"n_dcm": {"low": 1.5, "high": 3}}, ["n_dcm", "whole number"]),
    ({"n_dcm": {"low": 0, "high": 3}}, ["n_dcm", "not allowed", "≥ 1"]),
    ({"max_degree": [0, 1]}, ["max_degree", "not allowed"]),
    ({"n_dcm": {"type": "float", "low": 1, "high": 3}}, ["whole numbers"]),
    ({"features": []}, ["non-empty"]),
    ({"features": [8, 8]}, ["duplicates"]),
    ({"cutoff": {"low": 3.0, "hgh": 5.0}}, ["unknown key(s) hgh"]),
    ({"cutoff": {"low": 3.0}}, ["both low and high"]),
    ({"lr_schedule_type": {"low": 1, "high": 2}}, ["not a range"]),
    ({"lr_schedule_type": ["cosine", "linear"]}, ["lr_schedule_type", "not allowed"]),
    ({"cutoff": {"type": "uniform", "low": 1, "high": 2}}, ["type 'uniform'"]),
    ([1, 2], ["expected a mapping"]),
])
def test_bad_spaces_are_refused_with_clear_messages(space, words):
    with pytest.raises(ConfigError) as exc:
        parse_search_space(space)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_cli_errors(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_dcm": {"low": 3, "high": 1}}')
    assert main(["tune", "--study", "s", "--search-space", str(bad),
                 "--show-search-space"]) == 2
    assert "low 3 is above high 1" in " ".join(capsys.readouterr().err.split())
    assert main(["tune", "--search-space", str(EXAMPLE), "--show-search-space"]) == 0
    assert json.loads(capsys.readouterr().out) == default_search_space().to_dict()
    assert main(["tune", "--n-trials", "1"]) == 2
    assert "--study NAME" in " ".join(capsys.readouterr().err.split())
    pytest.importorskip("optuna")
    assert main(["tune", "--study", "s", "--study-dir", str(tmp_path / "s"), "--data-files",
                 str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: file not found" in " ".join(capsys.readouterr().err.split())
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "study.json").write_text('{"study_name": "a"}')
    assert main(["tune", "--study", "b", "--study-dir", str(tmp_path / "s2")]) == 2
    assert "belongs to study 'a'" in " ".join(capsys.readouterr().err.split())
    monkeypatch.setitem(sys.modules, "optuna", None)     # as if not installed
    assert main(["tune", "--study", "s", "--study-dir", str(tmp_path / "s")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "needs Optuna: pip install optuna" in err and "Traceback" not in err
    from dcmnet.tune import open_study
    with pytest.raises(OptionalDependencyError):
        open_study("s", tmp_path / "s")


# ------------------------------------------------------------------ a real study (slow)

TINY_FLAGS = ["--n-dcm", "2", "--features", "8", "--max-degree", "1", "--num-iterations", "1",
              "--num-basis-functions", "8", "--batch-size", "4"]
N_TRIALS = 5


def _finished_and_running(db: Path) -> tuple[int, int]:
    import optuna
    from optuna.trial import TrialState
    if not db.exists():
        return 0, 0
    try:
        study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
        return (len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))),
                len(study.get_trials(states=(TrialState.RUNNING,))))
    except Exception:          # noqa: BLE001 - study not created yet / database busy
        return 0, 0


@pytest.mark.slow
def test_tune_killed_resumed_and_complete(tmp_path, small_npz, capsys):
    optuna = pytest.importorskip("optuna")
    from optuna.trial import TrialState

    space = tmp_path / "space.json"
    # learning rates down to 1e-6 barely train in 2 epochs: the median pruner stops them
    space.write_text(json.dumps({"learning_rate": {"low": 1e-6, "high": 1e-2, "log": True}}))
    study_dir = tmp_path / "studies" / "t"
    cmd = ["tune", "--study", "t", "--study-dir", str(study_dir), "--data-files",
           str(small_npz), "--search-space", str(space), "--n-trials", str(N_TRIALS),
           "--num-epochs", "2", "--pruner-startup-trials", "1", "--seed", "1",
           "--heartbeat-interval", "1", "--grace-period", "3"] + TINY_FLAGS

    # 1. start it in another process; once the first trial has finished and the second is
    #    running, kill it hard (the running trial stays RUNNING in the database)
    log = open(tmp_path / "first_run.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "dcmnet"] + cmd, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    db = study_dir / "study.db"
    deadline = time.monotonic() + 150
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "first_run.log").read_text()
            assert time.monotonic() < deadline, "first trial did not finish in time"
            if min(_finished_and_running(db)) >= 1:
                # freeze it, then look again: a tiny trial can finish between the look
                # and the kill, leaving no trial RUNNING to be killed
                proc.send_signal(signal.SIGSTOP)
                time.sleep(0.2)
                if min(_finished_and_running(db)) >= 1:
                    break
                proc.send_signal(signal.SIGCONT)
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    assert 1 <= len([t for t in study.trials if t.state.is_finished()]) < N_TRIALS
    killed = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    time.sleep(3.5)            # past the grace period: a trial left RUNNING is now stale

    # 2. the same command resumes and runs only the missing trials
    capsys.readouterr()
    assert main(cmd) == 0
    err = capsys.readouterr().err
    (tmp_path / "resumed_run.log").write_text(err)
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    states = [t.state for t in study.trials]
    n_finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
    assert n_finished == N_TRIALS, states
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
    # the trial killed mid-run was failed (no heartbeat) and retried with its parameters
    assert [t.number for t in study.trials if t.state == TrialState.FAIL] == killed
    retries = [r for r in study.trials if r.system_attrs.get("failed_trial") == killed[0]]
    assert len(retries) == 1 and retries[0].params == study.trials[killed[0]].params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert "to run" in err and "study t" in err
    # pruned trials stopped early; each finished trial is a normal experiment folder
    for t in study.trials:
        if t.state == TrialState.PRUNED:
            assert len(t.intermediate_values) == 1
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            exp = study_dir / "trials" / f"trial_{t.number}"
            assert Path(t.user_attrs["experiment_dir"]) == exp
            cfg = ExperimentConfig.load(exp / "config.json")
            assert cfg.training.learning_rate == pytest.approx(t.params["learning_rate"])
            assert cfg.model.features == 8 and cfg.training.num_epochs == 2
        if t.state == TrialState.COMPLETE:
            assert (exp / "analysis" / "validation_evaluation.json").exists()
            assert t.value == pytest.approx(t.intermediate_values[t.user_attrs["best_epoch"]])

    # results: table printed, CSV, figures, best config
    assert "complete" in err and "pruned" in err and "ESP RMSE" in err
    with open(study_dir / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(study.trials)
    notes = {int(r["number"]): r["note"] for r in rows}
    assert notes[killed[0]] == f"lost (no heartbeat), retried as {retries[0].number}"
    assert notes[retries[0].number].endswith(f"retry of {killed[0]}")
    assert rows[0]["state"] == "COMPLETE"
    assert float(rows[0]["valid_esp_rmse_kcal_mol_e"]) == pytest.approx(study.best_value)
    assert (study_dir / "optimization_history.png").stat().st_size > 0
    assert (study_dir / "param_importances.png").exists()
    best = ExperimentConfig.load(study_dir / "best_config.json")
    assert best.training.learning_rate == pytest.approx(study.best_params["learning_rate"])
    assert best.data_files == [str(Path(small_npz).resolve())]

    # 3. rerunning the finished study runs nothing; the best config trains as usual
    assert main(cmd) == 0
    assert "0 to run" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="t", storage=f"sqlite:///{db}").trials) == len(
        study.trials)
    out = tmp_path / "exp"
    assert main(["train", "--config", str(study_dir / "best_config.json"), "--num-epochs",
                 "1", "--output-dir", str(out), "--no-progress"]) == 0
    assert (out / "t_best" / "config.json").exists()


def test_results_table_csv_best_config_and_figures_of_a_synthetic_study(tmp_path):
    optuna = pytest.importorskip("optuna")
    import io

    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial
    from rich.console import Console

    from dcmnet.tune import summarize_study, trial_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist = {"learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}

    def cfg(lr):
        return {"learning_rate": lr, "num_epochs": 2, "features": 8, "data_files": ["/d.npz"]}

    st = optuna.create_study(study_name="syn", direction="minimize")
    console = Console(file=io.StringIO(), width=150)
    files = summarize_study(st, tmp_path / "empty", console=console)   # nothing yet: no crash
    assert files["best_config"] is None and isinstance(files["param_importances"], str)
    st.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0, params={"learning_rate": 1e-3},
                              distributions=dist, intermediate_values={1: 1.5, 2: 1.0},
                              user_attrs={"config": cfg(1e-3), "best_epoch": 2, "epochs_run": 2}))
    st.add_trial(create_trial(state=TrialState.PRUNED, params={"learning_rate": 1e-5},
                              distributions=dist, intermediate_values={1: 3.0},
                              user_attrs={"config": cfg(1e-5), "pruned_at_epoch": 1}))
    st.add_trial(create_trial(state=TrialState.FAIL, params={"learning_rate": 2e-3},
                              distributions=dist))
    st.add_trial(create_trial(state=TrialState.COMPLETE, value=0.8, params={"learning_rate": 2e-3},
                              distributions=dist, intermediate_values={1: 0.9, 2: 0.8},
                              system_attrs={"failed_trial": 2, "retry_history": [2]},
                              user_attrs={"config": cfg(2e-3), "best_epoch": 2, "epochs_run": 2}))
    rows = trial_rows(st)
    assert [r["number"] for r in rows] == [3, 0, 1, 2]
    assert rows[0]["note"] == "retry of 2" and rows[2]["note"] == "pruned at epoch 1"
    assert rows[2]["valid_esp_rmse"] == 3.0 and rows[3]["note"].startswith("lost (no heartbeat)")
    files = summarize_study(st, tmp_path / "s", console=console)
    text = console.file.getvalue()
    assert "best trial 3" in text and "kcal/(mol·e)" in text and "retry of 2" in text
    best = ExperimentConfig.load(files["best_config"])
    assert best.name == "syn_best" and best.training.learning_rate == 2e-3
    assert best.model.features == 8 and best.output_dir == "experiments"
    for name in ("optimization_history", "intermediate_values", "param_importances"):
        assert isinstance(files[name], Path) and files[name].stat().st_size > 1000, files[name]
    assert len((tmp_path / "s" / "trials.csv").read_text().splitlines()) == 5
