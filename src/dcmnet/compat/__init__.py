"""The original tool's call forms, as thin adapters over dcmnet's own API.

Notebooks written for the original tool (``mmml.dcmnet.dcmnet``) run with only the package
path changed (``mmml.dcmnet.dcmnet.<module>`` → ``dcmnet.compat.<module>`` for the
training modules, ``dcmnet.data`` / ``dcmnet.analysis`` for the others); see
``docs/coming_from_mmml.md``. Nothing here trains or analyses by itself: every function
translates its arguments and calls the one implementation.

* :func:`train_model_from_model` — ``train_model(key=..., model=..., train_data=...,
  valid_data=..., num_epochs=..., learning_rate=..., batch_size=..., writer=None,
  ndcm=..., esp_w=..., chg_w=..., use_grad_clip=..., grad_clip_norm=...)`` returning
  ``(params, best_valid_loss)``; :func:`dcmnet.compat.training.train_model` dispatches to it
  when it is not given an :class:`~dcmnet.config.ExperimentConfig`.
* ``prepare_datasets(..., natoms=18)``: :func:`dcmnet.data.prepare.prepare_datasets`
  accepts and ignores ``natoms`` (with a note).
* ``batch_analysis_summary(exp_dir, model, test_data)``:
  :func:`dcmnet.analysis.batch_analysis_summary` accepts the model argument, checks it
  against the experiment's configuration and warns on a mismatch.
* the module names of the original tool exist as aliases: :mod:`dcmnet.compat.training`,
  :mod:`dcmnet.compat.training_config`, :mod:`dcmnet.compat.training_multibatch`,
  :mod:`dcmnet.compat.analysis_multibatch`, :mod:`dcmnet.compat.train_runner`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from dcmnet.errors import ConfigError

#: Keywords of the original ``train_model`` that are not TrainingConfig fields.
_ORIGINAL_ONLY = ("key", "model", "writer", "ndcm")
#: dcmnet keywords accepted besides TrainingConfig fields.
_EXTRA = ("name", "output_dir", "console", "progress", "table_every")


def _model_config(model):
    """The :class:`~dcmnet.config.ModelConfig` of a :class:`dcmnet.model.DCMNet` instance."""
    from dcmnet.config import ModelConfig

    fields = [f.name for f in dataclasses.fields(ModelConfig)]
    missing = [k for k in fields if not hasattr(model, k)]
    if missing:
        raise ConfigError(f"train_model(model=...): expected a DCM-net from "
                          f"dcmnet.model.create_model, got {type(model).__name__} "
                          f"(missing {', '.join(missing)}).")
    return ModelConfig(**{k: getattr(model, k) for k in fields})


def _fresh_name(output_dir: Path, stem: str = "train_model") -> str:
    n = 1
    while (output_dir / f"{stem}-{n}").exists():
        n += 1
    return f"{stem}-{n}"


def train_model_from_model(key=None, model=None, train_data=None, valid_data=None, *,
                           writer=None, ndcm: int | None = None, name: str | None = None,
                           output_dir: str = "experiments", console=None,
                           progress: bool = False, table_every: int = 1, **training):
    """The original ``train_model`` keyword form; returns ``(params, best_valid_loss)``.

    Builds an :class:`~dcmnet.config.ExperimentConfig` from ``model`` (its architecture)
    and the keywords (any :class:`~dcmnet.config.TrainingConfig` field: ``num_epochs``,
    ``learning_rate``, ``batch_size``, ``esp_w``, ``chg_w``, ``use_grad_clip``,
    ``grad_clip_norm``, ``gradient_accumulation_steps`` ...), writes its ``config.json``
    and calls :func:`dcmnet.training.loop.train_model`. Settings not given keep dcmnet's defaults
    (Adam with a cosine schedule and 2 warmup epochs, EMA 0.99).

    Args:
        key: ``jax.random.PRNGKey`` or int: seed of the data order and initial parameters.
        model: a :class:`dcmnet.model.DCMNet` (``create_model(n_dcm=..., features=...)``).
        train_data, valid_data: :class:`dcmnet.data.Dataset` (``prepare_datasets``).
        writer: ``None`` or a TensorBoard writer with ``add_scalar(tag, value, step)``
            (``tensorboardX.SummaryWriter``): every epoch's metrics are also sent to it
            (tags ``train/esp_rmse``...). dcmnet writes its own events in
            ``EXP/tensorboard`` either way.
        ndcm: charges per atom; must equal ``model.n_dcm`` when given.
        name, output_dir: the experiment folder ``output_dir/name``; default a fresh
            ``experiments/train_model-<n>`` (a new folder per call, like the original,
            which started from random parameters each time).
        console, progress, table_every: as in :func:`dcmnet.training.loop.train_model`.
    Returns:
        ``(params, best_valid_loss)``: EMA parameters of the best validation epoch and
        that epoch's validation loss.
    Raises:
        ConfigError: unknown keywords, ``ndcm`` different from ``model.n_dcm``, no model or
            no data; DataError, TrainingDiverged from training.
    """
    from dcmnet.config import ExperimentConfig, TrainingConfig, provenance
    from dcmnet.data.dataset import Dataset
    from dcmnet.data.prepare import _seed_from_key
    from dcmnet.training.experiment import CONFIG_NAME
    from dcmnet.training.loop import train_model

    valid_keys = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(training) - valid_keys)
    if unknown:
        raise ConfigError(
            f"train_model: unknown keyword(s) {', '.join(unknown)}; accepted are "
            f"{', '.join(_ORIGINAL_ONLY + _EXTRA)} and the TrainingConfig fields "
            f"{', '.join(sorted(valid_keys))}.")
    if model is None:
        raise ConfigError("train_model: give model=create_model(...) (or an ExperimentConfig "
                          "as the first argument).")
    for label, ds in (("train_data", train_data), ("valid_data", valid_data)):
        if not isinstance(ds, Dataset):
            raise ConfigError(f"train_model: {label} must be a dcmnet Dataset (from "
                              "dcmnet.data.prepare_datasets), got "
                              f"{type(ds).__name__}.")
    mcfg = _model_config(model)
    if ndcm is not None and int(ndcm) != mcfg.n_dcm:
        raise ConfigError(f"train_model: ndcm={ndcm} differs from model.n_dcm={mcfg.n_dcm}; "
                          "the model's n_dcm is used by dcmnet, drop ndcm or make them equal.")
    out = Path(output_dir)
    name = name or _fresh_name(out.resolve())
    cfg = ExperimentConfig(name=name, output_dir=str(out), random_seed=_seed_from_key(key),
                           model=mcfg, training=TrainingConfig(**training))
    cfg.validate()
    exp_dir = cfg.experiment_dir
    exp_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(exp_dir / CONFIG_NAME, extra=provenance())

    def to_writer(epoch, row):
        for k, v in row.items():
            if k != "epoch" and isinstance(v, (int, float)):
                writer.add_scalar(k.replace("_", "/", 1) if k.startswith(("train_", "valid_"))
                                  else k, float(v), int(epoch))

    res = train_model(cfg, train_data, valid_data, console=console, progress=progress,
                      table_every=table_every,
                      on_epoch_end=to_writer if writer is not None else None)
    if console is not None:
        console.print(f"experiment folder: {exp_dir}")
    return res.params, res.best_valid_loss


def train_model_dispatch(args: tuple, kwargs: dict):
    """Positional or keyword original form → :func:`train_model_from_model`.

    The original positional order was ``train_model(key, model, train_data, valid_data,
    ...)``.
    """
    names = ("key", "model", "train_data", "valid_data")
    args = tuple(args)
    while args and args[-1] is None:
        args = args[:-1]
    if len(args) > len(names):
        raise ConfigError(f"train_model: at most {len(names)} positional arguments "
                          f"({', '.join(names)}) in the original form; pass the rest by name.")
    for n, v in zip(names, args):
        if n in kwargs:
            raise ConfigError(f"train_model: {n} given twice.")
        kwargs[n] = v
    return train_model_from_model(**kwargs)
