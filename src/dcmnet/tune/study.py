"""The Optuna study of a search: its storage (``<study_dir>/study.db`` or an RDB URL),
heartbeat, retries, pruner and sampler (:func:`open_study`)."""
from __future__ import annotations

import warnings
from pathlib import Path

from dcmnet.errors import ConfigError, OptionalDependencyError


def _optuna():
    """Import Optuna or raise :class:`OptionalDependencyError` with the install line."""
    try:
        import optuna
    except ImportError as exc:
        raise OptionalDependencyError(
            "dcmnet tune needs Optuna: pip install optuna (or the extra: pip install "
            "'dcmnet[tune]')."
        ) from exc
    return optuna


def _storage_url(study_dir: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(Path(study_dir) / 'study.db').resolve()}"


def open_study(study_name: str, study_dir, storage: str | None = None, *,
               heartbeat_interval: int = 30, grace_period: int | None = None,
               prune: bool = True, pruner_startup_trials: int = 5,
               pruner_warmup_epochs: int = 0, seed: int | None = None):
    """Create or load the Optuna study (direction minimize) with heartbeat and median pruner.

    Args:
        study_name: name of the study inside the storage.
        study_dir: folder of ``study.db`` (used when ``storage`` is None).
        storage: an Optuna RDB URL (``sqlite:///path.db``, ``postgresql://...``) shared by
            several machines; default ``sqlite:///<study_dir>/study.db``.
        heartbeat_interval: seconds between a running trial's heartbeats.
        grace_period: seconds without a heartbeat after which a RUNNING trial counts as
            dead: it is marked FAIL and queued again with the same parameters (default
            4 × heartbeat_interval).
        prune: use the median pruner (else never prune).
        pruner_startup_trials: finished trials before pruning starts.
        pruner_warmup_epochs: no pruning before this epoch.
        seed: sampler seed (offset by the number of trials already in the study, so that a
            resumed run does not repeat the first trials' parameters).
    Returns:
        ``optuna.Study``.
    Raises:
        OptionalDependencyError: Optuna is not installed.
        ConfigError: a bad setting, or an existing study of that name that maximizes.
    """
    optuna = _optuna()
    from optuna import storages

    if heartbeat_interval < 1:
        raise ConfigError("--heartbeat-interval must be ≥ 1 s.")
    grace = int(grace_period) if grace_period else 4 * int(heartbeat_interval)
    if grace < heartbeat_interval:
        raise ConfigError("--grace-period must be at least --heartbeat-interval.")
    url = _storage_url(Path(study_dir), storage)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # heartbeat and retries are marked experimental
        retry_cls = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
        kw = ({"heartbeat_stale_trial_callback": retry_cls(max_retry=3)} if retry_cls else
              {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=3)})
        try:
            rdb = storages.RDBStorage(url, engine_kwargs=engine,
                                      heartbeat_interval=int(heartbeat_interval),
                                      grace_period=grace, **kw)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"cannot open the study storage {url!r}: {exc}") from exc
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=int(pruner_startup_trials),
                                          n_warmup_steps=int(pruner_warmup_epochs))
              if prune else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=rdb, study_name=study_name, load_if_exists=True,
                                direction="minimize", pruner=pruner)
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ConfigError(f"study {study_name!r} in {url} maximizes; dcmnet studies minimize "
                          "the validation ESP RMSE. Choose another --study name.")
    n_existing = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(
        seed=None if seed is None else int(seed) + n_existing)
    return study


def count_finished(study) -> int:
    """Number of COMPLETE plus PRUNED trials of the study."""
    from optuna.trial import TrialState
    return len(study.get_trials(deepcopy=False,
                                states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _redact(url: str) -> str:
    """A storage URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url
