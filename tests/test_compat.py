"""The original tool's snippets (shared/seed/README_IMPROVEMENTS.md) with only the package
path changed: prepare_datasets(natoms=...), the keyword train_model returning
(params, loss), batch_analysis_summary(exp_dir, model, test_data), create_model from
dcmnet.analysis, the LR-schedule and gradient-accumulation snippets, train_runner."""
import csv
import importlib
import json
import runpy
import sys

import jax
import numpy as np
import pytest
from rich.console import Console

from conftest import TINY

pytestmark = pytest.mark.usefixtures("jax_compile_cache")
SMALL_MODEL = {k: v for k, v in TINY.items()}


def _quiet():
    return Console(stderr=True, quiet=True)


def _history(exp):
    with open(exp / "training_history.csv") as fh:
        return list(csv.DictReader(fh))


def test_prepare_datasets_accepts_natoms(small_npz, capsys):
    from dcmnet.data import prepare_datasets

    key = jax.random.PRNGKey(42)
    tr, va = prepare_datasets(key, num_train=12, num_valid=4, filename=[str(small_npz)],
                              natoms=18)
    assert (len(tr), len(va)) == (12, 4)
    assert "natoms=18 is ignored" in capsys.readouterr().err
    # same split as without natoms: the argument changes nothing
    tr2, va2 = prepare_datasets(key, num_train=12, num_valid=4, filename=[str(small_npz)])
    assert np.array_equal(tr.R, tr2.R) and np.array_equal(va.esp, va2.esp)


def test_create_model_importable_from_analysis():
    from dcmnet.analysis import create_model
    from dcmnet.model import DCMNet, create_model as real

    assert create_model is real
    assert isinstance(create_model(n_dcm=7, features=16), DCMNet)


def test_train_model_original_form_errors(small_npz):
    from dcmnet.analysis import create_model
    from dcmnet.data import prepare_datasets
    from dcmnet.errors import ConfigError
    from dcmnet.compat.training import train_model

    tr, va = prepare_datasets(0, num_train=12, num_valid=4, filename=[str(small_npz)],
                              verbose=False)
    model = create_model(n_dcm=2, features=8)
    with pytest.raises(ConfigError, match="ndcm=3 differs from model.n_dcm=2"):
        train_model(key=0, model=model, train_data=tr, valid_data=va, ndcm=3)
    with pytest.raises(ConfigError, match="unknown keyword.*num_epoch"):
        train_model(key=0, model=model, train_data=tr, valid_data=va, num_epoch=3)
    with pytest.raises(ConfigError, match="valid_data must be a dcmnet Dataset"):
        train_model(key=0, model=model, train_data=tr, valid_data={"R": 1})


def test_train_model_positional_original_order(monkeypatch):
    """``train_model(key, model, train_data, valid_data, ...)`` maps onto the keywords."""
    import dcmnet.compat
    from dcmnet.compat.training import train_model

    seen = {}
    monkeypatch.setattr(dcmnet.compat, "train_model_from_model",
                        lambda **kw: seen.update(kw) or ("p", 1.0))
    assert train_model("K", "M", "T", "V", num_epochs=3) == ("p", 1.0)
    assert (seen["key"], seen["model"], seen["train_data"], seen["valid_data"],
            seen["num_epochs"]) == ("K", "M", "T", "V", 3)


@pytest.fixture(scope="module")
def original_run(small_npz, tmp_path_factory):
    """The notebook snippet of the summary, tiny: prepare → create_model → train_model."""
    from tensorboardX import SummaryWriter

    from dcmnet.analysis import create_model
    from dcmnet.data import prepare_datasets
    from dcmnet.compat.training import train_model

    out = tmp_path_factory.mktemp("compat")

    class Recorder(SummaryWriter):
        calls = []

        def add_scalar(self, tag, value, step=None, *a, **k):
            self.calls.append((tag, value, step))
            return super().add_scalar(tag, value, step, *a, **k)

    key = jax.random.PRNGKey(42)
    train_data, valid_data = prepare_datasets(key, num_train=12, num_valid=4,
                                              filename=[str(small_npz)], natoms=18,
                                              verbose=False)
    model = create_model(**SMALL_MODEL)
    writer = Recorder(str(out / "tb"))
    params, loss = train_model(key=key, model=model, train_data=train_data,
                               valid_data=valid_data, num_epochs=2, learning_rate=1e-3,
                               batch_size=4, writer=writer, ndcm=model.n_dcm, esp_w=10000.0,
                               chg_w=1.0, use_grad_clip=True, grad_clip_norm=2.0,
                               save_every_n_epochs=1, output_dir=str(out / "experiments"),
                               console=_quiet(), table_every=0)
    writer.close()
    exp = next((out / "experiments").iterdir())
    return dict(params=params, loss=loss, exp=exp, model=model, valid=valid_data,
                calls=list(Recorder.calls), out=out)


def test_train_model_original_form_returns_params_and_loss(original_run):
    from dcmnet.config import ExperimentConfig

    params, loss, exp = original_run["params"], original_run["loss"], original_run["exp"]
    assert isinstance(params, dict) and "params" in params
    assert isinstance(loss, float) and np.isfinite(loss)
    assert exp.name == "train_model-1"
    rows = _history(exp)
    assert len(rows) == 2
    assert loss == pytest.approx(min(float(r["valid_loss"]) for r in rows), rel=1e-6)
    cfg = ExperimentConfig.load(exp / "config.json")
    assert (cfg.training.esp_w, cfg.training.chg_w, cfg.training.learning_rate) == \
        (10000.0, 1.0, 1e-3)
    assert cfg.training.use_grad_clip and cfg.training.grad_clip_norm == 2.0
    assert cfg.model.n_dcm == 2 and cfg.model.features == TINY["features"]
    for kind in ("best", "latest", "periodic"):
        assert any(p.name.isdigit() for p in (exp / "checkpoints" / kind).iterdir()), kind
    # the returned parameters are the best checkpoint's EMA parameters: same predictions
    from dcmnet.training.experiment import load_experiment
    _, model, p2, _ = load_experiment(exp)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(p2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_train_model_sends_metrics_to_the_writer(original_run):
    calls = original_run["calls"]
    tags = {t for t, _, _ in calls}
    assert {"train/esp_rmse", "valid/esp_rmse", "valid/loss", "lr"} <= tags
    assert sorted({s for _, _, s in calls}) == [1, 2]
    rows = _history(original_run["exp"])
    got = {s: v for t, v, s in calls if t == "valid/esp_rmse"}
    assert got[2] == pytest.approx(float(rows[1]["valid_esp_rmse"]), rel=1e-6)
    assert any(p.name.startswith("events.out.tfevents")
               for p in (original_run["out"] / "tb").iterdir())


def test_batch_analysis_summary_original_form(original_run, recwarn):
    import warnings

    from dcmnet.analysis import create_model
    from dcmnet.compat.analysis_multibatch import batch_analysis_summary

    exp, test_data = original_run["exp"], original_run["valid"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)           # the matching model: silent
        results = batch_analysis_summary(exp, original_run["model"], test_data)
    files = {p.name for p in results["files"]}
    assert {"best_analysis.json", "predictions.csv", "training_history.csv"} <= files
    report = json.loads((exp / "analysis" / "best_analysis.json").read_text())
    assert report["n_dcm"] == 2 and len(report["per_molecule"]) == len(test_data)
    with open(exp / "analysis" / "predictions.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(test_data)
    assert results["analysis"].summary["n_molecules"] == len(test_data)
    # the summary's line: model = create_model(n_dcm=2) (default features 32 ≠ 8): warned
    with pytest.warns(UserWarning, match=r"features \(model 32, experiment 8\)"):
        other = batch_analysis_summary(exp, create_model(n_dcm=2), test_data)
    assert other["analysis"].summary["methods"]["dcmnet"]["esp_rmse_median_kcal_mol_e"] == \
        pytest.approx(results["analysis"].summary["methods"]["dcmnet"][
            "esp_rmse_median_kcal_mol_e"])


def test_lr_schedule_and_accumulation_snippets(small_npz, tmp_path):
    """``config.training = TrainingConfig(...)`` and ``run_training(batch_size=1,
    gradient_accumulation_steps=8)``, then the experiment folder of the summary."""
    from dcmnet.compat.analysis_multibatch import batch_analysis_summary
    from dcmnet.training.optim import make_schedule
    from dcmnet.compat.train_runner import run_training
    from dcmnet.compat.training_config import ExperimentConfig, TrainingConfig

    config = ExperimentConfig(name="sched", output_dir=str(tmp_path / "experiments"),
                              data_files=[str(small_npz)])
    config.training = TrainingConfig(
        use_lr_schedule=True,
        lr_schedule_type="cosine",  # or "exponential", "step"
        warmup_epochs=10,
        min_lr_factor=0.01)
    sched = make_schedule(config.training, batches_per_epoch=10)
    lr = config.training.learning_rate
    assert float(sched(0)) == pytest.approx(lr / 100, rel=1e-5)  # warmup: 100 updates
    assert float(sched(100)) == pytest.approx(lr, rel=1e-5)
    end = config.training.num_epochs * 10  # the last update
    assert float(sched(end)) == pytest.approx(0.01 * lr, rel=1e-5)  # floor at the end
    params, loss, exp_dir = run_training(config=config, num_epochs=1, batch_size=1,
                                         num_train=8, num_valid=4,
                                         gradient_accumulation_steps=8,
                                         save_every_n_epochs=1, progress=False,
                                         table_every=0, console=_quiet(), **TINY)
    assert exp_dir == tmp_path / "experiments" / "sched" and np.isfinite(loss)
    saved = json.loads((exp_dir / "config.json").read_text())["training"]
    assert (saved["warmup_epochs"], saved["min_lr_factor"], saved["lr_schedule_type"],
            saved["gradient_accumulation_steps"], saved["batch_size"]) == (10, 0.01, "cosine",
                                                                           8, 1)
    for kind in ("best", "latest", "periodic"):
        assert (exp_dir / "checkpoints" / kind).is_dir()
    rows = _history(exp_dir)
    n_train = len(json.loads((exp_dir / "split.json").read_text())["train"])
    sched2 = make_schedule(ExperimentConfig.load(exp_dir / "config.json").training, n_train)
    updates = (1 * n_train) // 8
    assert float(rows[-1]["lr"]) == pytest.approx(float(sched2(updates - 1)), rel=1e-5)
    batch_analysis_summary(exp_dir)
    for f in ("best_analysis.json", "predictions.csv", "training_history.csv"):
        assert (exp_dir / "analysis" / f).is_file()


def test_train_runner_command_line(small_npz, tmp_path, monkeypatch):
    """``python -m dcmnet.compat.train_runner --name my_model --num-epochs ...
    --gradient-accumulation-steps 4`` (the summary's Quick Start)."""
    monkeypatch.chdir(tmp_path)
    argv = ["dcmnet.compat.train_runner", "--name", "my_model", "--num-epochs", "1",
            "--gradient-accumulation-steps", "4", "--data-files", str(small_npz),
            "--num-train", "8", "--num-valid", "4",
            "--batch-size", "2", "--no-progress", "--table-every", "0",
            *[a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delitem(sys.modules, "dcmnet.compat.train_runner", raising=False)
    with pytest.raises(SystemExit) as ex:
        runpy.run_module("dcmnet.compat.train_runner", run_name="__main__")
    assert ex.value.code == 0
    exp = tmp_path / "experiments" / "my_model"
    cfg = json.loads((exp / "config.json").read_text())
    assert cfg["training"]["gradient_accumulation_steps"] == 4
    assert len(_history(exp)) == 1


def test_reload_snippet():
    import dcmnet.data as data
    import dcmnet.compat.training as training

    importlib.reload(data)
    importlib.reload(training)
    from dcmnet.data import prepare_datasets
    from dcmnet.compat.training import train_model

    assert callable(prepare_datasets) and callable(train_model)
