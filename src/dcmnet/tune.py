"""Hyperparameter search with Optuna (optional extra ``dcmnet[tune]``).

``run_study("s1", n_trials=20, data_files=["data.npz"])`` is the Python twin of
``dcmnet tune --study s1 --n-trials 20 --data-files data.npz``. Each trial is an ordinary
experiment folder ``<study_dir>/trials/trial_<number>/`` trained by
:func:`dcmnet.runner.run_training`; its objective is the validation ESP RMSE in
kcal/(mol·e) of the epoch with the lowest validation loss (the ``best`` checkpoint).
Every epoch reports the validation ESP RMSE to Optuna, whose median pruner stops trials that
are worse than the median of earlier trials at the same epoch.

The study lives in ``<study_dir>/study.db`` (SQLite; or any Optuna RDB URL via
``storage``), so an interrupted search resumes with the same command and several processes
or machines can work on one study. ``n_trials`` counts finished (complete + pruned) trials
of the whole study: a resumed run only runs the missing ones. A trial whose process died
(``kill -9``, a lost node) is recognised by its stopped heartbeat, marked FAIL and queued
again with the same parameters.

Search space: a JSON (or YAML) mapping of setting name to a range, a list of choices or a
fixed value; see :func:`parse_search_space` and ``examples/search_space.json``.

Files written to the study folder: ``study.db``, ``study.json`` (name, space, fixed
settings), ``trials.csv`` (all trials), ``best_config.json`` (``dcmnet train --config``),
``optimization_history.png``, ``intermediate_values.png``, ``param_importances.png``.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from dcmnet.config import (ExperimentConfig, ModelConfig, TrainingConfig,
                           create_default_config, provenance)
from dcmnet.errors import ConfigError, OptionalDependencyError

__all__ = [
    "TUNABLE", "DEFAULT_SEARCH_SPACE", "ParamSpec", "SearchSpace", "parse_search_space",
    "load_search_space", "default_search_space", "open_study", "count_finished",
    "make_objective", "run_study", "StudyResult", "trial_rows", "results_table",
    "write_results_csv", "best_config", "write_best_config", "write_study_plots",
    "summarize_study",
]

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


def _optuna():
    """Import Optuna or raise :class:`OptionalDependencyError` with the install line."""
    try:
        import optuna
    except ImportError as exc:
        raise OptionalDependencyError(
            "dcmnet tune needs Optuna: pip install optuna (or the extra: pip install "
            "'dcmnet[tune]')."
        ) from exc
    return optuna


# --------------------------------------------------------------------------- search space

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


# --------------------------------------------------------------------------- study

def _storage_url(study_dir: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(Path(study_dir) / 'study.db').resolve()}"


def open_study(study_name: str, study_dir, storage: str | None = None, *,
               heartbeat_interval: int = 30, grace_period: int | None = None,
               prune: bool = True, pruner_startup_trials: int = 5,
               pruner_warmup_epochs: int = 0, seed: int | None = None):
    """Create or load the Optuna study (direction minimize) with heartbeat and median pruner.

    Args:
        study_name: name of the study inside the storage.
        study_dir: folder of ``study.db`` (used when ``storage`` is None).
        storage: an Optuna RDB URL (``sqlite:///path.db``, ``postgresql://...``) shared by
            several machines; default ``sqlite:///<study_dir>/study.db``.
        heartbeat_interval: seconds between a running trial's heartbeats.
        grace_period: seconds without a heartbeat after which a RUNNING trial counts as
            dead: it is marked FAIL and queued again with the same parameters (default
            4 × heartbeat_interval).
        prune: use the median pruner (else never prune).
        pruner_startup_trials: finished trials before pruning starts.
        pruner_warmup_epochs: no pruning before this epoch.
        seed: sampler seed (offset by the number of trials already in the study, so that a
            resumed run does not repeat the first trials' parameters).
    Returns:
        ``optuna.Study``.
    Raises:
        OptionalDependencyError: Optuna is not installed.
        ConfigError: a bad setting, or an existing study of that name that maximizes.
    """
    optuna = _optuna()
    from optuna import storages

    if heartbeat_interval < 1:
        raise ConfigError("--heartbeat-interval must be ≥ 1 s.")
    grace = int(grace_period) if grace_period else 4 * int(heartbeat_interval)
    if grace < heartbeat_interval:
        raise ConfigError("--grace-period must be at least --heartbeat-interval.")
    url = _storage_url(Path(study_dir), storage)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # heartbeat and retries are marked experimental
        retry_cls = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
        kw = ({"heartbeat_stale_trial_callback": retry_cls(max_retry=3)} if retry_cls else
              {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=3)})
        try:
            rdb = storages.RDBStorage(url, engine_kwargs=engine,
                                      heartbeat_interval=int(heartbeat_interval),
                                      grace_period=grace, **kw)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"cannot open the study storage {url!r}: {exc}") from exc
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=int(pruner_startup_trials),
                                          n_warmup_steps=int(pruner_warmup_epochs))
              if prune else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=rdb, study_name=study_name, load_if_exists=True,
                                direction="minimize", pruner=pruner)
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ConfigError(f"study {study_name!r} in {url} maximizes; dcmnet studies minimize "
                          "the validation ESP RMSE. Choose another --study name.")
    n_existing = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(
        seed=None if seed is None else int(seed) + n_existing)
    return study


def count_finished(study) -> int:
    """Number of COMPLETE plus PRUNED trials of the study."""
    from optuna.trial import TrialState
    return len(study.get_trials(deepcopy=False,
                                states=(TrialState.COMPLETE, TrialState.PRUNED)))


def make_objective(space: SearchSpace, settings: dict, trials_dir, *, console=None):
    """The Optuna objective: one normal experiment per trial, pruned on validation ESP RMSE.

    Args:
        space: the search space (fixed entries apply to every trial).
        settings: further fixed settings for every trial (``data_files``, ``num_epochs``,
            ``num_train``, ...), any name accepted by
            :func:`dcmnet.config.create_default_config`; they win over the space.
        trials_dir: parent of the trial folders ``trial_<number>``.
        console: rich console for one line per trial.
    Returns:
        ``objective(trial) -> float``: the validation ESP RMSE (kcal/(mol·e)) at the epoch
        with the lowest validation loss. Training output goes to ``<trial folder>/train.log``.
    Raises (from the objective):
        optuna.TrialPruned: the pruner stopped the trial, or training diverged (NaN/Inf
            loss; recorded in the trial's user attribute ``diverged``).
        ConfigError, DataError: bad settings or data (they end the study run).
    """
    optuna = _optuna()
    from rich.console import Console

    from dcmnet.runner import run_training
    from dcmnet.train import TrainingDiverged

    console = console or Console(stderr=True)
    trials_dir = Path(trials_dir).resolve()
    num_epochs = int(settings.get("num_epochs", TrainingConfig.num_epochs))

    def objective(trial) -> float:
        sampled = space.suggest(trial)
        flat = {**sampled, **settings}
        name = f"trial_{trial.number}"
        cfg = create_default_config(name, output_dir=str(trials_dir), **flat)
        exp_dir = cfg.experiment_dir
        trial.set_user_attr("experiment_dir", str(exp_dir))
        trial.set_user_attr("config", {k: v for k, v in flat.items()})
        if exp_dir.exists():       # left over from an earlier study of this folder
            shutil.rmtree(exp_dir)
        exp_dir.mkdir(parents=True)
        rows: list[dict] = []

        def on_epoch_end(epoch: int, row: dict) -> None:
            rows.append(row)
            value = float(row["valid_esp_rmse"])
            trial.report(value, epoch)
            if epoch < num_epochs and trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned(f"pruned at epoch {epoch}: valid ESP RMSE "
                                         f"{value:.4g} kcal/(mol·e)")

        t0 = time.perf_counter()
        with open(exp_dir / "train.log", "w") as log:
            trial_console = Console(file=log, width=110, force_terminal=False)
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    run_training(config=cfg, progress=False, table_every=1,
                                 console=trial_console, on_epoch_end=on_epoch_end)
            except TrainingDiverged as exc:
                trial.set_user_attr("diverged", str(exc))
                trial.set_user_attr("pruned_at_epoch", len(rows) + 1)
                _line(console, trial, "pruned (diverged)", rows, t0, sampled, space)
                raise optuna.TrialPruned(str(exc)) from exc
            except optuna.TrialPruned:
                _line(console, trial, "pruned", rows, t0, sampled, space)
                raise
            except BaseException:
                console.print(f"trial {trial.number} failed; its training output is in "
                              f"{exp_dir / 'train.log'}", highlight=False, soft_wrap=True)
                raise
        if not rows:
            raise ConfigError(f"{exp_dir}: training ran no epoch.")
        best = min(range(len(rows)), key=lambda i: rows[i]["valid_loss"])
        value = float(rows[best]["valid_esp_rmse"])
        trial.set_user_attr("best_epoch", int(rows[best]["epoch"]))
        trial.set_user_attr("epochs_run", len(rows))
        trial.set_user_attr("min_valid_esp_rmse",
                            float(min(r["valid_esp_rmse"] for r in rows)))
        if not math.isfinite(value):
            trial.set_user_attr("diverged", f"validation ESP RMSE {value}")
            _line(console, trial, "pruned (non-finite)", rows, t0, sampled, space)
            raise optuna.TrialPruned(f"validation ESP RMSE is {value}")
        _line(console, trial, "complete", rows, t0, sampled, space, value)
        return value

    return objective


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _line(console, trial, what, rows, t0, sampled, space, value=None) -> None:
    last = rows[-1]["valid_esp_rmse"] if rows else math.nan
    v = value if value is not None else last
    params = " ".join(f"{SHORT.get(n, n)}={_fmt(sampled[n])}" for n in space.searched)
    console.print(f"trial {trial.number:>3} {what:<19} ep {len(rows):>3}  ESP RMSE {v:8.4f}  "
                  f"{time.perf_counter() - t0:5.0f} s  {params}", highlight=False,
                  soft_wrap=True)


@dataclasses.dataclass
class StudyResult:
    """What :func:`run_study` returns."""

    study: Any
    study_dir: Path
    n_finished: int
    best_config_path: Path | None
    files: dict


def _check_study_folder(study_dir: Path, study_name: str) -> None:
    meta = study_dir / "study.json"
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except json.JSONDecodeError:
            return
        if old.get("study_name") not in (None, study_name):
            raise ConfigError(
                f"{study_dir} belongs to study {old['study_name']!r}; its trial folders would "
                f"be overwritten by study {study_name!r}. Choose another --study-dir.")


def _write_json(path: Path, data) -> None:
    from dcmnet.export import write_bytes
    write_bytes((json.dumps(data, indent=2) + "\n").encode(), path)


def _redact(url: str) -> str:
    """A storage URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url


def run_study(study_name: str, *, n_trials: int = 20, study_dir=None, data_files=None,
              search_space=None, num_epochs: int = 30, timeout: float | None = None,
              storage: str | None = None, seed: int | None = None, prune: bool = True,
              pruner_startup_trials: int = 5, pruner_warmup_epochs: int = 0,
              heartbeat_interval: int = 30, grace_period: int | None = None,
              console=None, plots: bool = True, **overrides) -> StudyResult:
    """Run (or resume) a hyperparameter search until the study has ``n_trials`` finished trials.

    Args:
        study_name: the study's name (in the storage and, by default, the folder name).
        n_trials: finished (complete + pruned) trials wanted in the whole study; a resumed
            run only runs the missing ones, several workers together stop near this number
            (each finishes the trial it is running).
        study_dir: study folder (default ``./studies/<study_name>``).
        data_files: dataset files for every trial (default: the bundled dataset).
        search_space: a :class:`SearchSpace`, a dict (see :func:`parse_search_space`), a
            path to a JSON/YAML file, or None for :data:`DEFAULT_SEARCH_SPACE`.
        num_epochs: epochs per trial.
        timeout: stop starting new trials after this many seconds.
        storage: Optuna RDB URL instead of ``<study_dir>/study.db``.
        seed: sampler seed; prune, pruner_startup_trials, pruner_warmup_epochs,
            heartbeat_interval, grace_period: see :func:`open_study`.
        console: rich console (default stderr).
        plots: write the Optuna figures.
        **overrides: fixed settings for every trial (any ``create_default_config`` name,
            e.g. ``num_train=500, random_seed=1, n_dcm=2``); a searched setting named here
            is fixed instead of searched.
    Returns:
        :class:`StudyResult`.
    Raises:
        OptionalDependencyError: Optuna (or PyYAML for a YAML space) is missing.
        ConfigError: bad search space or settings, a study folder of another study.
        DataError: a missing data file; unreadable data (the running trial is marked FAIL).
        KeyboardInterrupt: Ctrl-C (the running trial is marked FAIL; rerun to resume).
    """
    optuna = _optuna()
    from rich.console import Console

    console = console or Console(stderr=True)
    # our own line per trial replaces Optuna's messages (a failed trial's traceback included)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if int(n_trials) < 0:
        raise ConfigError("--n-trials must be ≥ 0.")
    if not study_name or "/" in study_name:
        raise ConfigError(f"study name {study_name!r} must be a plain name.")
    study_dir = Path(study_dir or Path("studies") / study_name).resolve()

    if search_space is None:
        space = default_search_space()
    elif isinstance(search_space, SearchSpace):
        space = search_space
    elif isinstance(search_space, dict):
        space = parse_search_space(search_space)
    else:
        space = load_search_space(search_space)

    settings = dict(overrides)
    for bad in ("name", "output_dir"):
        if bad in settings:
            raise ConfigError(f"{bad} is set by the study (trial folders are "
                              f"<study_dir>/trials/trial_<n>).")
    settings["num_epochs"] = int(num_epochs)
    if data_files:
        settings["data_files"] = [str(Path(f).resolve()) for f in data_files]
        missing = [f for f in settings["data_files"] if not Path(f).exists()]
        if missing:
            from dcmnet.errors import DataError
            raise DataError(f"{missing[0]}: file not found.")
    create_default_config("settings_check", **settings)     # unknown names, bad values
    fixed_by_flag = [n for n in space.searched if n in settings]
    if fixed_by_flag:
        console.print("fixed by their flags, not searched: " + ", ".join(
            f"{n}={settings[n]}" for n in fixed_by_flag), highlight=False)
        space = space.without(fixed_by_flag)

    url = _storage_url(study_dir, storage)
    _check_study_folder(study_dir, study_name)
    study = open_study(study_name, study_dir, storage, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period, prune=prune,
                       pruner_startup_trials=pruner_startup_trials,
                       pruner_warmup_epochs=pruner_warmup_epochs, seed=seed)
    study_dir.mkdir(parents=True, exist_ok=True)
    record = {"study_name": study_name, "storage": _redact(url),
              "search_space": space.to_dict(), "fixed_settings": settings}
    old = study.user_attrs.get("dcmnet")
    if old and (old.get("search_space"), old.get("fixed_settings")) != (
            record["search_space"], record["fixed_settings"]):
        console.print("[yellow]note:[/] this study was started with another search space or "
                      "other fixed settings; trials of both are compared.")
    study.set_user_attr("dcmnet", record)
    _write_json(study_dir / "study.json", record)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    from optuna.trial import TrialState
    finished = count_finished(study)
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    remaining = int(n_trials) - finished
    console.print(f"study [bold]{study_name}[/] in {_redact(url)}: {finished} finished"
                  f"{f', {running} running elsewhere' if running else ''}; "
                  f"{max(remaining, 0)} to run ({int(n_trials)} wanted), {num_epochs} epochs "
                  f"each; searching {', '.join(space.searched) or 'nothing'}; ESP RMSE "
                  "in kcal/(mol·e)", highlight=False, soft_wrap=True)
    if remaining > 0:
        objective = make_objective(space, settings, study_dir / "trials", console=console)
        stop = optuna.study.MaxTrialsCallback(int(n_trials),
                                              states=(TrialState.COMPLETE, TrialState.PRUNED))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=remaining, timeout=timeout, callbacks=[stop],
                           gc_after_trial=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    files = summarize_study(study, study_dir, console=console, plots=plots)
    return StudyResult(study=study, study_dir=study_dir, n_finished=count_finished(study),
                       best_config_path=files.get("best_config"), files=files)


# --------------------------------------------------------------------------- results

def trial_rows(study) -> list[dict]:
    """One dict per trial, best first: number, state, value (kcal/(mol·e)), epochs, seconds,
    parameters, experiment folder and a note (pruning epoch, divergence, retry)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried_as = {r.system_attrs["retry_history"][-1]: r.number for r in trials
                  if r.system_attrs.get("retry_history")}
    rows = []
    for t in trials:
        ua = t.user_attrs
        if t.state == TrialState.COMPLETE:
            value = t.value
        elif t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        else:
            value = None
        note = ""
        if "diverged" in ua:
            note = "diverged"
        elif t.state == TrialState.PRUNED:
            note = f"pruned at epoch {ua.get('pruned_at_epoch', len(t.intermediate_values))}"
        elif t.state == TrialState.FAIL:
            note = (f"lost (no heartbeat), retried as {retried_as[t.number]}"
                    if t.number in retried_as else "failed")
        if t.system_attrs.get("retry_history"):
            note = (note + "; " if note else "") + f"retry of {t.system_attrs['retry_history'][-1]}"
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if (
            t.datetime_complete and t.datetime_start) else None
        rows.append({"number": t.number, "state": t.state.name, "valid_esp_rmse": value,
                     "best_epoch": ua.get("best_epoch"),
                     "epochs": ua.get("epochs_run", len(t.intermediate_values)),
                     "duration_s": duration, "params": dict(t.params),
                     "experiment_dir": ua.get("experiment_dir", ""), "note": note})
    order = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}
    rows.sort(key=lambda r: (order.get(r["state"], 5),
                             math.inf if r["valid_esp_rmse"] is None else r["valid_esp_rmse"],
                             r["number"]))
    return rows


def _param_names(rows) -> list[str]:
    names: list[str] = []
    for r in rows:
        names += [n for n in r["params"] if n not in names]
    return sorted(names, key=lambda n: list(TUNABLE).index(n) if n in TUNABLE else 999)


def results_table(study, max_rows: int = 25):
    """A rich table of the trials, best first (COMPLETE by value, then PRUNED, ...)."""
    from rich.markup import escape
    from rich.table import Table

    rows = trial_rows(study)
    names = _param_names(rows)
    title = f"study {study.study_name}: validation ESP RMSE [kcal/(mol·e)], best first"
    if len(rows) > max_rows:
        title += f" (top {max_rows} of {len(rows)}; all in trials.csv)"
    t = Table(title=escape(title), title_justify="left", show_edge=False, header_style="bold")
    for c in ["#", "state", "ESP RMSE", "ep"] + [SHORT.get(n, n) for n in names] + ["s", "note"]:
        t.add_column(c, justify="left" if c in ("state", "note") else "right")
    for r in rows[:max_rows]:
        v = r["valid_esp_rmse"]
        t.add_row(str(r["number"]), r["state"].lower(), "" if v is None else f"{v:.4f}",
                  str(r["epochs"]),
                  *[_fmt(r["params"][n]) if n in r["params"] else "" for n in names],
                  "" if r["duration_s"] is None else f"{r['duration_s']:.0f}", r["note"])
    return t


def write_results_csv(study, path) -> Path:
    """All trials as CSV (best first); returns the path."""
    from dcmnet.export import write_bytes

    rows = trial_rows(study)
    names = _param_names(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "state", "valid_esp_rmse_kcal_mol_e", "best_epoch", "epochs",
                "duration_s"] + names + ["experiment_dir", "note"])
    for r in rows:
        w.writerow([r["number"], r["state"], r["valid_esp_rmse"], r["best_epoch"],
                    r["epochs"], r["duration_s"]]
                   + [r["params"].get(n, "") for n in names]
                   + [r["experiment_dir"], r["note"]])
    return write_bytes(buf.getvalue().encode(), path)


def best_config(study, name: str | None = None) -> ExperimentConfig:
    """The best COMPLETE trial's configuration, named ``<study>_best`` in ``./experiments``.

    Rebuilt from the settings stored in the study (so it works for trials run on another
    machine whose folders are not here).

    Raises:
        ConfigError: the study has no complete trial yet.
    """
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise ConfigError(f"study {study.study_name!r} has no complete trial yet.")
    best = min(done, key=lambda t: t.value)
    flat = dict(best.user_attrs.get("config") or best.params)
    flat.pop("name", None)
    flat.pop("output_dir", None)
    return create_default_config(name or f"{study.study_name}_best", **flat)


def write_best_config(study, path, name: str | None = None) -> Path:
    """Save :func:`best_config` as JSON (``dcmnet train --config PATH``); returns the path.

    Raises:
        ConfigError: no complete trial yet.
    """
    return best_config(study, name).save(path, extra=provenance())


def write_study_plots(study, study_dir) -> dict[str, Any]:
    """Optuna's figures of the study as PNG; see :func:`dcmnet.plots.write_study_plots`
    (figures live in :mod:`dcmnet.plots`, the only module that imports matplotlib)."""
    from dcmnet.plots import write_study_plots as _write

    return _write(study, study_dir)


def summarize_study(study, study_dir, *, console=None, plots: bool = True,
                    max_rows: int = 25) -> dict[str, Any]:
    """Print the results table and write ``trials.csv``, ``best_config.json`` and figures.

    Returns ``{"trials_csv": Path, "best_config": Path | None, <figure>: Path | reason}``.
    Raises nothing for an empty or all-pruned study (it says so instead).
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    study_dir = Path(study_dir)
    files: dict[str, Any] = {"trials_csv": write_results_csv(study, study_dir / "trials.csv")}
    console.print(results_table(study, max_rows=max_rows))
    try:
        files["best_config"] = write_best_config(study, study_dir / "best_config.json")
        best = study.best_trial
        console.print(f"best trial {best.number}: validation ESP RMSE {best.value:.4f} "
                      f"kcal/(mol·e); re-run it with: dcmnet train --config "
                      f"{files['best_config']} --num-epochs N", highlight=False,
                      soft_wrap=True)
    except ConfigError as exc:
        files["best_config"] = None
        console.print(f"no best_config.json: {exc}")
    if plots:
        for name, res in write_study_plots(study, study_dir).items():
            files[name] = res
            if not isinstance(res, Path):
                console.print(f"[yellow]{name} figure not drawn:[/] {res}", highlight=False)
    console.print(f"study folder: {study_dir}", highlight=False)
    return files
