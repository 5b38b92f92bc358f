"""Alias of the original tool's ``training`` module: ``train_model`` in both call forms.

``from dcmnet.compat.training import train_model`` accepts the config form
(``train_model(config, train_data, valid_data)`` → :class:`~dcmnet.training.loop.TrainResult`,
i.e. :func:`dcmnet.training.loop.train_model`) and the original keyword or positional form
(``train_model(key=..., model=..., ...)`` → ``(params, best_valid_loss)``, i.e.
:func:`dcmnet.compat.train_model_from_model`); see docs/coming_from_mmml.md.
"""
from __future__ import annotations

from dcmnet.config import ExperimentConfig
from dcmnet.training.loop import TrainingDiverged, TrainResult  # noqa: F401
from dcmnet.training.reporting import epoch_table
from dcmnet.training.loop import train_model as _train_config

__all__ = ["train_model", "TrainResult", "TrainingDiverged", "epoch_table"]


def train_model(config=None, train_data=None, valid_data=None, *original_args, **kwargs):
    """:func:`dcmnet.training.loop.train_model` when ``config`` is an
    :class:`~dcmnet.config.ExperimentConfig`, otherwise the original tool's form
    (:func:`dcmnet.compat.train_model_dispatch`; positional order ``key, model, train_data,
    valid_data``).

    Returns:
        :class:`~dcmnet.training.loop.TrainResult` (config form) or ``(params,
        best_valid_loss)`` (original form).
    Raises:
        ConfigError: unknown keywords, mismatching ``ndcm``, missing model or data.
    """
    from dcmnet import compat

    if isinstance(config, ExperimentConfig):
        return _train_config(config, train_data, valid_data, *original_args, **kwargs)
    for k, v in (("console", None), ("progress", True), ("table_every", 1)):
        kwargs.setdefault(k, v)                 # the defaults of the config form
    pos = (config, train_data, valid_data, *original_args) if config is not None else ()
    if config is None:
        kwargs.update({k: v for k, v in (("train_data", train_data),
                                         ("valid_data", valid_data)) if v is not None})
    return compat.train_model_dispatch(pos, kwargs)
