"""``dcmnet train`` and ``dcmnet evaluate`` (flag names of the original train_runner)."""
from __future__ import annotations

import argparse

BOOL = argparse.BooleanOptionalAction

#: (flag, type, help) of settings that map 1:1 onto config fields (dest = field name).
SETTINGS = [
    ("--output-dir", str, "parent folder of experiments (default ./experiments)"),
    ("--random-seed", int, "seed of split, data order and initial parameters (default 42)"),
    ("--num-train", int, "training molecules (default: all but ~10 %%)"),
    ("--num-valid", int, "validation molecules (default: ~10 %%)"),
    ("--split-by", str, "conformer (default) or molecule: validate on molecules never seen "
                        "in training"),
    ("--n-dcm", int, "distributed charges per atom (default 2)"),
    ("--features", int, "feature channels (default 32)"),
    ("--max-degree", int, "highest irrep degree (default 2)"),
    ("--num-iterations", int, "message-passing blocks (default 2)"),
    ("--num-basis-functions", int, "radial basis functions (default 16)"),
    ("--cutoff", float, "message-passing cutoff in Å (default 4.0)"),
    ("--max-atomic-number", int, "largest element the model embeds (default 18)"),
    ("--max-displacement", float, "max. distance of a charge from its atom, Å (default 1.0)"),
    ("--num-epochs", int, "epochs (default 200)"),
    ("--batch-size", int, "molecules per micro-batch (default 16)"),
    ("--learning-rate", float, "peak learning rate (default 5e-3)"),
    ("--gradient-accumulation-steps", int, "micro-batches per optimizer update (default 1)"),
    ("--esp-w", float, "weight of the ESP loss, per (kcal/(mol·e))² (default 1)"),
    ("--chg-w", float, "weight of the atomic-charge loss vs 'mono', per e² (default 0)"),
    ("--dipole-w", float, "weight of the dipole loss, per D² (default 0)"),
    ("--grad-clip-norm", float, "global gradient-norm clip (default 2.0)"),
    ("--lr-schedule-type", str, "constant | cosine | exponential | step (default cosine)"),
    ("--warmup-epochs", int, "linear warmup epochs (default 2)"),
    ("--min-lr-factor", float, "floor of the schedule as a fraction of the peak (default 0.05)"),
    ("--decay-rate", float, "decay factor of exponential/step schedules (default 0.1)"),
    ("--ema-decay", float, "EMA decay of the parameters used for validation (default 0.99)"),
    ("--save-every-n-epochs", int, "periodic checkpoint interval (default 10)"),
    ("--keep-checkpoints", int, "periodic checkpoints kept (default 3)"),
    ("--esp-chunk-size", int, "grid points per ESP chunk, 0 = all at once (default 0)"),
    ("--init-from", str, "fine-tune: start from the parameters of this experiment folder, "
                         "checkpoint folder or shipped model (fresh optimizer, schedule, EMA)"),
]
SWITCHES = [
    ("--use-grad-clip", "clip gradients by global norm (default on)"),
    ("--use-lr-schedule", "use the learning-rate schedule (default on)"),
    ("--use-ema", "validate and save EMA parameters (default on)"),
    ("--data-parallel", "split each batch over all JAX devices (default on)"),
]


def add_parsers(sub) -> None:
    """Register ``train`` and ``evaluate``."""
    p = sub.add_parser(
        "train", help="train DCM-net (default data: the bundled dataset)",
        description="Train DCM-net. Rerunning the same command resumes from the latest "
                    "checkpoint. Every setting can also come from --config FILE.")
    p.add_argument("--name", default=None, help="experiment name (default 'dcmnet')")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="config.json to start from (flags override it)")
    p.add_argument("--data-files", nargs="+", default=None, metavar="FILE",
                   help="dataset files or folders in any supported format (see dcmnet inspect; "
                        "default: the bundled data)")
    for flag, typ, hlp in SETTINGS:
        p.add_argument(flag, type=typ, default=None, help=hlp)
    for flag, hlp in SWITCHES:
        p.add_argument(flag, action=BOOL, default=None, help=hlp)
    p.add_argument("--freeze", nargs="+", default=None, metavar="GROUP",
                   choices=("embed", "message", "all-but-head", "head"),
                   help="with --init-from: parameter groups kept fixed (embed, message, "
                        "all-but-head, head)")
    p.add_argument("--restart-checkpoint", default=None, metavar="PATH",
                   help="continue from an experiment folder or a checkpoint folder "
                        "(e.g. experiments/NAME/checkpoints/latest)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete an existing experiment of this name and start fresh")
    p.add_argument("--progress", action=BOOL, default=True, help="progress bars")
    p.add_argument("--table-every", type=int, default=10,
                   help="print the full per-epoch table every N epochs and at the end, one "
                        "compact line for the other epochs (default 10; 0: neither)")
    p.add_argument("--stop-after-epochs", type=int, default=None, metavar="N",
                   help="stop after N epochs of this run (job time limits); rerun to continue")
    p.add_argument("--mlflow", action=BOOL, default=False,
                   help="also log to MLflow (local file store ./OUTPUT_DIR/mlruns; "
                        "needs dcmnet[tracking])")
    p.add_argument("--mlflow-uri", default=None, metavar="URI",
                   help="MLflow tracking URI (implies --mlflow), e.g. sqlite:///mlflow.db")
    p.add_argument("--verbose", action=BOOL, default=False,
                   help="show the first batch and predictions as lovely-jax summaries")
    p.add_argument("--distributed", action=BOOL, default=False,
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
    out = {}
    for flag, _, _ in SETTINGS:
        v = getattr(args, flag[2:].replace("-", "_"))
        if v is not None:
            out[flag[2:].replace("-", "_")] = v
    for flag, _ in SWITCHES:
        v = getattr(args, flag[2:].replace("-", "_"))
        if v is not None:
            out[flag[2:].replace("-", "_")] = v
    if args.data_files is not None:
        out["data_files"] = list(args.data_files)
    if getattr(args, "freeze", None):
        out["freeze"] = list(args.freeze)
    return out


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
