"""The training system: accumulation equivalence, resume equality (also after SIGKILL),
NaN guard, checkpoints kept, data parallel on two CPU devices, CLI switches both ways."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from rich.console import Console

from conftest import TINY
from dcmnet.training.checkpoint import CheckpointStore
from dcmnet.config import create_default_config
from dcmnet.data.batching import BatchIterator, make_batch
from dcmnet.data.dataset import Dataset
from dcmnet.training.loss import weights_array
from dcmnet.model import create_model
from dcmnet.training.optim import make_optimizer
from dcmnet.training.runner import run_training
from dcmnet.training.loop import TrainingDiverged
from dcmnet.training.steps import build_steps
from dcmnet.training.state import init_state

QUIET = dict(progress=False, table_every=0)
RUN = dict(num_epochs=3, batch_size=4, learning_rate=3e-3, warmup_epochs=1, **TINY)


def _quiet():
    return Console(stderr=True, quiet=True)


def _leaves(params):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(params)]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, small_npz):
    """An uninterrupted 3-epoch run (reference for the resume tests)."""
    out = tmp_path_factory.mktemp("straight")
    params, best, exp = run_training("r", output_dir=str(out), data_files=[str(small_npz)],
                                     console=_quiet(), **QUIET, **RUN)
    state, meta, _ = CheckpointStore(exp).restore("latest", target=None)
    return state, meta, exp


def test_gradient_accumulation_equals_large_batch(small_npz):
    ds = Dataset.load(small_npz)
    k = 4
    cfg1 = create_default_config("a", batch_size=k, gradient_accumulation_steps=1,
                                 use_lr_schedule=False, warmup_epochs=0, **TINY)
    cfgk = create_default_config("b", batch_size=1, gradient_accumulation_steps=k,
                                 use_lr_schedule=False, warmup_epochs=0, **TINY)
    model = create_model(**dataclasses.asdict(cfg1.model))
    A, G = 16, 1024
    idx = [0, 5, 9, 14]
    big = make_batch(ds, idx, k, A, G)
    smalls = [make_batch(ds, [i], 1, A, G) for i in idx]
    w = weights_array(1.0, 0.5, 0.1)
    results = []
    for cfg, batches in ((cfg1, [big]), (cfgk, smalls)):
        tx = make_optimizer(cfg.training, batches_per_epoch=4)
        step, _ = build_steps(model, tx, cfg)
        state = init_state(model, tx, big, 0)
        for _ in range(2):  # two optimizer updates
            for b in batches:
                state, loss, _ = step(state, b, w)
        results.append(state)
    for a, b in zip(_leaves(results[0]["params"]), _leaves(results[1]["params"])):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    for a, b in zip(_leaves(results[0]["ema_params"]), _leaves(results[1]["ema_params"])):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    # and the parameters really moved
    init = init_state(model, make_optimizer(cfg1.training, 4), big, 0)
    assert max(np.abs(a - b).max() for a, b in zip(_leaves(init["params"]),
                                                    _leaves(results[0]["params"]))) > 1e-4


def test_stop_and_resume_equals_uninterrupted(tmp_path, small_npz, straight):
    ref_state, ref_meta, _ = straight
    kw = dict(output_dir=str(tmp_path), data_files=[str(small_npz)], console=_quiet(),
              **QUIET, **RUN)
    run_training("r", stop_after_epochs=1, **kw)
    exp = tmp_path / "r"
    assert CheckpointStore(exp).steps("latest") == [1]
    run_training("r", **kw)
    state, meta, _ = CheckpointStore(exp).restore("latest", target=None)
    assert meta["epoch"] == 3
    for key in ("params", "ema_params", "opt_state"):
        for a, b in zip(_leaves(state[key]), _leaves(ref_state[key])):
            np.testing.assert_array_equal(a, b)  # bitwise on CPU
    assert [r["valid_loss"] for r in meta["history"]] == \
        [r["valid_loss"] for r in ref_meta["history"]]


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, small_npz, straight, capsys):
    """Killed hard in its own process (possibly mid-checkpoint); the same command resumes
    (run in-process through the CLI's main(): the resume is not about the process, and a
    second process start would cost another JAX start-up and compile)."""
    from dcmnet.cli.main import main

    ref_state, _, _ = straight
    cmd = [sys.executable, "-m", "dcmnet", "train", "--name", "r", "--output-dir",
           str(tmp_path), "--data-files", str(small_npz), "--no-progress",
           "--num-epochs", "3", "--batch-size", "4", "--learning-rate", "3e-3",
           "--warmup-epochs", "1", "--checkpoint-interval-s", "0"]  # a checkpoint per epoch
    for k, v in TINY.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = tmp_path / "r" / "checkpoints" / "latest"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and any(p.name.isdigit() for p in latest.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # possibly in the middle of writing a checkpoint
    proc.wait()
    capsys.readouterr()
    rc = main(cmd[3:])
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    assert "resuming from latest checkpoint" in out.out  # normal output: stdout
    state, meta, _ = CheckpointStore(tmp_path / "r").restore("latest", target=None)
    assert meta["epoch"] == 3
    for a, b in zip(_leaves(state["params"]), _leaves(ref_state["params"])):
        np.testing.assert_array_equal(a, b)


def test_sigterm_writes_the_held_checkpoints_then_exits(tmp_path, small_npz):
    """With checkpoints held back (long interval), SIGTERM after epoch 2 still leaves
    latest = best = epoch 2 on disk and ends with SystemExit(143)."""
    import signal

    def term(epoch, row):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc:
        run_training("t", output_dir=str(tmp_path), data_files=[str(small_npz)],
                     console=_quiet(), checkpoint_interval_s=3600, on_epoch_end=term,
                     **QUIET, **{**RUN, "learning_rate": 1e-9, "num_epochs": 4})
    assert exc.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    store = CheckpointStore(tmp_path / "t")
    assert store.steps("latest") == [2]
    assert store.steps("best")[-1] <= 2


def test_nan_loss_stops_with_epoch_and_step(tmp_path, small_npz, monkeypatch):
    orig = BatchIterator.epoch_batches

    def poisoned(self, epoch=0, rng=None):
        for i, b in enumerate(orig(self, epoch, rng)):
            if self.shuffle and epoch == 1 and i == 1:
                b = dict(b)
                b["esp"] = b["esp"] * np.float32("nan")
            yield b

    monkeypatch.setattr(BatchIterator, "epoch_batches", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2"):
        run_training("nan", output_dir=str(tmp_path), data_files=[str(small_npz)],
                     console=_quiet(), **QUIET, **RUN)
    store = CheckpointStore(tmp_path / "nan")
    assert store.steps("latest") == [1] and store.steps("best") == [1]
    state, meta, _ = store.restore("best", target=None)
    assert all(np.isfinite(x).all() for x in _leaves(state["params"]))


def test_periodic_checkpoints_keep_last_k_and_history(tmp_path, small_npz):
    run_training("p", output_dir=str(tmp_path), data_files=[str(small_npz)],
                 console=_quiet(), save_every_n_epochs=1, keep_checkpoints=2, **QUIET,
                 **{**RUN, "num_epochs": 4})
    exp = tmp_path / "p"
    store = CheckpointStore(exp)
    assert store.steps("periodic") == [3, 4]
    assert store.steps("latest")[-1] == 4
    rows = (exp / "training_history.csv").read_text().splitlines()
    header = rows[0].split(",")
    for col in ("epoch", "time_s", "lr", "train_loss", "valid_esp_rmse", "valid_dipole_mae",
                "train_q_std", "valid_charge_mae"):
        assert col in header
    assert len(rows) == 5
    events = list((exp / "tensorboard").glob("events.out.tfevents.*"))
    assert events and b"valid/esp_rmse" in events[0].read_bytes()
    cfg = json.loads((exp / "config.json").read_text())
    assert "dcmnet_version" in cfg and "git_commit" in cfg


def test_cli_switches_both_ways():
    from dcmnet.cli.main import build_parser
    from dcmnet.cli.train import SWITCHES, _overrides

    parser = build_parser()
    for flag, _ in SWITCHES:
        key = flag[2:].replace("-", "_")
        on = _overrides(parser.parse_args(["train", flag]))
        off = _overrides(parser.parse_args(["train", "--no-" + flag[2:]]))
        assert on[key] is True and off[key] is False
        assert key not in _overrides(parser.parse_args(["train"]))
    ov = _overrides(parser.parse_args(
        ["train", "--num-epochs", "7", "--gradient-accumulation-steps", "4", "--esp-w", "2",
         "--lr-schedule-type", "step", "--restart-checkpoint", "x"]))
    assert ov == {"num_epochs": 7, "gradient_accumulation_steps": 4, "esp_w": 2.0,
                  "lr_schedule_type": "step"}
    cfg = create_default_config("c", **ov)
    assert cfg.training.gradient_accumulation_steps == 4


TWO_DEVICES = textwrap.dedent("""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, numpy as np, dataclasses
    from dcmnet.config import create_default_config
    from dcmnet.data.dataset import Dataset
    from dcmnet.data.batching import make_batch
    from dcmnet.training.loss import weights_array
    from dcmnet.model import create_model
    from dcmnet.training.optim import make_optimizer
    from dcmnet.training.parallel import DataParallel
    from dcmnet.training.steps import build_steps
    from dcmnet.training.state import init_state
    assert len(jax.devices()) == 2
    ds = Dataset.load(sys.argv[1])
    cfg = create_default_config("d", batch_size=4, n_dcm=2, features=8, max_degree=1,
                                num_iterations=1, num_basis_functions=8)
    model = create_model(**dataclasses.asdict(cfg.model))
    batches = [make_batch(ds, [i, i + 4, i + 8, i + 12], 4, 16, 1024) for i in range(3)]
    w = weights_array(1.0, 0.1, 0.1)
    out = []
    for parallel in (False, True):
        tx = make_optimizer(cfg.training, 3)
        step, _ = build_steps(model, tx, cfg)
        state = init_state(model, tx, batches[0], 0)
        dp = DataParallel(4) if parallel else None
        if dp: state = dp.put_state(state)
        losses = []
        for b in batches:
            state, loss, _ = step(state, dp.put_batch(b) if dp else b, w)
            losses.append(float(loss))
        if dp:
            assert len(state["params"]["params"]["embed"]["embedding"].sharding.device_set) == 2
        out.append(losses)
    print(json.dumps(out))
""")


def test_two_devices_same_losses(small_npz):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    res = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(small_npz)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    single, multi = json.loads(res.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(single, multi, rtol=1e-5)
    assert single[-1] != single[0]


def test_mlflow_local_store_and_verbose(tmp_path, small_npz, capsys):
    pytest.importorskip("mlflow")
    pytest.importorskip("lovely_jax")
    run_training("m", output_dir=str(tmp_path), data_files=[str(small_npz)],
                 console=Console(stderr=True), mlflow=True, verbose=True, progress=False,
                 table_every=0, **{**RUN, "num_epochs": 1})
    err = capsys.readouterr().err
    assert "charges" in err and "μ=" in err  # lovely-jax summaries of arrays
    store = tmp_path / "mlruns"
    assert store.exists()
    metric_files = [p for p in store.rglob("*") if p.parent.name == "metrics"]
    names = {p.name for p in metric_files}
    assert {"valid_esp_rmse", "train_loss", "lr"} <= names
