"""How many charges per atom? DCM-net with n_dcm = 1, 2, 3, 4 on the bundled data.

Trains one experiment per ``n_dcm`` (``experiments/ndcm_<n>``; same data, split, seed and
settings otherwise), evaluates all of them on the same validation molecules next to
per-molecule ESP-fitted monopoles, and writes

* ``ndcm_comparison.csv``: one row per model and baseline (ESP RMSE median/mean/all points
  in kcal/(mol·e), dipole MAE in D, parameters, inference time);
* ``ndcm_comparison.png``: the bars of :func:`dcmnet.analysis.plots.plot_checkpoint_comparison`;
* ``ndcm_summary.png``: validation ESP RMSE against n_dcm with the fitted-monopole line.

    python examples/compare_ndcm.py                    # 4 × 200 epochs (30–60 min on 2 CPU cores)
    python examples/compare_ndcm.py --num-epochs 50 --n-dcm 1 2
    python examples/compare_ndcm.py --tiny             # 1 epoch each, tiny models (tests)

Interrupted? Rerun the same command: finished models are skipped, the others resume.
``--tiny`` (or ``DCMNET_TINY=1``) uses 16 bundled conformers and a very small model.
With the command line, the same is ``dcmnet train --name ndcm_3 --n-dcm 3`` (for each n)
followed by ``dcmnet compare experiments/ndcm_1 ... experiments/ndcm_4 --plot FILE.png``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def summary_plot(rows, path: Path, dpi: int = 120) -> Path:
    """ESP RMSE (median and mean over molecules) against n_dcm, with the monopole line."""
    from matplotlib.figure import Figure

    models = [r for r in rows if r["kind"] != "baseline"]
    mono = next((r for r in rows if r["name"] == "fitted monopoles"), None)
    n = [r["n_dcm"] for r in models]
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    ax.plot(n, [r["esp_rmse_median"] for r in models], "o-", label="DCM-net, median")
    ax.plot(n, [r["esp_rmse_mean"] for r in models], "s--", label="DCM-net, mean")
    if mono is not None:
        ax.axhline(mono["esp_rmse_median"], color="#ff7f0e", ls=":",
                   label="fitted monopoles, median")
    ax.set_xticks(n)
    ax.set_xlabel("n_dcm (charges per atom)")
    ax.set_ylabel("validation ESP RMSE [kcal/(mol·e)]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-dcm", type=int, nargs="+", default=[1, 2, 3, 4],
                   help="values of n_dcm to compare")
    p.add_argument("--num-epochs", type=int, default=200)
    p.add_argument("--data-files", nargs="+", default=None,
                   help="ESP data (default: the bundled dataset)")
    p.add_argument("--output-dir", default="experiments")
    p.add_argument("--tiny", action="store_true",
                   default=os.environ.get("DCMNET_TINY") == "1",
                   help="tiny models, 1 epoch, 16 molecules (tests)")
    args = p.parse_args(argv)

    from rich.console import Console

    from dcmnet.analysis import compare_checkpoints, comparison_table, export_analysis_report
    from dcmnet.analysis.plots import plot_checkpoint_comparison
    from dcmnet.training.runner import run_training

    console = Console()
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = dict(num_epochs=args.num_epochs, data_files=args.data_files or [],
                    output_dir=str(out_dir))
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from train_multibatch import tiny_dataset

        settings.update(num_epochs=1, features=8, max_degree=1, num_iterations=1,
                        num_basis_functions=8, batch_size=4)
        settings["data_files"] = settings["data_files"] or [str(tiny_dataset(out_dir))]

    experiments = []
    for n in args.n_dcm:
        console.rule(f"n_dcm = {n}")
        _, _, exp_dir = run_training(f"ndcm_{n}", n_dcm=n, progress=not args.tiny,
                                     table_every=0 if args.tiny else 25, **settings)
        experiments.append(exp_dir)

    # every model on the validation set of the first (the same split: same data and seed)
    rows = compare_checkpoints(experiments)
    console.print(comparison_table(rows, title="n_dcm comparison (validation set)"))
    files = [export_analysis_report(rows, out_dir / "ndcm_comparison.csv"),
             *plot_checkpoint_comparison(rows, out_dir / "ndcm_comparison.png",
                                         dpi=60 if args.tiny else 120).paths,
             summary_plot(rows, out_dir / "ndcm_summary.png", dpi=60 if args.tiny else 120)]
    for f in files:
        console.print(f"wrote {f}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
