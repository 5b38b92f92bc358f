"""Tests of dcmnet.training.checkpoint: orbax-backed experiment checkpoints."""
from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dcmnet.training.checkpoint import CheckpointStore, CheckpointWarning
from dcmnet.training.checkpoint_load import load_params, resolve_checkpoint
from dcmnet.errors import CheckpointError


def make_state(seed: int = 0, steps: int = 1):
    """A training state like the trainer's: params, optax adam state, EMA, RNG, counter."""
    key = jax.random.PRNGKey(seed)
    k1, k2 = jax.random.split(key)
    params = {
        "params": {
            "Dense_0": {"kernel": jax.random.normal(k1, (3, 4)), "bias": jnp.zeros(4)},
            "Embed_0": {"embedding": jax.random.normal(k2, (5, 2))},
        }
    }
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    for _ in range(steps):
        grads = jax.tree.map(jnp.ones_like, params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    rng = np.random.RandomState(seed).get_state()[1]  # uint32 array (624,)
    return {
        "params": params,
        "opt_state": opt_state,
        "ema_params": jax.tree.map(lambda x: 0.5 * x, params),
        "rng_state": rng,
        "data_rng": np.array([seed, 7, 11], dtype=np.int64),
        "epoch": 3 + seed,
    }


def assert_tree_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


META = {"epoch": 3, "best_valid_loss": 0.125, "config": {"model": {"features": 32}, "lr": [1e-3]}}


@pytest.fixture
def exp(tmp_path) -> Path:
    return tmp_path / "experiments" / "run"


def test_round_trip_with_target(exp):
    state = make_state(seed=1, steps=2)
    with CheckpointStore(exp) as store:
        path = store.save("latest", 4, state, META)
        assert path == exp / "checkpoints" / "latest" / "4"
        assert path.is_dir()
        assert store.steps("latest") == [4]
        target = make_state(seed=0, steps=0)  # fresh initialisation, different values
        restored, meta, step = store.restore("latest", target)
    assert step == 4
    assert meta == META
    assert_tree_equal(restored, state)
    # optax NamedTuples and Python ints survive when a target is given
    adam = restored["opt_state"][0]
    assert type(adam) is type(state["opt_state"][0])
    assert int(adam.count) == 2
    assert isinstance(restored["epoch"], int) and restored["epoch"] == 4
    assert restored["rng_state"].dtype == np.uint32
    np.testing.assert_array_equal(restored["rng_state"], state["rng_state"])


def test_meta_json_conversion_and_non_finite(exp):
    meta = {"best_valid_loss": float("inf"), "rmse": np.float32(0.5), "n": np.int64(3),
            "path": Path("a/b"), "vec": np.arange(3)}
    with CheckpointStore(exp) as store:
        store.save("best", 0, {"w": np.ones(2)}, meta)
        _, got, _ = store.restore("best", {"w": np.zeros(2)})
    assert got == {"best_valid_loss": float("inf"), "rmse": 0.5, "n": 3, "path": "a/b",
                   "vec": [0, 1, 2]}
    with CheckpointStore(exp) as store, pytest.raises(TypeError, match="JSON"):
        store.save("best", 1, {"w": np.ones(2)}, {"bad": object()})


def test_unknown_kind(exp):
    with CheckpointStore(exp) as store:
        with pytest.raises(ValueError, match="unknown checkpoint kind"):
            store.save("final", 1, {"w": np.ones(2)}, {})
        with pytest.raises(ValueError):
            store.steps("final")
        with pytest.raises(ValueError):
            store.restore("final", None)
    with pytest.raises(ValueError):
        CheckpointStore(exp, keep_latest=0)


def test_keep_k_pruning(exp):
    with CheckpointStore(exp, keep_periodic=2, keep_latest=3) as store:
        for s in range(1, 6):
            store.save("periodic", s * 10, {"w": np.full(3, s)}, {"epoch": s})
            store.save("latest", s, {"w": np.full(3, s)}, {"epoch": s})
            store.save("best", s, {"w": np.full(3, s)}, {"epoch": s})
        assert store.steps("periodic") == [40, 50]
        assert store.steps("latest") == [3, 4, 5]
        assert store.steps("best") == [5]
        state, meta, step = store.restore("periodic", {"w": np.zeros(3, dtype=np.int64)})
        assert step == 50 and meta == {"epoch": 5}
        np.testing.assert_array_equal(state["w"], [5, 5, 5])
        # an older step explicitly
        state, meta, step = store.restore("periodic", {"w": np.zeros(3, dtype=np.int64)}, step=40)
        assert step == 40 and meta == {"epoch": 4}
        with pytest.raises(CheckpointError, match="available steps"):
            store.restore("periodic", None, step=10)
    # only step folders are left behind (no temporary or trash folders)
    names = sorted(p.name for p in (exp / "checkpoints" / "periodic").iterdir())
    assert names == ["40", "50"]


def test_best_keeps_the_one_just_saved_even_if_lower(exp):
    with CheckpointStore(exp) as store:
        store.save("best", 10, {"w": np.ones(2)}, {"epoch": 10})
        store.save("best", 4, {"w": np.zeros(2)}, {"epoch": 4})
        assert store.steps("best") == [4]


def test_overwrite_same_step(exp):
    with CheckpointStore(exp) as store:
        store.save("latest", 5, {"w": np.ones(3)}, {"v": 1})
        store.save("latest", 5, {"w": np.full(3, 2.0)}, {"v": 2})
        assert store.steps("latest") == [5]
        state, meta, _ = store.restore("latest", {"w": np.zeros(3)})
        assert meta == {"v": 2}
        np.testing.assert_array_equal(state["w"], [2.0, 2.0, 2.0])
        with pytest.raises(CheckpointError, match="force=True"):
            store.save("latest", 5, {"w": np.ones(3)}, {"v": 3}, force=False)
    names = sorted(p.name for p in (exp / "checkpoints" / "latest").iterdir())
    assert names == ["5"]


def _save_two(exp):
    with CheckpointStore(exp) as store:
        store.save("latest", 1, {"w": np.ones(3)}, {"epoch": 1})
        store.save("latest", 2, {"w": np.full(3, 2.0)}, {"epoch": 2})
    return exp / "checkpoints" / "latest"


def _delete_state_files(step_dir: Path):
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.name != "commit_success.txt":
            f.unlink()


def _truncate_all(step_dir: Path):
    for f in step_dir.rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _truncate_meta(step_dir: Path):
    f = step_dir / "meta" / "metadata"
    f.write_bytes(f.read_bytes()[:3])


def _empty_folder(step_dir: Path):
    import shutil

    shutil.rmtree(step_dir)
    step_dir.mkdir()


@pytest.mark.parametrize("damage", [_delete_state_files, _truncate_all, _truncate_meta, _empty_folder])
def test_fallback_to_older_step(exp, damage):
    kind_dir = _save_two(exp)
    damage(kind_dir / "2")
    with CheckpointStore(exp) as store:
        assert store.steps("latest") == [1, 2]
        with pytest.warns(CheckpointWarning, match=str(kind_dir / "2")):
            state, meta, step = store.restore("latest", {"w": np.zeros(3)})
        assert step == 1 and meta == {"epoch": 1}
        np.testing.assert_array_equal(state["w"], [1.0, 1.0, 1.0])
        # asking for the damaged step explicitly is an error, not a silent fallback
        with pytest.raises(CheckpointError, match=str(kind_dir / "2")):
            store.restore("latest", {"w": np.zeros(3)}, step=2)


def test_all_corrupt_raises(exp):
    kind_dir = _save_two(exp)
    _delete_state_files(kind_dir / "1")
    _truncate_meta(kind_dir / "2")
    with CheckpointStore(exp) as store:
        with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError) as info:
            store.restore("latest", {"w": np.zeros(3)})
    msg = str(info.value)
    assert "no usable checkpoint" in msg and str(kind_dir) in msg
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_params(exp)


def test_no_checkpoint_in_kind(exp):
    with CheckpointStore(exp) as store:
        with pytest.raises(CheckpointError, match="no checkpoint found in"):
            store.restore("best", None)
        assert store.steps("best") == []
    assert not exp.exists()  # restoring/listing creates nothing


def test_partial_save_left_by_killed_process(exp):
    kind_dir = _save_two(exp)
    # what orbax leaves when the process is killed mid-save
    tmp = kind_dir / "3.orbax-checkpoint-tmp"
    (tmp / "state.orbax-checkpoint-tmp").mkdir(parents=True)
    (tmp / "_CHECKPOINT_METADATA").write_text("{")
    (kind_dir / "4.orbax-checkpoint-tmp-1712345678").mkdir()
    with CheckpointStore(exp) as store:
        assert store.steps("latest") == [1, 2]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning: the partial save is not a step
            _, meta, step = store.restore("latest", {"w": np.zeros(3)})
        assert step == 2 and meta == {"epoch": 2}
        # the same step can be saved again later
        store.save("latest", 3, {"w": np.full(3, 3.0)}, {"epoch": 3})
        assert store.steps("latest") == [2, 3]
        _, meta, step = store.restore("latest", {"w": np.zeros(3)})
        assert step == 3 and meta == {"epoch": 3}
    assert not tmp.exists()


def test_interrupted_overwrite_is_recovered(exp):
    kind_dir = _save_two(exp)
    # a writer killed while replacing step 2: the old folder was moved aside
    (kind_dir / "2").rename(kind_dir / "2.dcmnet-replaced")
    (kind_dir / "1").rename(kind_dir / "1.dcmnet-deleting")
    (kind_dir / "2.orbax-checkpoint-tmp" / "state.orbax-checkpoint-tmp").mkdir(parents=True)
    with CheckpointStore(exp, keep_latest=5) as store:
        assert store.steps("latest") == []
        store.save("latest", 3, {"w": np.full(3, 3.0)}, {"epoch": 3})
        assert store.steps("latest") == [2, 3]
        _, meta, _ = store.restore("latest", {"w": np.zeros(3)}, step=2)
        assert meta == {"epoch": 2}
    assert sorted(p.name for p in kind_dir.iterdir()) == ["2", "3"]


def test_target_mismatch_is_reported_without_fallback(exp):
    _save_two(exp)
    with CheckpointStore(exp) as store:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(CheckpointError, match="does not match"):
                store.restore("latest", {"w": np.zeros(3), "extra": np.zeros(1)})
            with pytest.raises(CheckpointError, match="does not match"):
                store.restore("latest", {"w": np.zeros(4)})
            with pytest.raises(CheckpointError, match="does not match"):
                store.restore("latest", {"w": jnp.zeros(4)})
            with pytest.raises(CheckpointError, match="does not match"):
                store.restore("latest", {"w": 0.0})


def test_saving_below_newer_steps_warns_and_keeps_the_new_step(exp):
    _save_two(exp)  # latest: 1, 2
    with CheckpointStore(exp, keep_latest=2) as store:
        with pytest.warns(CheckpointWarning, match="newer than the step 0"):
            store.save("latest", 0, {"w": np.zeros(3)}, {"epoch": 0})
        assert store.steps("latest") == [0, 2]


def test_resolve_checkpoint_forms(exp, tmp_path):
    state = {"w": np.ones(2)}
    with CheckpointStore(exp) as store:
        store.save("latest", 3, state, {})
        store.save("latest", 7, state, {})
        store.save("best", 5, state, {})
    ck = exp / "checkpoints"
    assert resolve_checkpoint(exp) == (exp, "latest", None)
    assert resolve_checkpoint(ck) == (exp, "latest", None)
    assert resolve_checkpoint(ck / "latest") == (exp, "latest", None)
    assert resolve_checkpoint(ck / "best") == (exp, "best", None)
    assert resolve_checkpoint(ck / "latest" / "3") == (exp, "latest", 3)
    assert resolve_checkpoint(str(ck / "best" / "5")) == (exp, "best", 5)

    missing = tmp_path / "experiments" / "nope"
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint(missing)
    msg = str(info.value)
    assert "no checkpoint found under" in msg and str(missing) in msg
    assert "experiments/NAME" in msg and "experiments/NAME/checkpoints/latest" in msg

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found under .*empty"):
        resolve_checkpoint(empty)
    with pytest.raises(CheckpointError, match="no checkpoint found under .*periodic"):
        (ck / "periodic").mkdir()
        resolve_checkpoint(ck / "periodic")


def test_experiment_without_latest_uses_best(exp):
    with CheckpointStore(exp) as store:
        store.save("best", 9, {"w": np.ones(2)}, {"epoch": 9})
    assert resolve_checkpoint(exp) == (exp, "best", None)


def test_relative_paths_and_load_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = make_state(seed=2, steps=1)
    with CheckpointStore("experiments/run") as store:
        path = store.save("latest", 1, state, META)
        store.save("best", 1, state, META)
        assert path.is_absolute()
        assert store.exp_dir == tmp_path / "experiments" / "run"
    assert (tmp_path / "experiments" / "run" / "checkpoints" / "latest" / "1").is_dir()

    exp_dir, kind, step = resolve_checkpoint("experiments/run/checkpoints/best/1")
    assert exp_dir == tmp_path / "experiments" / "run" and (kind, step) == ("best", 1)

    # without a target: plain numpy arrays in dicts/lists
    loaded, meta = load_params("experiments/run")
    assert meta == META
    leaves = jax.tree.leaves(loaded)
    assert all(isinstance(x, (np.ndarray, int, float)) for x in leaves)
    np.testing.assert_array_equal(
        loaded["params"]["params"]["Dense_0"]["kernel"],
        np.asarray(state["params"]["params"]["Dense_0"]["kernel"]),
    )
    assert isinstance(loaded["opt_state"], list)
    assert int(loaded["opt_state"][0]["count"]) == 1
    assert loaded["epoch"] == state["epoch"]

    # with a target: the target's structure (NamedTuples included)
    loaded, _ = load_params("experiments/run/checkpoints/latest", target=make_state(seed=0, steps=0))
    assert_tree_equal(loaded, state)
