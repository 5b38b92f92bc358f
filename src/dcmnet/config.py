"""Experiment configuration: dataclasses with a strict JSON round trip.

``ModelConfig`` (architecture), ``TrainingConfig`` (optimisation) and ``ExperimentConfig``
(name, folders, data, and the two others). ``from_dict`` refuses unknown keys with a
message listing the valid ones, so a typo in a JSON file never passes silently.

The dataclasses are the single source of every setting: each field carries its help text
and unit in ``dataclasses.field(metadata=...)`` (keys ``help``, ``unit``, and where needed
``default_text``, ``choices``, ``nargs``, ``metavar``; ``cli=False`` for a field that
training records rather than reads), from which :mod:`dcmnet.cli.config_flags` builds the
flags of ``dcmnet train`` and ``dcmnet tune``. Validation lives in the ``validate`` methods
only; :func:`apply_overrides` (and :func:`create_default_config`) end with it.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from dcmnet.errors import ConfigError
from dcmnet.fileio import atomic_write_json

SCHEDULE_TYPES = ("constant", "cosine", "exponential", "step")
#: How ``split_by`` draws the validation set.
SPLIT_BY = ("conformer", "molecule")
#: Parameter groups ``--freeze`` can keep fixed while fine-tuning (top-level modules of
#: :class:`dcmnet.model.DCMNet`): ``embed`` (element embedding), ``message`` (all
#: message-passing blocks with their atom-wise updates), ``all-but-head`` (both), ``head``.
FREEZE_GROUPS = ("embed", "message", "all-but-head", "head")

#: Named sets of overrides for ``dcmnet train --preset NAME`` / ``run_training(preset=...)``
#: (field name → value, any section): the two ends of the accuracy-per-minute curve of
#: docs/training.md ("Choosing a recipe"; ``benchmarks/bench_recipe.py``). The defaults
#: (max_degree 1, 2 message-passing blocks, 660 epochs at learning rate 1e-2) are its
#: middle; ``fast`` takes half of their time, ``accurate`` (3 blocks, 1100 epochs; 0.451 ×
#: the fitted monopoles against 0.54 × for the defaults, bundled data, 3 seeds) about twice.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"num_epochs": 330},
    "accurate": {"num_iterations": 3, "num_epochs": 1100},
}


def _f(default, help: str, unit: str | None = None, **meta):
    """A dataclass field with its command-line help (and unit) as metadata.

    ``default`` may be a list (copied per instance). Extra ``meta`` keys: ``default_text``
    (how a None/empty default reads), ``choices`` (listed in the help; checked by
    ``validate``), ``nargs``, ``metavar``, ``cli`` (False: no flag).
    """
    meta = {"help": help, "unit": unit, **meta}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _presets_help() -> str:
    parts = [f"{k}: " + (", ".join(f"{n}={v}" for n, v in o.items()) or "the defaults")
             for k, o in PRESETS.items()]
    return ("named set of settings (" + "; ".join(parts) + "); "
            "explicit flags override it")


def _from_dict(cls, d: dict, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(d).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys are "
                          f"{', '.join(sorted(names))}.")
    return cls(**d)


#: ``dcmnet fit-dcm`` (:mod:`dcmnet.fitting_dcm`): default L-BFGS iterations per conformer.
#: Kept here (no JAX import) so the command line shows it without loading JAX.
FIT_DCM_STEPS = 300


@dataclasses.dataclass
class ModelConfig:
    """DCM-net architecture (see :class:`dcmnet.model.DCMNet`).

    The fields, their units and defaults are listed below from their metadata.
    """

    n_dcm: int = _f(2, "distributed charges per atom")
    features: int = _f(32, "feature channels per irrep degree")
    max_degree: int = _f(1, "highest spherical-harmonic degree of the features (≥ 1; 2 "
                            "costs about 2 × per epoch for no gain per minute, docs/training.md)")
    num_iterations: int = _f(2, "message-passing blocks")
    num_basis_functions: int = _f(16, "radial basis functions")
    cutoff: float = _f(4.0, "message-passing cutoff radius", "Å")
    max_atomic_number: int = _f(18, "largest element (atomic number) the model embeds")
    max_displacement: float = _f(1.0, "max. distance of a charge from its atom", "Å")

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values the model cannot use."""
        for k in ("n_dcm", "features", "num_iterations", "num_basis_functions",
                  "max_atomic_number"):
            if int(getattr(self, k)) < 1:
                raise ConfigError(f"model.{k} must be ≥ 1 (got {getattr(self, k)}).")
        if self.max_degree < 1:
            raise ConfigError("model.max_degree must be ≥ 1: charge displacements come from "
                              "the l = 1 features.")
        if self.cutoff <= 0 or self.max_displacement <= 0:
            raise ConfigError("model.cutoff and model.max_displacement must be > 0 Å.")


@dataclasses.dataclass
class TrainingConfig:
    """Optimisation settings.

    Loss = esp_w · MSE(ESP) [(kcal/(mol·e))²] + chg_w · MSE(atomic charge) [e²]
    + dipole_w · MSE(dipole) [D²] + esp_rmse_w · mean per-molecule RMSE(ESP)
    [kcal/(mol·e)]; see :mod:`dcmnet.training.loss`.
    Schedules count optimizer updates (after gradient accumulation), not micro-batches.
    The fields, their units and defaults are listed below from their metadata.
    """

    num_epochs: int = _f(660, "epochs (the schedule spans them)")
    batch_size: int = _f(16, "molecules per micro-batch")
    learning_rate: float = _f(1e-2, "peak learning rate")
    gradient_accumulation_steps: int = _f(1, "micro-batches per optimizer update")
    esp_w: float = _f(1.0, "weight of the ESP loss", "per (kcal/(mol·e))²")
    chg_w: float = _f(0.0, "weight of the atomic-charge loss vs 'mono'", "per e²")
    dipole_w: float = _f(0.0, "weight of the dipole loss", "per D²")
    esp_rmse_w: float = _f(0.0, "weight of the mean per-molecule ESP RMSE (targets the "
                                "median error)", "per kcal/(mol·e)")
    use_grad_clip: bool = _f(True, "clip gradients by global norm")
    grad_clip_norm: float = _f(2.0, "global gradient-norm clip")
    use_lr_schedule: bool = _f(True, "use the learning-rate schedule (off: constant rate)")
    lr_schedule_type: str = _f("cosine", "learning-rate schedule", choices=SCHEDULE_TYPES)
    warmup_epochs: int = _f(2, "linear warmup", "epochs")
    min_lr_factor: float = _f(0.05, "floor of the schedule as a fraction of the peak")
    decay_rate: float = _f(0.1, "decay factor of the exponential and step schedules")
    step_every_epochs: int = _f(0, "step schedule: multiply by --decay-rate every N epochs "
                                   "(0: a third of the run)", "epochs")
    use_ema: bool = _f(True, "validate and save EMA parameters")
    ema_decay: float = _f(0.99, "EMA decay of the parameters used for validation")
    save_every_n_epochs: int = _f(100, "periodic checkpoint interval (0: none); a periodic epoch "
                                         "also writes latest and best", "epochs")
    keep_checkpoints: int = _f(3, "periodic checkpoints kept")
    checkpoint_interval_s: float = _f(
        30.0, "write the latest and best checkpoints at most this often (always at periodic "
        "epochs, at the end, on a stop or a diverged loss); 0: after every epoch", "s")
    esp_chunk_size: int = _f(0, "grid points per ESP chunk, 0 = all at once")
    data_parallel: bool = _f(True, "split each batch over all JAX devices")

    def validate(self) -> None:
        """Raise :class:`ConfigError` for impossible values."""
        for k in ("num_epochs", "batch_size", "gradient_accumulation_steps"):
            if int(getattr(self, k)) < 1:
                raise ConfigError(f"training.{k} must be ≥ 1 (got {getattr(self, k)}).")
        if self.learning_rate <= 0:
            raise ConfigError("training.learning_rate must be > 0.")
        if self.lr_schedule_type not in SCHEDULE_TYPES:
            raise ConfigError(f"training.lr_schedule_type {self.lr_schedule_type!r}: choose "
                              f"one of {', '.join(SCHEDULE_TYPES)}.")
        if not 0.0 <= self.min_lr_factor <= 1.0:
            raise ConfigError("training.min_lr_factor must be within [0, 1].")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError("training.ema_decay must be within [0, 1).")
        for k in ("esp_w", "chg_w", "dipole_w", "esp_rmse_w"):
            if getattr(self, k) < 0:
                raise ConfigError(f"training.{k} must be ≥ 0.")


@dataclasses.dataclass
class ExperimentConfig:
    """A whole experiment: name, folders, data selection, model and training.

    ``split_by="molecule"`` sends whole molecules (by name) to validation: a test on
    unseen molecules. ``init_from`` fine-tunes (fresh optimizer, schedule and EMA).
    ``training_elements`` and ``preset`` are records: a fine-tuned model warns about
    elements its source never saw, and a config that records a preset is never given its
    values a second time (:func:`apply_overrides`). The fields, their units and defaults
    are listed below from their metadata.
    """

    name: str = _f("dcmnet", "experiment name; the folder is OUTPUT_DIR/NAME")
    output_dir: str = _f("experiments", "parent folder of experiments")
    data_files: list = _f([], "dataset files or folders in any supported format, see "
                              "dcmnet inspect", nargs="+", metavar="FILE",
                          default_text="the bundled data")
    num_train: int | None = _f(None, "training molecules", default_text="all but ~10 %")
    num_valid: int | None = _f(None, "validation molecules", default_text="~10 %")
    split_by: str = _f("conformer", "conformer: random conformers; molecule: validate on "
                                    "molecules never seen in training", choices=SPLIT_BY,
                       metavar="HOW")
    random_seed: int = _f(42, "seed of split, data order and initial parameters")
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    init_from: str | None = _f(None, "fine-tune: start from the parameters of this "
                                     "experiment folder, checkpoint folder or shipped model "
                                     "(fresh optimizer, schedule, EMA)",
                               metavar="EXP_OR_MODEL", default_text="random parameters")
    freeze: list = _f([], "with --init-from: parameter groups kept fixed", nargs="+",
                      metavar="GROUP", choices=FREEZE_GROUPS, default_text="none")
    training_elements: list = _f([], "atomic numbers of the training data (recorded by "
                                     "training)", cli=False, default_text="none")
    preset: str | None = _f(None, _presets_help(), choices=tuple(PRESETS),
                            metavar="NAME", default_text="none")

    @property
    def experiment_dir(self) -> Path:
        """``output_dir / name`` (absolute)."""
        return (Path(self.output_dir) / self.name).resolve()

    def validate(self) -> None:
        """Validate all sections; raise :class:`ConfigError`."""
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"experiment name {self.name!r} must be a plain folder name.")
        if self.split_by not in SPLIT_BY:
            raise ConfigError(f"split_by {self.split_by!r}: choose 'conformer' or 'molecule'.")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of "
                              f"{', '.join(PRESETS)}.")
        if isinstance(self.freeze, str):
            self.freeze = [self.freeze]
        bad = [g for g in self.freeze if g not in FREEZE_GROUPS]
        if bad:
            raise ConfigError(f"freeze: unknown parameter group(s) {', '.join(map(str, bad))}; "
                              f"choose from {', '.join(FREEZE_GROUPS)}.")
        if self.freeze and not self.init_from:
            raise ConfigError("freeze needs init_from (--init-from EXP_OR_MODEL): freezing "
                              "randomly initialised parameters would keep them random.")
        self.model.validate()
        self.training.validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "ExperimentConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`.

        Keys ``dcmnet_version`` and ``git_commit`` (written by :meth:`save`) are ignored.
        """
        d = {k: v for k, v in dict(d).items() if k not in ("dcmnet_version", "git_commit")}
        model = _from_dict(ModelConfig, d.pop("model", {}), f"{where}: model")
        training = _from_dict(TrainingConfig, d.pop("training", {}), f"{where}: training")
        exp = _from_dict(cls, d, where)
        exp.model, exp.training = model, training
        exp.data_files = [str(f) for f in (exp.data_files or [])]
        exp.freeze = list(exp.freeze or [])
        exp.training_elements = [int(z) for z in (exp.training_elements or [])]
        return exp

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write the config as JSON atomically, with ``extra`` keys (version, commit) added."""
        d = self.to_dict()
        d.update(extra or {})
        return atomic_write_json(path, d)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExperimentConfig":
        """Read a JSON config; raise :class:`ConfigError` on bad JSON or unknown keys."""
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: config file not found.")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}).") from exc
        return cls.from_dict(d, where=str(path))


def _document_fields(cls) -> None:
    """Append an ``Attributes:`` section built from the fields' metadata to ``cls.__doc__``."""
    lines = ["", "    Attributes:"]
    for f in dataclasses.fields(cls):
        m = f.metadata
        if "help" not in m:
            continue
        unit = f" [{m['unit']}]" if m.get("unit") else ""
        unit += f"; one of {', '.join(m['choices'])}" if m.get("choices") else ""
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = m.get("default_text") if default in (None, []) else repr(default)
        lines.append(f"        {f.name}: {m['help']}{unit} (default {shown}).")
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n" + "\n".join(lines) + "\n"


for _cls in (ModelConfig, TrainingConfig, ExperimentConfig):
    _document_fields(_cls)


def _settable(cfg: ExperimentConfig) -> dict[str, object]:
    """Field name → the section object holding it (names are unique across sections)."""
    out = {}
    for obj in (cfg, cfg.model, cfg.training):
        out.update({f.name: obj for f in dataclasses.fields(obj)
                    if f.name not in ("model", "training")})
    return out


def apply_overrides(base: ExperimentConfig | None = None, name: str | None = None,
                    **overrides) -> ExperimentConfig:
    """A validated copy of ``base`` (default: the defaults) with overrides by field name.

    Order: ``base`` < the preset named by ``overrides["preset"]`` (:data:`PRESETS`) <
    the other ``overrides``. A preset that ``base`` already records is not applied again
    (its values are in ``base``, perhaps changed since). ``base`` is left unchanged.

    Raises:
        ConfigError: a keyword that is no field of any section, an unknown preset, or a
            value :meth:`ExperimentConfig.validate` refuses.
    """
    cfg = copy.deepcopy(base) if base is not None else ExperimentConfig()
    where = _settable(cfg)
    unknown = [k for k in overrides if k not in where]
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; valid settings are "
                          f"{', '.join(sorted(where))}.")
    preset = overrides.pop("preset", None)
    if preset is not None and preset != cfg.preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of "
                              f"{', '.join(PRESETS)}.")
        for key, value in PRESETS[preset].items():
            setattr(where[key], key, copy.deepcopy(value))
        cfg.preset = preset
    for key, value in overrides.items():
        setattr(where[key], key, value)
    if name is not None:
        cfg.name = name
    cfg.validate()
    return cfg


def create_default_config(name: str = "dcmnet", **overrides) -> ExperimentConfig:
    """An :class:`ExperimentConfig` with defaults, any field of any section overridden by name.

    Example: ``create_default_config("m1", n_dcm=3, num_epochs=50, learning_rate=5e-4)``;
    ``preset="accurate"`` applies a :data:`PRESETS` entry beneath the other keywords.

    Raises:
        ConfigError: a keyword that is no field of any section, or an unknown preset.
    """
    return apply_overrides(None, name=name, **overrides)


def flatten_config(cfg: ExperimentConfig) -> dict[str, Any]:
    """The one flat view of a config, for logging (MLflow parameters, tables).

    Returns ``{"name": ..., "model.n_dcm": 2, "training.num_epochs": 660, ...}``: the
    experiment's own fields under their names, the sections' as ``section.field``.
    """
    d = cfg.to_dict()
    flat = {k: v for k, v in d.items() if k not in ("model", "training")}
    for section in ("model", "training"):
        flat.update({f"{section}.{k}": v for k, v in d[section].items()})
    return flat


def provenance() -> dict:
    """Package version and git commit (when run from a git checkout) for saved configs."""
    import subprocess

    from dcmnet import __version__

    commit = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"dcmnet_version": __version__, "git_commit": commit}
