"""Run or resume a whole search (:func:`run_study`, the Python twin of ``dcmnet tune``)."""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

from dcmnet.config import create_default_config
from dcmnet.errors import ConfigError
from dcmnet.fileio import atomic_write_json
from dcmnet.tune.objective import make_objective
from dcmnet.tune.results import summarize_study
from dcmnet.tune.space import (SearchSpace, default_search_space, load_search_space,
                               parse_search_space)
from dcmnet.tune.study import _optuna, _redact, _storage_url, count_finished, open_study


@dataclasses.dataclass
class StudyResult:
    """What :func:`run_study` returns."""

    study: Any
    study_dir: Path
    n_finished: int
    best_config_path: Path | None
    files: dict


def _check_study_folder(study_dir: Path, study_name: str) -> None:
    meta = study_dir / "study.json"
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except json.JSONDecodeError:
            return
        if old.get("study_name") not in (None, study_name):
            raise ConfigError(
                f"{study_dir} belongs to study {old['study_name']!r}; its trial folders would "
                f"be overwritten by study {study_name!r}. Choose another --study-dir.")


def run_study(study_name: str, *, n_trials: int = 20, study_dir=None, data_files=None,
              search_space=None, num_epochs: int = 30, timeout: float | None = None,
              storage: str | None = None, seed: int | None = None, prune: bool = True,
              pruner_startup_trials: int = 5, pruner_warmup_epochs: int = 0,
              heartbeat_interval: int = 30, grace_period: int | None = None,
              console=None, plots: bool = True, **overrides) -> StudyResult:
    """Run (or resume) a hyperparameter search until the study has ``n_trials`` finished trials.

    Args:
        study_name: the study's name (in the storage and, by default, the folder name).
        n_trials: finished (complete + pruned) trials wanted in the whole study; a resumed
            run only runs the missing ones, several workers together stop near this number
            (each finishes the trial it is running).
        study_dir: study folder (default ``./studies/<study_name>``).
        data_files: dataset files for every trial (default: the bundled dataset).
        search_space: a :class:`SearchSpace`, a dict (see :func:`parse_search_space`), a
            path to a JSON/YAML file, or None for :data:`DEFAULT_SEARCH_SPACE`.
        num_epochs: epochs per trial.
        timeout: stop starting new trials after this many seconds.
        storage: Optuna RDB URL instead of ``<study_dir>/study.db``.
        seed: sampler seed; prune, pruner_startup_trials, pruner_warmup_epochs,
            heartbeat_interval, grace_period: see :func:`open_study`.
        console: rich console (default stderr).
        plots: write the Optuna figures.
        **overrides: fixed settings for every trial (any ``create_default_config`` name,
            e.g. ``num_train=500, random_seed=1, n_dcm=2``); a searched setting named here
            is fixed instead of searched.
    Returns:
        :class:`StudyResult`.
    Raises:
        OptionalDependencyError: Optuna (or PyYAML for a YAML space) is missing.
        ConfigError: bad search space or settings, a study folder of another study.
        DataError: a missing data file; unreadable data (the running trial is marked FAIL).
        KeyboardInterrupt: Ctrl-C (the running trial is marked FAIL; rerun to resume).
    """
    optuna = _optuna()
    from rich.console import Console

    console = console or Console(stderr=True)
    # our own line per trial replaces Optuna's messages (a failed trial's traceback included)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if int(n_trials) < 0:
        raise ConfigError("--n-trials must be ≥ 0.")
    if not study_name or "/" in study_name:
        raise ConfigError(f"study name {study_name!r} must be a plain name.")
    study_dir = Path(study_dir or Path("studies") / study_name).resolve()

    space = _space_of(search_space)
    settings, space = _trial_settings(overrides, num_epochs, data_files, space, console)
    url = _storage_url(study_dir, storage)
    _check_study_folder(study_dir, study_name)
    study = open_study(study_name, study_dir, storage, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period, prune=prune,
                       pruner_startup_trials=pruner_startup_trials,
                       pruner_warmup_epochs=pruner_warmup_epochs, seed=seed)
    study_dir.mkdir(parents=True, exist_ok=True)
    _record(study, study_dir, study_name, url, space, settings, console)

    _fail_stale(optuna, study)
    from optuna.trial import TrialState
    finished = count_finished(study)
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    remaining = int(n_trials) - finished
    console.print(f"study [bold]{study_name}[/] in {_redact(url)}: {finished} finished"
                  f"{f', {running} running elsewhere' if running else ''}; "
                  f"{max(remaining, 0)} to run ({int(n_trials)} wanted), {num_epochs} epochs "
                  f"each; searching {', '.join(space.searched) or 'nothing'}; ESP RMSE "
                  "in kcal/(mol·e)", highlight=False, soft_wrap=True)
    if remaining > 0:
        objective = make_objective(space, settings, study_dir / "trials", console=console)
        stop = optuna.study.MaxTrialsCallback(int(n_trials),
                                              states=(TrialState.COMPLETE, TrialState.PRUNED))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=remaining, timeout=timeout, callbacks=[stop],
                           gc_after_trial=True)
    _fail_stale(optuna, study)
    files = summarize_study(study, study_dir, console=console, plots=plots)
    return StudyResult(study=study, study_dir=study_dir, n_finished=count_finished(study),
                       best_config_path=files.get("best_config"), files=files)


def _space_of(search_space) -> SearchSpace:
    """The :class:`SearchSpace` of ``run_study``'s argument (None: the default space)."""
    if search_space is None:
        return default_search_space()
    elif isinstance(search_space, SearchSpace):
        return search_space
    elif isinstance(search_space, dict):
        return parse_search_space(search_space)
    else:
        return load_search_space(search_space)


def _trial_settings(overrides, num_epochs, data_files, space, console):
    """``(settings, space)``: the fixed settings of every trial, checked; searched names
    that a flag fixes leave the space."""
    settings = dict(overrides)
    for bad in ("name", "output_dir"):
        if bad in settings:
            raise ConfigError(f"{bad} is set by the study (trial folders are "
                              f"<study_dir>/trials/trial_<n>).")
    settings["num_epochs"] = int(num_epochs)
    if data_files:
        settings["data_files"] = [str(Path(f).resolve()) for f in data_files]
        missing = [f for f in settings["data_files"] if not Path(f).exists()]
        if missing:
            from dcmnet.errors import DataError
            raise DataError(f"{missing[0]}: file not found.")
    create_default_config("settings_check", **settings)     # unknown names, bad values
    fixed_by_flag = [n for n in space.searched if n in settings]
    if fixed_by_flag:
        console.print("fixed by their flags, not searched: " + ", ".join(
            f"{n}={settings[n]}" for n in fixed_by_flag), highlight=False)
        space = space.without(fixed_by_flag)
    return settings, space


def _record(study, study_dir, study_name, url, space, settings, console) -> None:
    """The study's search space and fixed settings, in its user attributes and study.json
    (a note when they differ from the ones it was started with)."""
    record = {"study_name": study_name, "storage": _redact(url),
              "search_space": space.to_dict(), "fixed_settings": settings}
    old = study.user_attrs.get("dcmnet")
    if old and (old.get("search_space"), old.get("fixed_settings")) != (
            record["search_space"], record["fixed_settings"]):
        console.print("[yellow]note:[/] this study was started with another search space or "
                      "other fixed settings; trials of both are compared.")
    study.set_user_attr("dcmnet", record)
    atomic_write_json(study_dir / "study.json", record)


def _fail_stale(optuna, study) -> None:
    """Mark trials whose worker stopped sending heartbeats as failed (quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
