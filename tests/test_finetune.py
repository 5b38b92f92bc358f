"""Fine-tuning (--init-from, --freeze): exact source parameters (first-step loss equals the
source's loss on that batch), frozen groups bitwise unchanged, architecture mismatches
refused naming the setting, new elements warned about, init_from recorded."""
import json

import jax
import numpy as np
import pytest
from rich.console import Console

from conftest import TINY, bundled_subset
from dcmnet.training.checkpoint import CheckpointStore
from dcmnet.errors import ConfigError
from dcmnet.training.runner import run_training

pytestmark = pytest.mark.usefixtures("jax_compile_cache")
QUIET = dict(progress=False, table_every=0)


def _quiet():
    return Console(stderr=True, quiet=True)


def _flat(params):
    return {jax.tree_util.keystr(k): np.asarray(v)
            for k, v in jax.tree_util.tree_flatten_with_path(params)[0]}


def test_first_step_loss_is_the_source_loss(tiny_experiment, small_npz, tmp_path):
    from dcmnet.data.batching import make_batch
    from dcmnet.data.dataset import Dataset
    from dcmnet.training.experiment import load_experiment
    from dcmnet.training.loss import loss_and_metrics, weights_array

    _, model, src_params, _ = load_experiment(tiny_experiment)
    _, loss, exp = run_training("ft", output_dir=str(tmp_path), data_files=[str(small_npz)],
                                init_from=str(tiny_experiment), num_train=12, num_valid=4,
                                num_epochs=1, batch_size=12, console=_quiet(), **QUIET,
                                **TINY)
    cfg = json.loads((exp / "config.json").read_text())
    assert cfg["init_from"] == str(tiny_experiment) and cfg["freeze"] == []
    assert cfg["training_elements"] == [1, 6, 7, 8]
    hist = CheckpointStore(exp).restore("latest", target=None)[1]["history"]
    # one batch per epoch: the epoch's training loss is the loss of the first step, taken
    # with the parameters before the update: the source's
    split = json.loads((exp / "split.json").read_text())
    train = Dataset.load(small_npz).subset(split["train"])
    batch = make_batch(train, list(range(12)), 12, 16, 1024)
    ref, _ = loss_and_metrics(model, src_params, batch, weights_array(1.0, 0.0, 0.0))
    assert hist[0]["train_loss"] == pytest.approx(float(ref), rel=1e-5)
    # and differs from a fresh start's first-step loss
    _, _, exp0 = run_training("scratch", output_dir=str(tmp_path), data_files=[str(small_npz)],
                              num_train=12, num_valid=4, num_epochs=1, batch_size=12,
                              console=_quiet(), **QUIET, **TINY)
    h0 = CheckpointStore(exp0).restore("latest", target=None)[1]["history"]
    assert abs(h0[0]["train_loss"] - hist[0]["train_loss"]) > 1e-3 * hist[0]["train_loss"]


def test_frozen_groups_bitwise_unchanged_and_new_elements_warned(tiny_experiment, small_npz,
                                                                tmp_path):
    from dcmnet.training.experiment import load_experiment

    _, _, src_params, _ = load_experiment(tiny_experiment)
    data = bundled_subset(["water", "methanol", "fluoromethane"], 4)   # F is new
    path = data.save(tmp_path / "withF.npz")
    with pytest.warns(UserWarning, match=r"F \(Z=9\) are absent from the source"):
        _, _, exp = run_training("frozen", output_dir=str(tmp_path), data_files=[str(path)],
                                 init_from=str(tiny_experiment), freeze=["message"],
                                 num_train=8, num_valid=4, num_epochs=2, batch_size=4,
                                 learning_rate=1e-2, console=_quiet(), **QUIET, **TINY)
    src = _flat(src_params)
    for kind in ("latest", "best"):
        state = CheckpointStore(exp).restore(kind, target=None)[0]
        for which in ("params", "ema_params"):
            got = _flat(state[which])
            frozen = [k for k in got if "'message_" in k or "'update_" in k]
            trained = [k for k in got if "'head_" in k or "'embed'" in k]
            assert frozen and trained
            for k in frozen:
                assert np.array_equal(got[k], src[k]), (kind, which, k)
            assert any(not np.array_equal(got[k], src[k]) for k in trained), (kind, which)


def test_architecture_mismatch_refused(tiny_experiment, small_npz, tmp_path):
    with pytest.raises(ConfigError, match=r"features \(8 in the source, 16 here\)"):
        run_training("bad", output_dir=str(tmp_path), data_files=[str(small_npz)],
                     init_from=str(tiny_experiment), num_epochs=1, console=_quiet(), **QUIET,
                     **{**TINY, "features": 16})
    with pytest.raises(ConfigError, match=r"n_dcm \(2 in the source, 3 here\).*"
                                          r"max_atomic_number \(18 in the source, 20 here\)"):
        run_training("bad2", output_dir=str(tmp_path), data_files=[str(small_npz)],
                     init_from=str(tiny_experiment), num_epochs=1, console=_quiet(), **QUIET,
                     **{**TINY, "n_dcm": 3, "max_atomic_number": 20})


def test_freeze_settings_checked():
    from dcmnet.config import create_default_config

    with pytest.raises(ConfigError, match="unknown parameter group.*embedding"):
        create_default_config("x", init_from="somewhere", freeze=["embedding"])
    with pytest.raises(ConfigError, match="freeze needs init_from"):
        create_default_config("x", freeze=["embed"])


def test_freeze_labels_cover_the_groups():
    from dcmnet.model import create_model
    from dcmnet.training.optim import freeze_labels

    model = create_model(**TINY)
    Z = np.array([[8, 1, 1]])
    params = model.init(jax.random.PRNGKey(0), Z, np.random.rand(1, 3, 3), np.ones((1, 3)),
                        np.zeros(1))
    top = sorted(params["params"])
    for groups, frozen in ((["embed"], ["embed"]),
                           (["message"], [t for t in top if t.startswith(("message", "update"))]),
                           (["all-but-head"], [t for t in top if not t.startswith("head")]),
                           (["head"], ["head_a", "head_b"])):
        lab = freeze_labels(groups)(params)["params"]
        got = sorted(t for t in top if set(jax.tree_util.tree_leaves(lab[t])) == {"frozen"})
        assert got == sorted(frozen), groups
        assert all(set(jax.tree_util.tree_leaves(lab[t])) == {"trainable"}
                   for t in top if t not in frozen)


def test_cli_init_from_flags(tiny_experiment, tmp_path):
    from dcmnet.cli.main import build_parser
    from dcmnet.cli.train import _overrides

    args = build_parser().parse_args(["train", "--init-from", str(tiny_experiment),
                                      "--freeze", "embed", "message"])
    o = _overrides(args)
    assert o["init_from"] == str(tiny_experiment) and o["freeze"] == ["embed", "message"]
