"""Alias of the original tool's ``training_config`` module (see :mod:`dcmnet.config`)."""
from dcmnet.config import (ExperimentConfig, ModelConfig, TrainingConfig,  # noqa: F401
                           create_default_config)

__all__ = ["ModelConfig", "TrainingConfig", "ExperimentConfig", "create_default_config"]
