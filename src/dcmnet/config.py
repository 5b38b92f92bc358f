"""Experiment configuration: dataclasses with a strict JSON round trip.

``ModelConfig`` (architecture), ``TrainingConfig`` (optimisation) and ``ExperimentConfig``
(name, folders, data, and the two others). ``from_dict`` refuses unknown keys with a
message listing the valid ones, so a typo in a JSON file never passes silently.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from dcmnet.errors import ConfigError
from dcmnet.fileio import atomic_write_json

SCHEDULE_TYPES = ("constant", "cosine", "exponential", "step")
#: Parameter groups ``--freeze`` can keep fixed while fine-tuning (top-level modules of
#: :class:`dcmnet.model.DCMNet`): ``embed`` (element embedding), ``message`` (all
#: message-passing blocks with their atom-wise updates), ``all-but-head`` (both), ``head``.
FREEZE_GROUPS = ("embed", "message", "all-but-head", "head")


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

    Attributes:
        n_dcm: charges per atom.
        features: feature channels per irrep degree.
        max_degree: highest spherical-harmonic degree of the features.
        num_iterations: message-passing blocks.
        num_basis_functions: radial basis functions.
        cutoff: message-passing cutoff radius, Å.
        max_atomic_number: largest element the embedding knows.
        max_displacement: bound on a charge's distance from its atom, Å.
    """

    n_dcm: int = 2
    features: int = 32
    max_degree: int = 2
    num_iterations: int = 2
    num_basis_functions: int = 16
    cutoff: float = 4.0
    max_atomic_number: int = 18
    max_displacement: float = 1.0

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
    + dipole_w · MSE(dipole) [D²]; see :mod:`dcmnet.training.loss`.
    Schedules count optimizer updates (after gradient accumulation), not micro-batches.
    """

    num_epochs: int = 200
    batch_size: int = 16
    learning_rate: float = 5e-3
    gradient_accumulation_steps: int = 1
    esp_w: float = 1.0
    chg_w: float = 0.0
    dipole_w: float = 0.0
    use_grad_clip: bool = True
    grad_clip_norm: float = 2.0
    use_lr_schedule: bool = True
    lr_schedule_type: str = "cosine"
    warmup_epochs: int = 2
    min_lr_factor: float = 0.05
    decay_rate: float = 0.1
    step_every_epochs: int = 0
    use_ema: bool = True
    ema_decay: float = 0.99
    save_every_n_epochs: int = 10
    keep_checkpoints: int = 3
    esp_chunk_size: int = 0
    data_parallel: bool = True

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
        for k in ("esp_w", "chg_w", "dipole_w"):
            if getattr(self, k) < 0:
                raise ConfigError(f"training.{k} must be ≥ 0.")


@dataclasses.dataclass
class ExperimentConfig:
    """A whole experiment: name, folders, data selection, model and training.

    Attributes:
        name: experiment name; the folder is ``output_dir/name``.
        output_dir: parent folder of experiments.
        data_files: dataset files; empty means the bundled dataset.
        num_train / num_valid: molecules for training / validation (None: all, ~90/10).
        split_by: ``conformer`` (random conformers) or ``molecule`` (whole molecules, by
            name, go to validation: a test on unseen molecules).
        random_seed: seed of the split, the data order and the initial parameters.
        init_from: fine-tuning: start from the parameters of this experiment folder,
            checkpoint folder or shipped model (fresh optimizer, schedule and EMA); None
            starts from random parameters.
        freeze: parameter groups kept fixed while fine-tuning (see :data:`FREEZE_GROUPS`).
        training_elements: atomic numbers present in the training data (recorded by
            training; a fine-tuned model warns about elements its source never saw).
    """

    name: str = "dcmnet"
    output_dir: str = "experiments"
    data_files: list = dataclasses.field(default_factory=list)
    num_train: int | None = None
    num_valid: int | None = None
    split_by: str = "conformer"
    random_seed: int = 42
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    init_from: str | None = None
    freeze: list = dataclasses.field(default_factory=list)
    training_elements: list = dataclasses.field(default_factory=list)

    @property
    def experiment_dir(self) -> Path:
        """``output_dir / name`` (absolute)."""
        return (Path(self.output_dir) / self.name).resolve()

    def validate(self) -> None:
        """Validate all sections; raise :class:`ConfigError`."""
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"experiment name {self.name!r} must be a plain folder name.")
        if self.split_by not in ("conformer", "molecule"):
            raise ConfigError(f"split_by {self.split_by!r}: choose 'conformer' or 'molecule'.")
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


def create_default_config(name: str = "dcmnet", **overrides) -> ExperimentConfig:
    """An :class:`ExperimentConfig` with defaults, any field of any section overridden by name.

    Example: ``create_default_config("m1", n_dcm=3, num_epochs=50, learning_rate=5e-4)``.

    Raises:
        ConfigError: a keyword that is no field of any section.
    """
    cfg = ExperimentConfig(name=name)
    sections = {"": cfg, "model": cfg.model, "training": cfg.training}
    for key, value in overrides.items():
        for obj in sections.values():
            if key in {f.name for f in dataclasses.fields(obj)}:
                setattr(obj, key, value)
                break
        else:
            valid = sorted({f.name for o in sections.values() for f in dataclasses.fields(o)}
                           - {"model", "training"})
            raise ConfigError(f"unknown setting {key!r}; valid settings are {', '.join(valid)}.")
    cfg.validate()
    return cfg


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
