"""Alias of the original tool's ``training`` module: :func:`dcmnet.train.train_model`.

``from dcmnet.training import train_model`` accepts both the config form
(``train_model(config, train_data, valid_data)`` → :class:`~dcmnet.train.TrainResult`) and
the original keyword form (``train_model(key=..., model=..., ...)`` →
``(params, best_valid_loss)``); see docs/coming_from_mmml.md.
"""
from dcmnet.train import TrainingDiverged, TrainResult, epoch_table, train_model  # noqa: F401

__all__ = ["train_model", "TrainResult", "TrainingDiverged", "epoch_table"]
