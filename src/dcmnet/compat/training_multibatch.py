"""Alias of the original tool's ``training_multibatch`` module.

``train_model_multibatch(config, train_data, valid_data)`` is :func:`dcmnet.training.loop.train_model`
(gradient accumulation, schedules with warmup, EMA and checkpoints are all there); the
schedules are :func:`dcmnet.training.optim.make_schedule`.
"""
from dcmnet.training.optim import make_optimizer, make_schedule  # noqa: F401
from dcmnet.training.loop import TrainResult, train_model  # noqa: F401

train_model_multibatch = train_model

__all__ = ["train_model_multibatch", "train_model", "TrainResult", "make_optimizer",
           "make_schedule"]
