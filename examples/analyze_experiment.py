"""Analysis of a trained experiment: errors, baselines, history, exports, pictures.

For the experiment's best checkpoint on its validation set (or on ``--data-files``):

1. ESP RMSE/MAE per molecule, by the element of the closest atom and by vdW shell, next to
   per-molecule ESP-fitted monopoles and the data's reference charges
   (:func:`dcmnet.analysis.analyze_checkpoint`);
2. the five molecules with the largest ESP RMSE;
3. the training history with its diagnosis (still improving / plateau / overfitting);
4. the standard files under ``EXP/analysis/`` (``best_analysis.json``, ``predictions.csv``,
   ``by_element.csv``, ``by_shell.csv``, ``training_history.csv``) plus CSV/Parquet tables
   (:func:`dcmnet.analysis.batch_analysis_summary`);
5. the ``best`` and ``latest`` checkpoints side by side (:func:`compare_checkpoints`);
6. all pictures under ``EXP/plots/`` (:func:`dcmnet.analysis.plots.make_all_plots`).

    python examples/analyze_experiment.py experiments/demo
    python examples/analyze_experiment.py experiments/demo --data-files other.npz
    python examples/analyze_experiment.py experiments/demo --tiny   # quick (tests)

``--tiny`` (or ``DCMNET_TINY=1``) draws small static pictures only, and when the
experiment folder does not exist trains a tiny one there first (1 epoch, 16 molecules).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", nargs="?", default="experiments/demo",
                   help="experiment folder (default experiments/demo)")
    p.add_argument("--data-files", nargs="+", default=None,
                   help="data to analyse (default: the experiment's validation set)")
    p.add_argument("--tiny", action="store_true",
                   default=os.environ.get("DCMNET_TINY") == "1",
                   help="small pictures; train a tiny experiment if it is missing (tests)")
    args = p.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from dcmnet.analysis import (analysis_table, analyze_checkpoint, batch_analysis_summary,
                                 compare_checkpoints, comparison_table, history_table)
    from dcmnet.analysis.plots import make_all_plots

    console = Console()
    exp = Path(args.experiment)
    if not (exp / "config.json").exists():
        if not args.tiny:
            console.print(f"{exp}: no experiment there; train one first, e.g. "
                          f"dcmnet train --name {exp.name} --output-dir {exp.parent}")
            return 2
        from train_multibatch import tiny_dataset  # noqa: E402 - the sibling example

        from dcmnet.training.runner import run_training
        exp.parent.mkdir(parents=True, exist_ok=True)
        run_training(exp.name, output_dir=str(exp.parent), num_epochs=1,
                     data_files=[str(tiny_dataset(exp.parent))], features=8, max_degree=1,
                     num_iterations=1, num_basis_functions=8, batch_size=4, progress=False)

    # 1. errors next to the point-charge baselines on the same points
    res = analyze_checkpoint(exp, args.data_files)
    console.print(analysis_table(res))

    # 2. the worst molecules
    rows = sorted(res.per_molecule_rows(), key=lambda r: -r["dcmnet_esp_rmse"])
    worst = Table(title="largest DCM-net ESP errors [kcal/(mol·e)]", title_justify="left")
    for c in ("index", "name", "net charge", "DCM-net RMSE", "fitted monopoles RMSE"):
        worst.add_column(c, justify="left" if c == "name" else "right")
    for r in rows[:5]:
        worst.add_row(str(r["index"]), str(r["name"]), f"{r['net_charge']:+g}",
                      f"{r['dcmnet_esp_rmse']:.3f}", f"{r['fitted_monopoles_esp_rmse']:.3f}")
    console.print(worst)

    # 3. + 4. history, diagnosis and the files under EXP/analysis/
    have = {m: importlib.util.find_spec(m) is not None for m in ("pandas", "pyarrow", "plotly")}
    # Parquet needs pandas + pyarrow, HTML pictures plotly: pip install 'dcmnet[analysis]'
    formats = ["csv", "parquet"] if have["pandas"] and have["pyarrow"] else ["csv"]
    out = batch_analysis_summary(exp, args.data_files, analysis=res, formats=formats)
    if out["history"] is not None:
        console.print(history_table(out["history"]))
    for f in out["files"]:
        console.print(f"wrote {f}", highlight=False)

    # 5. best and latest checkpoints on the same molecules (baselines once)
    cmp_rows = compare_checkpoints([exp, exp / "checkpoints" / "latest"], args.data_files)
    console.print(comparison_table(cmp_rows, title="best vs latest checkpoint"))

    # 6. pictures (static PNG; rotatable HTML of the 3D ones with plotly)
    html = have["plotly"] and not args.tiny
    for f in make_all_plots(exp, args.data_files, analysis=res, html=html,
                            dpi=50 if args.tiny else 120):
        console.print(f"wrote {f}", highlight=False)
    return 0


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
