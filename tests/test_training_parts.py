"""The parts of the training loop: TrainState, the optax EMA, the checkpoint policy, the
reporters' order, and the orbax-managed pruning and temporary-folder cleanup of the store."""
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dcmnet.config import create_default_config
from dcmnet.training.checkpoint import CheckpointStore
from dcmnet.training.loop import CheckpointPolicy
from dcmnet.training.steps import ema_update
from dcmnet.training.reporting import CallbackReporter, row_metrics
from dcmnet.training.state import RunProgress, TrainState


def _state():
    params = {"params": {"w": jnp.arange(3.0), "b": jnp.ones(2)}}
    return TrainState.create(params, optax.adam(1e-3))


def test_train_state_is_a_pytree_with_mapping_access():
    s = _state()
    assert int(s.step) == 0 and s["params"] is s.params
    np.testing.assert_array_equal(s.ema_params["params"]["w"], [0.0, 1.0, 2.0])
    assert s.ema_params["params"]["w"] is not s.params["params"]["w"]  # a copy
    with pytest.raises(KeyError):
        s["epoch"]
    doubled = jax.tree_util.tree_map(lambda x: x * 2, s)
    assert isinstance(doubled, TrainState)
    np.testing.assert_array_equal(doubled.params["params"]["w"], [0.0, 2.0, 4.0])
    assert s.replace(step=jnp.int32(5)).step == 5 and s.step == 0


def test_checkpoint_of_train_state_restores_as_dict_and_back(tmp_path):
    s = jax.device_get(_state())
    with CheckpointStore(tmp_path / "e") as store:
        store.save("latest", 1, s, {"epoch": 1})
        as_dict, _, _ = store.restore("latest", None)
        back, _, _ = store.restore("latest", s)
    assert sorted(as_dict) == ["ema_params", "opt_state", "params", "step"]
    assert isinstance(back, TrainState)
    assert type(back.opt_state[0]) is type(s.opt_state[0])  # optax NamedTuple
    np.testing.assert_array_equal(back.params["params"]["w"], s.params["params"]["w"])


@pytest.mark.parametrize("decay", [0.0, 0.9, 0.99, 0.999])
def test_ema_update_is_the_former_formula_bitwise(decay):
    rng = np.random.default_rng(0)
    ema = {"a": jnp.asarray(rng.normal(size=50), jnp.float32), "f": jnp.ones(3)}
    params = {"a": jnp.asarray(rng.normal(size=50), jnp.float32), "f": jnp.ones(3)}
    d = jnp.float32(decay)
    new = jax.jit(ema_update)(ema, params, d, jnp.bool_(True))
    old = jax.jit(lambda e, p: jax.tree_util.tree_map(
        lambda e, p: jnp.where(e != p, d * e + (1.0 - d) * p, e), e, p))(ema, params)
    np.testing.assert_array_equal(new["a"], old["a"])
    np.testing.assert_array_equal(new["f"], [1.0, 1.0, 1.0])  # equal leaves stay exact
    if decay:
        assert not np.array_equal(new["a"], params["a"])
    held = ema_update(ema, params, d, jnp.bool_(False))  # accumulating: no change
    np.testing.assert_array_equal(held["a"], ema["a"])


def test_checkpoint_policy_kinds_and_meta(tmp_path):
    cfg = create_default_config("p", output_dir=str(tmp_path), save_every_n_epochs=2)
    policy = CheckpointPolicy(None, cfg)
    assert policy.kinds(1, improved=True) == ["best", "latest"]
    assert policy.kinds(2, improved=False) == ["periodic", "latest"]
    assert policy.kinds(4, improved=True) == ["best", "periodic", "latest"]
    prog = RunProgress()
    assert prog.record(1, {"epoch": 1}, 5.0) and not prog.record(2, {"epoch": 2}, 6.0)
    assert prog.record(3, {"epoch": 3}, 4.0)
    meta = prog.meta(3, cfg)
    assert (meta["epoch"], meta["best_valid_loss"], meta["best_epoch"]) == (3, 4.0, 3)
    assert [r["epoch"] for r in meta["history"]] == [1, 2, 3]
    assert meta["config"]["name"] == "p"


class _FakeStore:
    def __init__(self):
        self.saved = []

    def save(self, kind, epoch, state, meta):
        self.saved.append((kind, epoch, meta["epoch"], len(meta["history"])))


def test_checkpoint_policy_holds_back_until_the_interval_and_flushes():
    """best/latest wait for checkpoint_interval_s (periodic epochs write at once); the held
    checkpoints keep their own epoch's meta (history not shared with later epochs)."""
    cfg = create_default_config("p", save_every_n_epochs=3, checkpoint_interval_s=10.0)
    now = [0.0]
    store = _FakeStore()
    policy = CheckpointPolicy(store, cfg, clock=lambda: now[0])
    prog = RunProgress()
    state = _state()
    for epoch, loss in ((1, 5.0), (2, 4.0)):
        now[0] += 1.0
        policy.save(state, epoch, prog.record(epoch, {"epoch": epoch}, loss), prog)
    assert store.saved == []  # 2 s < 10 s
    now[0] += 1.0
    policy.save(state, 3, prog.record(3, {"epoch": 3}, 6.0), prog)  # periodic: all now
    assert store.saved == [("best", 2, 2, 2), ("periodic", 3, 3, 3), ("latest", 3, 3, 3)]
    store.saved.clear()
    now[0] += 11.0  # past the interval: written at once
    policy.save(state, 4, prog.record(4, {"epoch": 4}, 7.0), prog)
    assert store.saved == [("latest", 4, 4, 4)]
    store.saved.clear()
    now[0] += 1.0
    policy.save(state, 5, prog.record(5, {"epoch": 5}, 1.0), prog)
    assert store.saved == []
    policy.flush()
    assert store.saved == [("best", 5, 5, 5), ("latest", 5, 5, 5)]
    policy.flush()  # nothing left
    assert len(store.saved) == 2
    every = CheckpointPolicy(_FakeStore(), create_default_config("q", checkpoint_interval_s=0))
    every.save(state, 1, True, RunProgress())
    assert [k for k, *_ in every.store.saved] == ["best", "latest"]


def test_a_failing_flush_does_not_hide_the_runs_own_error():
    class Broken(_FakeStore):
        def save(self, *a):
            raise OSError("disk full")

    cfg = create_default_config("p", checkpoint_interval_s=1e9)
    policy = CheckpointPolicy(Broken(), cfg)
    policy.save(_state(), 1, True, RunProgress())
    printed = []
    console = type("C", (), {"print": lambda self, m: printed.append(m)})()
    with pytest.raises(ValueError, match="the run's own"):
        with contextlib.ExitStack() as stack:
            stack.push(policy.exit_handler(console))
            raise ValueError("the run's own error")
    assert "disk full" in printed[0]
    assert set(policy._pending) == {"best", "latest"}  # kept: nothing was written
    with pytest.raises(OSError):  # without an error in flight the failure surfaces
        with contextlib.ExitStack() as stack:
            stack.push(policy.exit_handler(console))


def test_callback_reporter_and_row_metrics():
    seen = []
    row = {"epoch": 2, "time_s": 1.5, "lr": 1e-3, "train_loss": 3.0, "valid_loss": 2.0,
           "valid_esp_rmse": 0.7}
    CallbackReporter(lambda e, r: seen.append((e, r))).on_epoch_end(2, row, [row], True)
    assert seen == [(2, row)]
    assert row_metrics(row, "valid") == {"loss": 2.0, "esp_rmse": 0.7}
    assert row_metrics(row, "train") == {"loss": 3.0}


def test_reader_keeps_a_writers_temporary_folder(tmp_path):
    exp = tmp_path / "e"
    with CheckpointStore(exp) as store:
        store.save("latest", 1, {"w": np.ones(2)}, {"epoch": 1})
    in_flight = exp / "checkpoints" / "latest" / "2.orbax-checkpoint-tmp"
    in_flight.mkdir()
    with CheckpointStore(exp) as reader:
        _, meta, step = reader.restore("latest", {"w": np.zeros(2)})
    assert step == 1 and in_flight.is_dir()  # restoring removed nothing
    with CheckpointStore(exp) as writer:  # a writer's orbax manager cleans it up
        writer.save("latest", 2, {"w": np.full(2, 2.0)}, {"epoch": 2})
    assert not in_flight.exists()
    assert sorted(p.name for p in in_flight.parent.iterdir()) == ["1", "2"]


def test_pruned_steps_leave_no_trash(tmp_path):
    with CheckpointStore(tmp_path / "e", keep_latest=1) as store:
        for s in (1, 2, 3):
            store.save("latest", s, {"w": np.full(2, float(s))}, {"epoch": s})
            assert store.steps("latest") == [s]
    names = sorted(p.name for p in (tmp_path / "e" / "checkpoints" / "latest").iterdir())
    assert names == ["3"]


def test_eta_leaves_out_the_first_epoch_that_compiles(monkeypatch):
    """The first epoch compiles the steps: an ETA averaged over it would read many times too
    long (225 min for a 6-minute main job). The ETA uses only the epochs after it."""
    import io

    from rich.console import Console

    from dcmnet.training import reporting

    ends = [20.0, 21.0, 22.0]  # ends of epochs 1 (20 s: compilation), 2 and 3
    monkeypatch.setattr(reporting.time, "perf_counter",
                        lambda: ends.pop(0) if len(ends) > 1 else ends[0])
    out = io.StringIO()
    tcfg = create_default_config("t", num_epochs=10).training
    rep = reporting.EpochReporter(Console(file=out, width=200), False, tcfg, 0, 10, 5, 100)
    rep.bar = type("Bar", (), {"console": Console(file=out, width=200)})()
    m = {"loss": 1.0, "esp_rmse": 2.0}
    for epoch in (1, 2, 3):
        rep.epoch_done(epoch, m, m, 1.0, 1e-3, False)
    lines = out.getvalue().splitlines()
    assert "ETA after the next epoch" in lines[0]
    assert lines[1].endswith("ETA 0.1 min")       # 1 s per epoch × 8 epochs left
    assert lines[2].endswith("ETA 0.1 min")       # (22 − 20) s / 2 epochs × 7 left = 7 s


def test_history_csv_appended_equals_rewritten(tmp_path):
    """The monitor appends a row per epoch (no O(epochs) rewrite) and the file is the one a
    whole rewrite gives; a new column, or a history that does not follow the file (resume),
    rewrites it."""
    from dcmnet.training.monitor import Monitor, read_history_csv, write_history_csv

    mon = Monitor(tmp_path / "exp")
    history = []
    for e in range(1, 5):
        row = {"epoch": e, "time_s": 0.5 * e, "valid_loss": 1.0 / e}
        if e == 4:
            row["lr"] = 1e-3  # new column: rewrite
        history.append(row)
        mon.log_epoch(row, history)
    mon.close()
    write_history_csv(tmp_path / "ref.csv", history)
    got = (tmp_path / "exp" / "training_history.csv").read_text()
    assert got == (tmp_path / "ref.csv").read_text()
    assert [r["epoch"] for r in read_history_csv(tmp_path / "exp" / "training_history.csv")] \
        == [1, 2, 3, 4]
    # a second monitor (resume) rewrites the history it is given, not appends to the file
    mon = Monitor(tmp_path / "exp")
    mon.log_epoch(history[1], history[:2])
    mon.close()
    assert len(read_history_csv(tmp_path / "exp" / "training_history.csv")) == 2
