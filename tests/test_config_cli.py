"""The config dataclasses are the single source of the train/tune flags; presets."""
import argparse
import dataclasses

import pytest

from dcmnet.cli.main import build_parser, main
from dcmnet.cli.train import _overrides
from dcmnet.config import (PRESETS, ExperimentConfig, ModelConfig, TrainingConfig,
                           apply_overrides, create_default_config, flatten_config)
from dcmnet.errors import ConfigError

CLASSES = (ExperimentConfig, ModelConfig, TrainingConfig)
#: Fields training records instead of reading: no flag.
RECORDED = {"training_elements"}
#: Fields ``dcmnet tune`` sets itself (or has its own flag for).
TUNE_OWN = {"name", "output_dir", "num_epochs", "data_files", "preset"}


def _fields():
    return [f for cls in CLASSES for f in dataclasses.fields(cls)
            if f.name not in ("model", "training")]


def _sub(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _by_dest(parser) -> dict:
    return {a.dest: a for a in parser._actions if a.option_strings}


def _expected_default(f) -> str:
    d = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(d, bool):
        return "on" if d else "off"
    if d is None or d == []:
        return f.metadata["default_text"]
    return str(d)


@pytest.mark.parametrize("command, own", [("train", set()), ("tune", TUNE_OWN)])
def test_every_field_has_its_flag(command, own):
    actions = _by_dest(_sub(command))
    for f in _fields():
        if f.name in RECORDED:
            assert f.name not in actions
            continue
        if f.name in own:
            continue
        assert f.name in actions, f"{command}: no flag for {f.name}"
        a = actions[f.name]
        assert "--" + f.name.replace("_", "-") in a.option_strings
        assert a.default is None                     # only given flags override
        assert f.metadata.get("help"), f.name
        if isinstance(f.default, bool):
            assert "--no-" + f.name.replace("_", "-") in a.option_strings
    assert "--step-every-epochs" in _by_dest(_sub(command))["step_every_epochs"].option_strings


def test_help_shows_the_dataclass_defaults_and_units():
    p = _sub("train")
    actions = _by_dest(p)
    text = " ".join(p.format_help().split())
    for f in _fields():
        if f.name in RECORDED:
            continue
        want = f"(default: {_expected_default(f)})"
        assert want.replace("%", "%%") in actions[f.name].help, (f.name, actions[f.name].help)
        assert want in text, f.name
        if f.metadata.get("unit"):
            assert f"[{f.metadata['unit']}]" in actions[f.name].help
    assert "(default: 660)" in actions["num_epochs"].help
    assert "(default: 0.01)" in actions["learning_rate"].help
    assert "[Å]" in actions["cutoff"].help
    for title in ("experiment settings", "model settings", "training settings",
                  "run options"):
        assert title in text


def test_existing_flag_names_and_switches_both_ways():
    p = build_parser()
    ov = _overrides(p.parse_args(
        ["train", "--name", "n", "--output-dir", "o", "--data-files", "a.npz", "b.npz",
         "--n-dcm", "3", "--cutoff", "5", "--num-train", "10", "--esp-w", "2",
         "--no-use-ema", "--use-grad-clip", "--no-data-parallel", "--step-every-epochs", "4",
         "--freeze", "embed", "head", "--init-from", "x"]))
    assert ov == {"output_dir": "o", "data_files": ["a.npz", "b.npz"], "n_dcm": 3,
                  "cutoff": 5.0, "num_train": 10, "esp_w": 2.0, "use_ema": False,
                  "use_grad_clip": True, "data_parallel": False, "step_every_epochs": 4,
                  "freeze": ["embed", "head"], "init_from": "x"}
    cfg = create_default_config("n", **ov)
    assert cfg.training.step_every_epochs == 4 and cfg.model.cutoff == 5.0
    assert _overrides(p.parse_args(["train"])) == {}


def test_preset_then_explicit_flag_wins():
    n = PRESETS["accurate"]["num_epochs"]
    assert n != TrainingConfig().num_epochs
    p = build_parser()
    assert create_default_config("a", **_overrides(
        p.parse_args(["train", "--preset", "accurate"]))).training.num_epochs == n
    ov = _overrides(p.parse_args(["train", "--preset", "accurate", "--num-epochs", "7"]))
    cfg = create_default_config("a", **ov)
    assert cfg.training.num_epochs == 7 and cfg.preset == "accurate"
    fast = create_default_config("f", preset="fast")
    assert fast.training == TrainingConfig(**PRESETS["fast"]) and fast.model == ModelConfig()


def test_a_recorded_preset_is_not_applied_twice(tmp_path):
    cfg = create_default_config("a", preset="accurate", num_epochs=50)
    back = ExperimentConfig.load(cfg.save(tmp_path / "c.json"))
    assert back.preset == "accurate" and back.training.num_epochs == 50
    again = apply_overrides(back, preset="accurate")
    assert again.training.num_epochs == 50          # the file's value stays
    assert back.training.num_epochs == 50           # base untouched
    other = apply_overrides(create_default_config("b"), preset="accurate")
    assert other.training.num_epochs == PRESETS["accurate"]["num_epochs"]


def test_unknown_preset_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown preset 'slow'; choose one of fast, accurate"):
        create_default_config("x", preset="slow")
    assert main(["train", "--name", "x", "--output-dir", str(tmp_path), "--preset", "slow",
                 "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown preset 'slow'" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_one_flat_view_for_logging():
    cfg = create_default_config("x", n_dcm=3, num_epochs=9)
    flat = flatten_config(cfg)
    assert flat["name"] == "x" and flat["model.n_dcm"] == 3
    assert flat["training.num_epochs"] == 9 and "model" not in flat
    n = sum(len(dataclasses.fields(c)) for c in CLASSES) - 2
    assert len(flat) == n
    from dcmnet.training.reporting import _flat_config
    assert _flat_config(cfg) == flat


def test_tune_fixes_the_flags_given():
    from dcmnet.cli.tune import _fixed

    p = build_parser()
    args = p.parse_args(["tune", "--study", "s", "--no-use-ema", "--n-dcm", "3",
                         "--step-every-epochs", "5"])
    assert _fixed(args) == {"use_ema": False, "n_dcm": 3, "step_every_epochs": 5}
    assert args.num_epochs == 30                     # tune's own default, not the config's
    with pytest.raises(SystemExit):
        p.parse_args(["tune", "--study", "s", "--preset", "fast"])
