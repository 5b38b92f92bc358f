"""Configuration round trip and validation; learning-rate schedules from optax."""
import json

import pytest

from dcmnet.config import ExperimentConfig, TrainingConfig, create_default_config
from dcmnet.errors import ConfigError
from dcmnet.training.optim import make_optimizer, make_schedule, total_updates


def test_round_trip(tmp_path):
    cfg = create_default_config("x", n_dcm=3, num_epochs=7, learning_rate=5e-4,
                                data_files=["a.npz"], use_ema=False)
    p = cfg.save(tmp_path / "c.json", extra={"dcmnet_version": "0", "git_commit": None})
    back = ExperimentConfig.load(p)
    assert back == cfg
    assert back.model.n_dcm == 3 and back.training.num_epochs == 7
    assert back.training.use_ema is False


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'n_dcmm'.*n_dcm"):
        create_default_config("x", n_dcmm=3)
    d = create_default_config("x").to_dict()
    d["training"]["lerning_rate"] = 1
    (tmp_path / "c.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="lerning_rate.*valid keys.*learning_rate"):
        ExperimentConfig.load(tmp_path / "c.json")


def test_invalid_values():
    with pytest.raises(ConfigError, match="lr_schedule_type"):
        create_default_config("x", lr_schedule_type="linear")
    with pytest.raises(ConfigError, match="batch_size"):
        create_default_config("x", batch_size=0)
    with pytest.raises(ConfigError, match="max_degree"):
        create_default_config("x", max_degree=0)


def _cfg(**kw):
    base = dict(num_epochs=10, learning_rate=1e-3, warmup_epochs=2, min_lr_factor=0.1)
    base.update(kw)
    return TrainingConfig(**base)


def test_cosine_schedule_values():
    cfg = _cfg(lr_schedule_type="cosine")
    s = make_schedule(cfg, batches_per_epoch=10)  # 100 updates, 20 warmup
    assert float(s(0)) == pytest.approx(1e-3 / 20)
    assert float(s(20)) == pytest.approx(1e-3)
    assert float(s(100)) == pytest.approx(1e-4)
    mid = 20 + 40  # half way through the decay
    assert float(s(mid)) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4), rel=1e-5)


def test_schedule_counts_updates_not_microbatches():
    a = make_schedule(_cfg(gradient_accumulation_steps=1), batches_per_epoch=10)
    b = make_schedule(_cfg(gradient_accumulation_steps=5), batches_per_epoch=50)
    for t in (0, 7, 20, 55, 100):
        assert float(a(t)) == pytest.approx(float(b(t)))
    assert total_updates(_cfg(gradient_accumulation_steps=5), 50) == 100


def test_exponential_step_constant_floor():
    e = make_schedule(_cfg(lr_schedule_type="exponential", decay_rate=0.5, min_lr_factor=0.01),
                      10)
    assert float(e(20)) == pytest.approx(1e-3)
    assert float(e(100)) == pytest.approx(5e-4, rel=1e-4)  # decay_rate over the run
    st = make_schedule(_cfg(lr_schedule_type="step", step_every_epochs=3, decay_rate=0.1,
                            min_lr_factor=0.01, warmup_epochs=0), 10)
    assert float(st(29)) == pytest.approx(1e-3)
    assert float(st(30)) == pytest.approx(1e-4)
    assert float(st(60)) == pytest.approx(1e-5)
    assert float(st(95)) == pytest.approx(1e-5)  # floor: min_lr_factor
    c = make_schedule(_cfg(use_lr_schedule=False, warmup_epochs=0), 10)
    assert float(c(0)) == float(c(99)) == pytest.approx(1e-3)


def test_optimizer_clipping_switch():
    import jax.numpy as jnp
    import optax
    params = {"w": jnp.ones(3)}
    on = make_optimizer(_cfg(use_grad_clip=True, grad_clip_norm=1.0), 10).init(params)
    off = make_optimizer(_cfg(use_grad_clip=False), 10).init(params)
    assert len(on) == 2 and len(off) == 1  # chain(clip, adam) vs chain(adam)
    acc = make_optimizer(_cfg(gradient_accumulation_steps=4), 10).init(params)
    assert isinstance(acc, optax.MultiStepsState)
