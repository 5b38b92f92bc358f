"""``dcmnet tune``: hyperparameter search with Optuna (extra ``dcmnet[tune]``).

Imports neither Optuna nor JAX until the command runs.
"""
from __future__ import annotations

import argparse

from dcmnet.cli.config_flags import add_config_flags, config_overrides

BOOL = argparse.BooleanOptionalAction
#: Config fields without a generated flag here: the study names and places the trial
#: folders, ``--num-epochs`` and ``--data-files`` are tune's own (default 30 epochs), and
#: a search sets its settings itself instead of taking a preset.
TUNE_OWN_FIELDS = ("name", "output_dir", "num_epochs", "data_files", "preset")


def add_parsers(sub) -> None:
    """Register ``tune``."""
    p = sub.add_parser(
        "tune", help="hyperparameter search (Optuna; pip install 'dcmnet[tune]')",
        description="Search hyperparameters with Optuna. Each trial is a normal experiment "
                    "folder STUDY_DIR/trials/trial_<n>; bad trials are pruned on the "
                    "validation ESP RMSE (median pruner). The study is kept in "
                    "STUDY_DIR/study.db: rerun the same command to resume, or start it on "
                    "several processes/machines sharing that file (or --storage URL). "
                    "--n-trials counts finished trials of the whole study. Any training flag "
                    "fixes that setting for all trials.")
    p.add_argument("--study", default=None, metavar="NAME",
                   help="study name (required; resume by giving the same name)")
    p.add_argument("--data-files", nargs="+", default=None, metavar="FILE",
                   help="dataset files (canonical or mmml-style NPZ; default: bundled data)")
    p.add_argument("--n-trials", type=int, default=20, metavar="N",
                   help="finished (complete + pruned) trials wanted in the study (default 20)")
    p.add_argument("--study-dir", default=None, metavar="DIR",
                   help="study folder (default ./studies/NAME)")
    p.add_argument("--search-space", default=None, metavar="FILE",
                   help="search space, .json (or .yaml with PyYAML); default: the built-in "
                        "space (see --show-search-space, examples/search_space.json)")
    p.add_argument("--show-search-space", action="store_true",
                   help="print the search space (default or --search-space) as JSON and exit")
    p.add_argument("--num-epochs", type=int, default=30,
                   help="epochs per trial (default 30)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="start no new trial after this many seconds")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna RDB URL instead of STUDY_DIR/study.db, e.g. "
                        "postgresql://user:pw@host/db or sqlite:////shared/s.db")
    p.add_argument("--seed", type=int, default=None, help="sampler seed (default random)")
    p.add_argument("--prune", action=BOOL, default=True,
                   help="stop bad trials early with the median pruner (default on)")
    p.add_argument("--pruner-startup-trials", type=int, default=5, metavar="N",
                   help="finished trials before pruning starts (default 5)")
    p.add_argument("--pruner-warmup-epochs", type=int, default=0, metavar="N",
                   help="no pruning before epoch N (default 0)")
    p.add_argument("--heartbeat-interval", type=int, default=30, metavar="SECONDS",
                   help="heartbeat of running trials (default 30 s)")
    p.add_argument("--grace-period", type=int, default=None, metavar="SECONDS",
                   help="a RUNNING trial without heartbeat for this long is failed and "
                        "retried (default 4 × heartbeat interval)")
    p.add_argument("--plots", action=BOOL, default=True,
                   help="write Optuna history/importance figures (default on)")
    add_config_flags(p, skip=TUNE_OWN_FIELDS, note=", fixed for all trials")
    p.set_defaults(func=run_tune)


def _fixed(args) -> dict:
    """Config field → value of the config flags given: fixed for every trial."""
    return config_overrides(args, skip=TUNE_OWN_FIELDS)


def run_tune(args) -> int:
    import json

    from dcmnet import tune

    if args.show_search_space:
        space = (tune.load_search_space(args.search_space) if args.search_space
                 else tune.default_search_space())
        print(json.dumps(space.to_dict(), indent=2))
        return 0
    if not args.study:
        from dcmnet.errors import ConfigError
        raise ConfigError("dcmnet tune needs --study NAME (the same name resumes a study).")
    tune._optuna()          # a clear message before any work when Optuna is missing
    tune.run_study(args.study, n_trials=args.n_trials, study_dir=args.study_dir,
                   data_files=args.data_files, search_space=args.search_space,
                   num_epochs=args.num_epochs, timeout=args.timeout, storage=args.storage,
                   seed=args.seed, prune=args.prune,
                   pruner_startup_trials=args.pruner_startup_trials,
                   pruner_warmup_epochs=args.pruner_warmup_epochs,
                   heartbeat_interval=args.heartbeat_interval,
                   grace_period=args.grace_period, plots=args.plots, **_fixed(args))
    return 0
