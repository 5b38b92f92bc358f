"""Analysis of a model or a trained checkpoint: :func:`analyze_model`,
:func:`analyze_checkpoint` and the data they evaluate (:func:`resolve_data`)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dcmnet.analysis.metrics import analyze_predictions
from dcmnet.analysis.predictions import predict_dataset
from dcmnet.analysis.result import DEFAULT_SHELL_EDGES, CheckpointAnalysis
from dcmnet.data.dataset import Dataset
from dcmnet.errors import CheckpointError, DataError


def analyze_model(model, params, data: Dataset, *, batch_size: int = 16,
                  baselines: bool = True, shell_edges=DEFAULT_SHELL_EDGES,
                  source: str = "<model>", checkpoint: dict | None = None,
                  esp_chunk_size: int | None = None) -> CheckpointAnalysis:
    """:func:`predict_dataset` followed by :func:`analyze_predictions`."""
    from dcmnet.model import count_parameters

    pred = predict_dataset(model, params, data, batch_size, esp_chunk_size)
    return analyze_predictions(data, pred, baselines=baselines, shell_edges=shell_edges,
                               source=source, checkpoint=checkpoint,
                               n_parameters=count_parameters(params))


def resolve_data(exp_dir, data=None, verbose: bool = False) -> tuple[Dataset, str]:
    """The dataset to analyse and a description of it.

    Args:
        exp_dir: experiment folder (used when ``data`` is None).
        data: a :class:`Dataset`, one path or a list of paths, or None for the experiment's
            validation molecules (its ``split.json`` applied to its training data).
    Raises:
        DataError, CheckpointError.
    """
    if isinstance(data, Dataset):
        return data, data.source
    from dcmnet.data.loader import load_dataset

    if data is not None and not (isinstance(data, (list, tuple)) and len(data) == 0):
        ds = load_dataset(data, verbose=verbose)
        return ds, ds.source
    from dcmnet.config import ExperimentConfig
    from dcmnet.data.split import load_split
    from dcmnet.training.experiment import CONFIG_NAME, SPLIT_NAME, find_experiment_dir

    from dcmnet.models import card_of

    exp = find_experiment_dir(exp_dir)
    if card_of(exp) is not None:
        raise DataError(f"{exp.name} is a shipped model and carries no data: give the ESP "
                        "data to analyse (--data-files FILE, or data=...).")
    cfg = ExperimentConfig.load(exp / CONFIG_NAME)
    full = load_dataset(cfg.data_files or None, verbose=verbose)
    if not (exp / SPLIT_NAME).exists():
        raise CheckpointError(f"{exp}: no {SPLIT_NAME}; pass the data to analyse explicitly.")
    split = load_split(exp / SPLIT_NAME, len(full))
    return full.subset(split.valid), f"validation set of {exp.name}"


def analyze_checkpoint(exp_dir_or_checkpoint, data=None, *, kind: str = "best",
                       batch_size: int = 16, baselines: bool = True,
                       shell_edges: Sequence[float] = DEFAULT_SHELL_EDGES,
                       esp_chunk_size: int | None = None) -> CheckpointAnalysis:
    """Analyse a trained checkpoint on ESP data.

    Args:
        exp_dir_or_checkpoint: experiment folder (``kind`` picks ``best`` or ``latest``) or
            a checkpoint folder inside it (``EXP/checkpoints/best/12``).
        data: :class:`Dataset`, path(s) of ESP files, or None for the experiment's
            validation set.
        batch_size: molecules per forward pass.
        baselines: evaluate fitted monopoles and reference ``mono`` charges on the same
            points.
        shell_edges: bins of the vdW-scaled distance of the points.
        esp_chunk_size: grid points per ESP chunk (memory), None = all.
    Returns:
        :class:`CheckpointAnalysis` (ESP in kcal/(mol·e), dipoles in D, charges in e).
    Raises:
        CheckpointError: no experiment or checkpoint; DataError: bad data.
    """
    from dcmnet.training.experiment import find_experiment_dir, load_experiment

    cfg, model, params, meta = load_experiment(exp_dir_or_checkpoint, kind=kind)
    ds, what = resolve_data(find_experiment_dir(exp_dir_or_checkpoint), data)
    res = analyze_model(model, params, ds, batch_size=batch_size, baselines=baselines,
                        shell_edges=shell_edges, esp_chunk_size=esp_chunk_size,
                        source=str(Path(exp_dir_or_checkpoint)),
                        checkpoint={"kind": kind, "epoch": int(meta.get("epoch", -1)),
                                    "name": cfg.name})
    res.data_source = what
    return res


def model_config_mismatches(model, exp_dir) -> list[str]:
    """Architecture settings where ``model`` differs from an experiment's configuration.

    Args:
        model: a :class:`dcmnet.model.DCMNet` (or any object with the
            :class:`~dcmnet.config.ModelConfig` field names as attributes).
        exp_dir: an experiment folder (or a checkpoint folder / shipped model name in it).
    Returns:
        ``["n_dcm (model 7, experiment 2)", ...]``; empty when they agree. Attributes the
        model lacks are reported too.
    Raises:
        CheckpointError: no experiment at ``exp_dir``.
    """
    import dataclasses

    from dcmnet.config import ExperimentConfig
    from dcmnet.training.experiment import CONFIG_NAME, find_experiment_dir

    cfg = ExperimentConfig.load(find_experiment_dir(exp_dir) / CONFIG_NAME)
    out = []
    for k, v in dataclasses.asdict(cfg.model).items():
        mv = getattr(model, k, "missing")
        if mv != v:
            out.append(f"{k} (model {mv}, experiment {v})")
    return out
