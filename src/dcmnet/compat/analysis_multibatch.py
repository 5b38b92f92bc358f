"""Alias of the original tool's ``analysis_multibatch`` module (see :mod:`dcmnet.analysis`).

``batch_analysis_summary(exp_dir, model, test_data)`` works as in the original (the model
is checked against the experiment's configuration; see
:func:`dcmnet.analysis.batch_analysis_summary`).
"""
from dcmnet.analysis import (analyze_checkpoint, analyze_training_history,  # noqa: F401
                             batch_analysis_summary, compare_checkpoints,
                             export_analysis_report)

__all__ = ["analyze_checkpoint", "compare_checkpoints", "analyze_training_history",
           "batch_analysis_summary", "export_analysis_report"]
