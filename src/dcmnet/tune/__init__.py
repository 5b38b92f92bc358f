"""Hyperparameter search with Optuna (optional extra ``dcmnet[tune]``).

``run_study("s1", n_trials=20, data_files=["data.npz"])`` is the Python twin of
``dcmnet tune --study s1 --n-trials 20 --data-files data.npz``. Each trial is an ordinary
experiment folder ``<study_dir>/trials/trial_<number>/`` trained by
:func:`dcmnet.training.runner.run_training`; its objective is the validation ESP RMSE in
kcal/(mol·e) of the epoch with the lowest validation loss (the ``best`` checkpoint).
Every epoch reports the validation ESP RMSE to Optuna, whose median pruner stops trials that
are worse than the median of earlier trials at the same epoch.

The study lives in ``<study_dir>/study.db`` (SQLite; or any Optuna RDB URL via
``storage``), so an interrupted search resumes with the same command and several processes
or machines can work on one study. ``n_trials`` counts finished (complete + pruned) trials
of the whole study: a resumed run only runs the missing ones. A trial whose process died
(``kill -9``, a lost node) is recognised by its stopped heartbeat, marked FAIL and queued
again with the same parameters.

Search space: a JSON (or YAML) mapping of setting name to a range, a list of choices or a
fixed value; see :func:`parse_search_space` and ``examples/search_space.json``.

Files written to the study folder: ``study.db``, ``study.json`` (name, space, fixed
settings), ``trials.csv`` (all trials), ``best_config.json`` (``dcmnet train --config``),
``optimization_history.png``, ``intermediate_values.png``, ``param_importances.png``.

Modules (lower layers never import higher ones): :mod:`~dcmnet.tune.space` (the search
space) → :mod:`~dcmnet.tune.study` (the Optuna study and its storage),
:mod:`~dcmnet.tune.results` (tables, ``trials.csv``, ``best_config.json``, figures) →
:mod:`~dcmnet.tune.objective` (one experiment per trial) → :mod:`~dcmnet.tune.run`
(:func:`run_study`).
"""
from __future__ import annotations

from dcmnet.tune.objective import make_objective
from dcmnet.tune.results import (best_config, results_table, summarize_study, trial_rows,
                                 write_best_config, write_results_csv, write_study_plots)
from dcmnet.tune.run import StudyResult, run_study
from dcmnet.tune.space import (DEFAULT_SEARCH_SPACE, TUNABLE, ParamSpec, SearchSpace,
                               default_search_space, load_search_space, parse_search_space)
from dcmnet.tune.study import _optuna as _import_optuna
from dcmnet.tune.study import count_finished, open_study

#: ``dcmnet tune`` calls ``tune._optuna()`` for a clear message before any work.
_optuna = _import_optuna

__all__ = [
    "TUNABLE", "DEFAULT_SEARCH_SPACE", "ParamSpec", "SearchSpace", "parse_search_space",
    "load_search_space", "default_search_space", "open_study", "count_finished",
    "make_objective", "run_study", "StudyResult", "trial_rows", "results_table",
    "write_results_csv", "best_config", "write_best_config", "write_study_plots",
    "summarize_study",
]
