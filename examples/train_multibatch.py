"""Multi-batch training: gradient accumulation and a cosine learning-rate schedule.

Micro-batches of 4 molecules, 4 of them accumulated per optimizer update (every update
sees 16 molecules: the same update as ``--batch-size 16``, with a quarter of the memory),
5 warmup epochs, then a cosine decay to 1 % of the peak learning rate; EMA parameters for
validation and the ``best`` checkpoint; periodic checkpoints every 10 epochs. The schedule,
warmup and EMA count optimizer updates, not micro-batches.

    python examples/train_multibatch.py                        # bundled data, 100 epochs
    python examples/train_multibatch.py --data-files my_esp.npz --num-epochs 300
    python examples/train_multibatch.py --tiny                 # a smoke run of ~1 minute

Rerunning the same command resumes from the newest checkpoint. The same training from the
command line:

    dcmnet train --name multibatch --num-epochs 100 --batch-size 4 \\
        --gradient-accumulation-steps 4 --lr-schedule-type cosine --warmup-epochs 5 \\
        --min-lr-factor 0.01

``--tiny`` (or the environment variable ``DCMNET_TINY=1``) trains a very small model for 3
epochs on 16 bundled conformers; the tests use it.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def tiny_dataset(folder: Path) -> Path:
    """16 bundled conformers (water, methanol, acetate −1, methylammonium +1) as an NPZ."""
    import numpy as np

    from dcmnet.data import Dataset, bundled_dataset_path

    ds = Dataset.load(bundled_dataset_path())
    idx = np.concatenate([np.flatnonzero(ds.name == n)[:4]
                          for n in ("water", "methanol", "acetate", "methylammonium")])
    return ds.subset(idx).save(folder / "tiny_esp.npz")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="multibatch", help="experiment name")
    p.add_argument("--output-dir", default="experiments", help="parent folder of experiments")
    p.add_argument("--data-files", nargs="+", default=None,
                   help="ESP data (default: the bundled dataset)")
    p.add_argument("--num-epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=4, help="molecules per micro-batch")
    p.add_argument("--accumulation", type=int, default=4,
                   help="micro-batches per optimizer update")
    p.add_argument("--learning-rate", type=float, default=5e-3, help="peak learning rate")
    p.add_argument("--warmup-epochs", type=int, default=5)
    p.add_argument("--tiny", action="store_true",
                   default=os.environ.get("DCMNET_TINY") == "1",
                   help="tiny model, 3 epochs, 16 molecules (tests)")
    args = p.parse_args(argv)

    from dcmnet.analysis import analyze_training_history, history_table
    from dcmnet.config import create_default_config
    from dcmnet.training.runner import run_training
    from rich.console import Console

    console = Console()
    model = {}
    data_files = args.data_files or []
    if args.tiny:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        data_files = data_files or [str(tiny_dataset(Path(args.output_dir)))]
        model = dict(features=8, max_degree=1, num_iterations=1, num_basis_functions=8)
        args.num_epochs, args.warmup_epochs = 3, 1

    config = create_default_config(
        args.name, output_dir=args.output_dir, data_files=data_files,
        num_epochs=args.num_epochs, batch_size=args.batch_size,
        gradient_accumulation_steps=args.accumulation, learning_rate=args.learning_rate,
        use_lr_schedule=True, lr_schedule_type="cosine", warmup_epochs=args.warmup_epochs,
        min_lr_factor=0.01, use_ema=True, ema_decay=0.99, use_grad_clip=True,
        grad_clip_norm=2.0, save_every_n_epochs=10, **model)
    console.print(f"effective batch: {args.batch_size} molecules × {args.accumulation} "
                  f"micro-batches = {args.batch_size * args.accumulation} molecules per "
                  "update", highlight=False)

    params, best_valid_loss, exp_dir = run_training(
        config=config, progress=not args.tiny, table_every=1 if args.tiny else 10)

    # the learning rate per epoch shows the warmup and the cosine decay
    hist = analyze_training_history(exp_dir)
    console.print(history_table(hist, every=max(1, hist["n_epochs"] // 20)))
    lrs = [r["lr"] for r in hist["rows"]]
    console.print(f"learning rate: peak {max(lrs):.2e}, last {lrs[-1]:.2e} "
                  f"({lrs[-1] / max(lrs):.1%} of the peak)", highlight=False)
    console.print(f"best validation loss {best_valid_loss:.4g} at epoch {hist['best_epoch']}; "
                  f"{hist['diagnosis']}", highlight=False)
    console.print(f"experiment folder: {exp_dir}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
