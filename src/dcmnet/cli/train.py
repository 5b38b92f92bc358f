"""``dcmnet train`` and ``dcmnet evaluate`` (flag names of the original train_runner).

The settings flags of ``train`` are generated from the config dataclasses
(:mod:`dcmnet.cli.config_flags`); only the run options are written here.
"""
from __future__ import annotations

import argparse

from dcmnet.cli.config_flags import (add_config_flags, config_fields, config_overrides,
                                     field_type, flag_name, help_text)

BOOL = argparse.BooleanOptionalAction

#: Config fields ``dcmnet train`` handles itself (``--name`` goes to ``run_training(name)``).
OWN_FIELDS = ("name",)
#: (flag, help) of the boolean settings, each with its ``--no-`` twin (from the config).
SWITCHES = [(flag_name(f), help_text(f)) for _, f in config_fields()
            if field_type(f) is bool]


def add_parsers(sub) -> None:
    """Register ``train`` and ``evaluate``."""
    p = sub.add_parser(
        "train", help="train DCM-net (default data: the bundled dataset)",
        description="Train DCM-net. Rerunning the same command resumes from the latest "
                    "checkpoint. Every setting can also come from --config FILE.")
    add_config_flags(p)
    run = p.add_argument_group("run options (not saved in the config)")
    run.add_argument("--config", default=None, metavar="FILE",
                     help="config.json to start from (--preset, then flags override it)")
    run.add_argument("--restart-checkpoint", default=None, metavar="PATH",
                     help="continue from an experiment folder or a checkpoint folder "
                          "(e.g. experiments/NAME/checkpoints/latest)")
    run.add_argument("--overwrite", action="store_true",
                     help="delete an existing experiment of this name and start fresh")
    run.add_argument("--progress", action=BOOL, default=True, help="progress bars")
    run.add_argument("--table-every", type=int, default=10,
                     help="print the full per-epoch table every N epochs and at the end, one "
                          "compact line for the other epochs (default 10; 0: neither)")
    run.add_argument("--stop-after-epochs", type=int, default=None, metavar="N",
                     help="stop after N epochs of this run (job time limits); rerun to continue")
    run.add_argument("--mlflow", action=BOOL, default=False,
                     help="also log to MLflow (local file store ./OUTPUT_DIR/mlruns; "
                          "needs dcmnet[tracking])")
    run.add_argument("--mlflow-uri", default=None, metavar="URI",
                     help="MLflow tracking URI (implies --mlflow), e.g. sqlite:///mlflow.db")
    run.add_argument("--verbose", action=BOOL, default=False,
                     help="show the first batch and predictions as lovely-jax summaries")
    run.add_argument("--distributed", action=BOOL, default=False,
                     help="multi-host: call jax.distributed.initialize() first (see "
                          "docs/training.md)")
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="per-molecule ESP errors of a trained model vs "
                                        "fitted monopoles")
    e.add_argument("experiment", help="experiment folder or checkpoint folder")
    e.add_argument("--data-files", nargs="+", default=None, metavar="FILE",
                   help="data to evaluate on (default: the experiment's validation set)")
    e.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    e.add_argument("--json", default=None, metavar="OUT", help="write the summary as JSON to OUT ('-': stdout, as without --json)")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--fit-dcm", action=BOOL, default=False,
                   help="also fit the DCM limit per molecule (slow) and report the ratio to it")
    e.add_argument("--fit-dcm-steps", type=int, default=None, metavar="N",
                   help="L-BFGS iterations of that fit (default 300)")
    e.set_defaults(func=run_evaluate)


def _overrides(args) -> dict:
    """Config field → value of the config flags given (``--name`` excepted)."""
    return config_overrides(args, skip=OWN_FIELDS)


def run_train(args) -> int:
    from dcmnet.config import ExperimentConfig
    from dcmnet.training.runner import run_training

    if args.distributed:
        import jax
        jax.distributed.initialize()
    from rich.console import Console

    config = ExperimentConfig.load(args.config) if args.config else None
    # normal output (header, epoch lines and tables, summary) on stdout; errors and
    # warnings on stderr, so 'dcmnet train > log' keeps the run's record
    run_training(args.name, config=config, restart_checkpoint=args.restart_checkpoint,
                 console=Console(),
                 overwrite=args.overwrite, progress=args.progress,
                 table_every=args.table_every, stop_after_epochs=args.stop_after_epochs,
                 mlflow=args.mlflow_uri or args.mlflow, verbose=args.verbose, **_overrides(args))
    return 0


def run_evaluate(args) -> int:
    from rich.console import Console

    from dcmnet.data.loader import load_dataset
    from dcmnet.data.split import load_split
    from dcmnet.training.evaluate import evaluate_model, summary_table, write_json
    from dcmnet.training.experiment import SPLIT_NAME, find_experiment_dir, load_experiment

    console = Console(stderr=True)
    if args.json and args.json != "-":
        from pathlib import Path

        from dcmnet.fileio import check_folder
        check_folder(Path(args.json).parent, "--json path")
    cfg, model, params, meta = load_experiment(args.experiment, kind=args.checkpoint)
    if args.data_files:
        data = load_dataset(args.data_files, verbose=True)
        what = ", ".join(args.data_files)
    else:
        exp_dir = find_experiment_dir(args.experiment)
        full = load_dataset(cfg.data_files or None, verbose=False)
        data = full.subset(load_split(exp_dir / SPLIT_NAME, len(full)).valid)
        what = "the experiment's validation set"
    summary = evaluate_model(model, params, data, batch_size=args.batch_size,
                             fit_dcm=args.fit_dcm, fit_dcm_steps=args.fit_dcm_steps)
    summary["checkpoint_epoch"] = int(meta.get("epoch", -1))
    console.print(summary_table(summary, title=f"{cfg.name} on {what}"))
    if args.json and args.json != "-":
        write_json(summary, args.json)
        console.print(f"wrote {args.json}")
    else:
        import json
        print(json.dumps(summary, indent=2))
    return 0
