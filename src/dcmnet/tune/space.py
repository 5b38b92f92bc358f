"""The search space of ``dcmnet tune``: what can be tuned (:data:`TUNABLE`), the default
space, and reading a space from a dict or a JSON/YAML file (:func:`parse_search_space`)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from dcmnet.config import ModelConfig, TrainingConfig, create_default_config
from dcmnet.errors import ConfigError, OptionalDependencyError

#: Settings that are not hyperparameters of one trial (fixed for the whole study instead).
NOT_TUNABLE = ("num_epochs", "save_every_n_epochs", "keep_checkpoints", "esp_chunk_size",
               "data_parallel", "max_atomic_number")

#: Tunable settings: name → (section, Python type), from ModelConfig and TrainingConfig.
TUNABLE: dict[str, tuple[str, type]] = {
    f.name: (section, type(f.default))
    for section, cls in (("model", ModelConfig), ("training", TrainingConfig))
    for f in dataclasses.fields(cls) if f.name not in NOT_TUNABLE
}

#: The default search space (written out, with comments, in ``examples/search_space.json``).
#: Loss weights are relative to ``esp_w`` = 1 (the objective is the ESP RMSE alone).
DEFAULT_SEARCH_SPACE: dict[str, Any] = {
    "n_dcm": {"low": 1, "high": 4},
    "features": [16, 32, 64],
    "num_iterations": {"low": 1, "high": 3},
    "max_degree": {"low": 1, "high": 2},
    "cutoff": {"low": 3.0, "high": 6.0},
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "esp_w": 1.0,
    "chg_w": [0.0, 1.0, 10.0],
    "dipole_w": [0.0, 0.1, 1.0],
    "batch_size": [8, 16, 32],
    "gradient_accumulation_steps": [1, 2],
}

#: Short column names in the results table.
SHORT = {"n_dcm": "n_dcm", "features": "feat", "num_iterations": "iter", "max_degree": "deg",
         "cutoff": "cutoff", "learning_rate": "lr", "esp_w": "esp_w", "chg_w": "chg_w",
         "dipole_w": "dip_w", "batch_size": "batch", "gradient_accumulation_steps": "accum",
         "num_basis_functions": "basis", "max_displacement": "max_disp"}

SPEC_KEYS = {"type", "low", "high", "log", "step", "choices", "value"}
KINDS = ("int", "float", "categorical", "fixed")


def _fmt(v) -> str:
    """A setting's value as shown in the trial lines and the results table."""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


@dataclasses.dataclass
class ParamSpec:
    """One setting of the search space.

    Attributes:
        name: a key of :data:`TUNABLE`.
        kind: ``int`` / ``float`` (a range ``low``..``high``, both included, optionally
            ``log`` or with a ``step``), ``categorical`` (``choices``) or ``fixed``
            (``value``, the same in every trial).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list | None = None
    value: Any = None

    def suggest(self, trial) -> Any:
        """The value of this setting for an Optuna ``trial`` (fixed values are not sampled)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high),
                                   step=self.step, log=self.log)

    def to_json(self) -> Any:
        """The canonical JSON form (what :func:`parse_search_space` reads back)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return list(self.choices)
        d: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        return d


@dataclasses.dataclass
class SearchSpace:
    """An ordered mapping of setting name → :class:`ParamSpec`."""

    params: dict[str, ParamSpec]

    @property
    def searched(self) -> list[str]:
        """Names that vary between trials."""
        return [n for n, p in self.params.items() if p.kind != "fixed"]

    @property
    def fixed(self) -> dict[str, Any]:
        """Settings the space fixes for every trial."""
        return {n: p.value for n, p in self.params.items() if p.kind == "fixed"}

    def suggest(self, trial) -> dict[str, Any]:
        """All settings of one trial (sampled and fixed)."""
        return {n: p.suggest(trial) for n, p in self.params.items()}

    def without(self, names) -> "SearchSpace":
        """A copy without the given names (settings fixed elsewhere, e.g. by a flag)."""
        return SearchSpace({n: p for n, p in self.params.items() if n not in set(names)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict in the file format."""
        return {n: p.to_json() for n, p in self.params.items()}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_value(name: str, typ: type, v, where: str) -> Any:
    """Convert one value to the setting's type and run the config's own validation."""
    what = f"{where}: {name}"
    if typ is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{what}: {v!r} is not true/false.")
    elif typ is int:
        if not _is_number(v) or float(v) != int(v):
            raise ConfigError(f"{what}: {v!r} is not a whole number.")
        v = int(v)
    elif typ is float:
        if not _is_number(v):
            raise ConfigError(f"{what}: {v!r} is not a number.")
        v = float(v)
        if not math.isfinite(v):
            raise ConfigError(f"{what}: {v!r} is not a finite number.")
    elif typ is str:
        if not isinstance(v, str):
            raise ConfigError(f"{what}: {v!r} is not a string.")
    try:
        create_default_config("search_space_check", **{name: v})
    except ConfigError as exc:
        raise ConfigError(f"{what}: value {v!r} is not allowed ({exc})") from None
    return v


def _parse_param(name: str, spec, where: str) -> ParamSpec:
    section, typ = TUNABLE[name]
    if isinstance(spec, list):
        spec = {"choices": spec}
    elif not isinstance(spec, dict):
        spec = {"value": spec}
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: {name}: unknown key(s) {', '.join(unknown)}; a parameter "
                          "is {\"low\": .., \"high\": .., \"log\": true|false, \"step\": ..}, "
                          "{\"choices\": [..]}, {\"value\": ..}, a list or a single value.")
    kind = spec.get("type")
    if kind is None:
        if "choices" in spec:
            kind = "categorical"
        elif "value" in spec:
            kind = "fixed"
        elif "low" in spec or "high" in spec:
            kind = "int" if typ is int else "float"
        else:
            raise ConfigError(f"{where}: {name}: give low/high, choices or value.")
    if kind not in KINDS:
        raise ConfigError(f"{where}: {name}: type {kind!r}; choose one of {', '.join(KINDS)}.")
    present = {k for k in spec if k != "type"}
    allowed = {"int": {"low", "high", "log", "step"}, "float": {"low", "high", "log", "step"},
               "categorical": {"choices"}, "fixed": {"value"}}[kind]
    if present - allowed:
        raise ConfigError(f"{where}: {name}: {', '.join(sorted(present - allowed))} make(s) no "
                          f"sense for a {kind} parameter.")

    if kind == "fixed":
        return ParamSpec(name, "fixed", value=_check_value(name, typ, spec["value"], where))
    if kind == "categorical":
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {name}: choices must be a non-empty list.")
        choices = [_check_value(name, typ, c, where) for c in choices]
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: {name}: choices {choices} contain duplicates.")
        if len(choices) == 1:
            return ParamSpec(name, "fixed", value=choices[0])
        return ParamSpec(name, "categorical", choices=choices)

    # a range
    if typ not in (int, float):
        raise ConfigError(f"{where}: {name} is a {typ.__name__} setting; give a list of "
                          "choices or a single value, not a range.")
    if kind == "int" and typ is float:
        typ_range = int
    elif kind == "float" and typ is int:
        raise ConfigError(f"{where}: {name} takes whole numbers; use an int range or choices.")
    else:
        typ_range = typ
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: {name}: a range needs both low and high.")
    low = _check_value(name, typ_range, spec["low"], where)
    high = _check_value(name, typ_range, spec["high"], where)
    if low > high:
        raise ConfigError(f"{where}: {name}: low {low} is above high {high}.")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: {name}: log must be true or false (got {log!r}).")
    if log and low <= 0:
        raise ConfigError(f"{where}: {name}: a log range needs low > 0 (got {low}).")
    step = spec.get("step")
    if step is not None:
        if not _is_number(step) or step <= 0:
            raise ConfigError(f"{where}: {name}: step must be a number > 0 (got {step!r}).")
        if log and (kind == "float" or step != 1):
            raise ConfigError(f"{where}: {name}: log and step cannot be combined.")
        if kind == "int":
            if float(step) != int(step):
                raise ConfigError(f"{where}: {name}: an int range needs a whole step.")
            step = int(step)
        else:
            step = float(step)
    if low == high:
        return ParamSpec(name, "fixed", value=low)
    return ParamSpec(name, kind, low=low, high=high, log=log, step=step)


def parse_search_space(space: dict, where: str = "search space") -> SearchSpace:
    """Read a search space from its dict form.

    Each key is a setting of :data:`TUNABLE` (a ModelConfig or TrainingConfig field except
    ``num_epochs`` and the checkpoint/technical ones); each value is one of

    * a range ``{"low": 1e-4, "high": 1e-2, "log": true}`` or ``{"low": 1, "high": 4,
      "step": 1}`` (int for integer settings, float otherwise; ``"type": "int"`` forces
      an integer range of a float setting);
    * choices: a list ``[16, 32, 64]`` or ``{"choices": [...]}``;
    * a fixed value: ``1.0`` or ``{"value": 1.0}``.

    Keys that start with ``_`` are comments and ignored. Every bound and choice is checked
    with the config's own validation (e.g. ``n_dcm`` ≥ 1, ``max_degree`` ≥ 1).

    Raises:
        ConfigError: not a mapping, an unknown setting (the message lists the valid ones),
            an unknown key in a parameter, low > high, a log range with low ≤ 0, a
            non-integer bound of an integer setting, empty or duplicate choices, or a value
            the config refuses.
    """
    if not isinstance(space, dict):
        raise ConfigError(f"{where}: expected a mapping of setting name to range, got "
                          f"{type(space).__name__}.")
    params = {}
    for name, spec in space.items():
        if str(name).startswith("_"):
            continue
        if name not in TUNABLE:
            hint = (" (set it for all trials with its flag, e.g. --num-epochs)"
                    if name in NOT_TUNABLE or name in ("data_files", "num_train", "num_valid",
                                                       "random_seed") else "")
            raise ConfigError(f"{where}: unknown parameter {name!r}{hint}; tunable parameters "
                              f"are {', '.join(sorted(TUNABLE))}.")
        params[name] = _parse_param(name, spec, where)
    if not params:
        raise ConfigError(f"{where}: no parameters given.")
    return SearchSpace(params)


def default_search_space() -> SearchSpace:
    """The parsed :data:`DEFAULT_SEARCH_SPACE`."""
    return parse_search_space(DEFAULT_SEARCH_SPACE, where="default search space")


def load_search_space(path) -> SearchSpace:
    """Read a search-space file: ``.json``, or ``.yaml``/``.yml`` when PyYAML is installed.

    Raises:
        ConfigError: missing file, bad JSON/YAML, or an invalid space (see
            :func:`parse_search_space`).
        OptionalDependencyError: a YAML file without PyYAML installed.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: search-space file not found.")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise OptionalDependencyError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the "
                "search space as JSON.") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc}).") from exc
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}).") from exc
    else:
        raise ConfigError(f"{path}: search space must be a .json or .yaml file.")
    return parse_search_space(data, where=str(path))
