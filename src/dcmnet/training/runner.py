"""One-call training: data, split, experiment folder, training, final evaluation.

``run_training(name="demo", num_epochs=50, n_dcm=2)`` is the Python twin of
``dcmnet train --name demo --num-epochs 50 --n-dcm 2``.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path


from dcmnet.config import ExperimentConfig, apply_overrides, provenance
from dcmnet.data.prepare import prepare_datasets  # noqa: F401  (public name)
from dcmnet.errors import ConfigError, DataError
from dcmnet.training.experiment import CONFIG_NAME, LOCK_NAME, SPLIT_NAME, experiment_lock
from dcmnet.fileio import check_folder


def _check_compatible(old: ExperimentConfig, new: ExperimentConfig, exp_dir: Path) -> list[str]:
    """Differences that forbid resuming raise; harmless ones are returned as notes."""
    fatal = []
    m_old, m_new = dataclasses.asdict(old.model), dataclasses.asdict(new.model)
    fatal += [f"{k} ({m_old[k]} there, {m_new[k]} now)" for k in m_new if m_old[k] != m_new[k]]
    for k in ("data_files", "num_train", "num_valid", "split_by", "random_seed"):
        if getattr(old, k) != getattr(new, k):
            fatal.append(f"{k} ({getattr(old, k)} there, {getattr(new, k)} now)")
    if fatal:
        raise ConfigError(
            f"{exp_dir} already holds an experiment with a different {', '.join(fatal)}. "
            "Choose another --name, or pass --overwrite to replace it.")
    t_old, t_new = dataclasses.asdict(old.training), dataclasses.asdict(new.training)
    notes = [f"{k}: {t_old[k]} -> {t_new[k]}" for k in t_new if t_old.get(k) != t_new[k]]
    if t_old.get("num_epochs") != t_new["num_epochs"]:
        notes.append(f"the learning-rate schedule now spans {t_new['num_epochs']} epochs instead "
                     f"of {t_old.get('num_epochs')}, so this run differs from one straight "
                     f"{t_new['num_epochs']}-epoch run (to split one run into pieces keep "
                     "--num-epochs and use --stop-after-epochs N)")
    return notes


def run_training(name: str | None = None, *, config: ExperimentConfig | None = None,
                 restart_checkpoint=None, overwrite: bool = False, progress: bool = True,
                 console=None, table_every: int = 1, stop_after_epochs: int | None = None,
                 mlflow: bool | str = False, verbose: bool = False, on_epoch_end=None,
                 **overrides):
    """Train DCM-net end to end and evaluate it against fitted monopoles.

    Args:
        name: experiment name (folder ``output_dir/name``); default the config's or "dcmnet".
        config: a full :class:`ExperimentConfig`; keyword ``overrides`` are applied on top
            (:func:`dcmnet.config.apply_overrides`; ``preset="accurate"`` applies a
            :data:`dcmnet.config.PRESETS` entry beneath the other overrides).
        restart_checkpoint: continue from this experiment/checkpoint folder.
        overwrite: delete an existing experiment of this name first.
        progress: progress bars; ``table_every``: per-epoch table interval.
        stop_after_epochs, mlflow, verbose, on_epoch_end: see
            :func:`dcmnet.training.loop.train_model`.
        **overrides: any field of ExperimentConfig/ModelConfig/TrainingConfig
            (``num_epochs=50, n_dcm=3, data_files=[...]``).
    Returns:
        ``(params, best_valid_loss, experiment_dir)``.
    Raises:
        ConfigError, DataError, TrainingDiverged.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    name = name or (config.name if config is not None else "dcmnet")
    cfg = apply_overrides(config, name=name, **overrides)
    exp_dir = check_folder(cfg.experiment_dir, "--output-dir / --name")
    from dcmnet.data.loader import load_dataset

    # the data is read and checked before the experiment folder exists: bad data never
    # leaves an empty folder (with its .lock) behind
    data = load_dataset(cfg.data_files or None, verbose=True)
    created = not exp_dir.exists()
    try:
        with experiment_lock(exp_dir):
            return _run_locked(cfg, exp_dir, console=console, overwrite=overwrite,
                               restart_checkpoint=restart_checkpoint, progress=progress,
                               table_every=table_every, stop_after_epochs=stop_after_epochs,
                               mlflow=mlflow, verbose=verbose, on_epoch_end=on_epoch_end,
                               data=data)
    except (ConfigError, DataError):
        if created and exp_dir.is_dir() and {p.name for p in exp_dir.iterdir()} <= {
                LOCK_NAME, SPLIT_NAME, CONFIG_NAME}:
            shutil.rmtree(exp_dir, ignore_errors=True)
        raise


def _run_locked(cfg: ExperimentConfig, exp_dir: Path, *, console, overwrite,
                restart_checkpoint, progress, table_every, stop_after_epochs, mlflow,
                verbose, on_epoch_end, data):
    from dcmnet.training.checkpoint import CheckpointStore
    from dcmnet.data.split import load_split, save_split, split_indices
    from dcmnet.training.evaluate import evaluate_model, summary_table, write_json
    from dcmnet.training.loop import train_model

    if overwrite:
        for child in exp_dir.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    write_config = True
    if (exp_dir / CONFIG_NAME).exists():
        old = ExperimentConfig.load(exp_dir / CONFIG_NAME)
        notes = _check_compatible(old, cfg, exp_dir)
        done = max(CheckpointStore(exp_dir).steps("latest") or [0])
        if done >= cfg.training.num_epochs:
            write_config = False
            if notes:
                console.print(f"{exp_dir} is finished ({done} epochs); changed settings "
                              f"({'; '.join(notes)}) are ignored and config.json is kept.")
        elif notes:
            console.print(f"continuing {exp_dir} with changed training settings: "
                          + "; ".join(notes))

    split_path = exp_dir / SPLIT_NAME
    if split_path.exists():
        split = load_split(split_path, n_molecules=len(data))
        tr, va = split.train, split.valid
    else:
        tr, va = split_indices(len(data), cfg.num_train, cfg.num_valid, seed=cfg.random_seed,
                               groups=data.name if cfg.split_by == "molecule" else None)
        if len(va) == 0:
            raise ConfigError("no molecules left for validation; lower --num-train or give "
                              "--num-valid ≥ 1.")
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_split(split_path, tr, va, cfg.random_seed)
    if write_config:
        cfg.save(exp_dir / CONFIG_NAME, extra=provenance())
    train, valid = data.subset(tr), data.subset(va)

    result = train_model(cfg, train, valid, resume_from=restart_checkpoint, console=console,
                         progress=progress, table_every=table_every,
                         stop_after_epochs=stop_after_epochs, mlflow=mlflow, verbose=verbose,
                         on_epoch_end=on_epoch_end)
    if len(result.history) < cfg.training.num_epochs:
        return result.params, result.best_valid_loss, exp_dir

    from dcmnet.model import create_model
    model = create_model(**dataclasses.asdict(cfg.model))
    summary = evaluate_model(model, result.params, valid, batch_size=cfg.training.batch_size)
    summary["best_epoch"] = result.best_epoch
    write_json(summary, exp_dir / "analysis" / "validation_evaluation.json")
    console.print(summary_table(summary, title=f"validation set, best epoch "
                                               f"{result.best_epoch}"))
    e = summary["esp_rmse_kcal_mol_e"]["median"]
    m = summary["fitted_monopole_esp_rmse_kcal_mol_e"]["median"]
    verdict = "better than" if e < m else "NOT better than"
    console.print(f"validation ESP RMSE (median over molecules): DCM-net {e:.3f} vs fitted "
                  f"monopoles {m:.3f} kcal/(mol·e): {verdict} the point-charge baseline.")
    console.print(f"experiment folder: {exp_dir}")
    return result.params, result.best_valid_loss, exp_dir
