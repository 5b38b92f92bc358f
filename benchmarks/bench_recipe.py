"""Accuracy per minute: learning curves of training recipes against the fitted monopoles.

Each candidate recipe (a set of ``dcmnet train`` overrides) is trained on a conformer split
of a dataset for several seeds (the seed sets the split and the initialisation). The curve
of a run is its validation ESP RMSE after every epoch, divided by the ESP RMSE of monopoles
fitted to each validation conformer's own ESP (same points, same aggregate: the RMSE over
all validation points), against cumulative wall time (training + per-epoch validation, as
``training_history.csv`` records it; the first epoch includes compilation). The final
number of a run is the ratio of the per-molecule medians of the final evaluation (EMA
parameters of the best epoch), the number ``dcmnet train`` prints at its end.

Usage (results to JSON, curves to PNG)::

    python benchmarks/bench_recipe.py --candidates deg2-e400 deg1-e660 --seeds 0 1 2 \
        --json scratch/recipe/bundled.json --plot docs/images/recipe_bundled.png

``--data FILE [FILE ...]`` trains on other data (default: the bundled one); ``--list`` shows the
candidates. Timings depend on the machine's load: the script records the 1-minute load
average at the start and end of each run.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

#: The defaults the study started from (before issue 15 changed them to max_degree 1 and
#: 660 epochs): every candidate's overrides apply on top of these, so a candidate means
#: the same recipe whatever the current defaults are.
STUDY_BASE: dict = {"max_degree": 2, "num_epochs": 400}

#: Candidate recipes: overrides of ``run_training`` (fields of the experiment config) on
#: top of :data:`STUDY_BASE`. ``deg2-e400`` is the previous default, ``deg1-e660`` the
#: current one.
CANDIDATES: dict[str, dict] = {
    "deg2-e400": {},
    "e400": {"num_epochs": 400},
    "e600": {"num_epochs": 600},
    "e800": {"num_epochs": 800},
    "e1000": {"num_epochs": 1000},
    "e1000-ema0.999": {"num_epochs": 1000, "ema_decay": 0.999},
    "e1000-ndcm3": {"num_epochs": 1000, "n_dcm": 3},
    "e800-lr2e-2-warm20": {"num_epochs": 800, "learning_rate": 2e-2, "warmup_epochs": 20},
    "e200": {"num_epochs": 200},
    "f64-e200": {"num_epochs": 200, "features": 64},
    "iter3-e200": {"num_epochs": 200, "num_iterations": 3},
    "f16-e200": {"num_epochs": 200, "features": 16},
    "deg1-e200": {"num_epochs": 200, "max_degree": 1},
    "deg1-e330": {"num_epochs": 330, "max_degree": 1},
    "deg1-e660": {"num_epochs": 660, "max_degree": 1},
    "deg1-e1650": {"num_epochs": 1650, "max_degree": 1},
    "deg1-e330-rmse": {"num_epochs": 330, "max_degree": 1, "esp_w": 0.0, "esp_rmse_w": 1.0},
    "deg1-e1650-rmse": {"num_epochs": 1650, "max_degree": 1, "esp_w": 0.0,
                        "esp_rmse_w": 1.0},
    "deg1-e1650-minlr0": {"num_epochs": 1650, "max_degree": 1, "min_lr_factor": 0.0},
    "deg1-e1650-ndcm3": {"num_epochs": 1650, "max_degree": 1, "n_dcm": 3},
    "deg1-iter3-e1100": {"num_epochs": 1100, "max_degree": 1, "num_iterations": 3},
    "onecycle-e200": {"num_epochs": 200, "learning_rate": 2e-2, "warmup_epochs": 60},
    "chg0.1-e200": {"num_epochs": 200, "chg_w": 0.1},
    "bs4-e200": {"num_epochs": 200, "batch_size": 4},
    "lr1e-2": {"learning_rate": 1e-2},
    "lr2e-2": {"learning_rate": 2e-2},
    "lr1e-2-e400": {"learning_rate": 1e-2, "num_epochs": 400},
    "lr1e-2-e600": {"learning_rate": 1e-2, "num_epochs": 600},
    "lr1e-2-bs8": {"learning_rate": 1e-2, "batch_size": 8},
    "lr1e-2-ndcm3": {"learning_rate": 1e-2, "n_dcm": 3},
    "lr1e-2-e400-ndcm3": {"learning_rate": 1e-2, "num_epochs": 400, "n_dcm": 3},
    "lr2e-3": {"learning_rate": 2e-3},
    "bs8": {"batch_size": 8},
    "bs32": {"batch_size": 32},
    "ema0.999": {"ema_decay": 0.999},
    "ema0.9": {"ema_decay": 0.9},
    "noema": {"use_ema": False},
    "minlr0.01": {"min_lr_factor": 0.01},
    "warm10": {"warmup_epochs": 10},
    "chg0.1": {"chg_w": 0.1},
    "f64": {"features": 64},
    "iter3": {"num_iterations": 3},
    "ndcm1": {"n_dcm": 1},
    "ndcm3": {"n_dcm": 3},
    "ndcm4": {"n_dcm": 4},
}


def _fitted_monopole_rmse(exp_dir: Path) -> float:
    """Overall ESP RMSE [kcal/(mol·e)] of fitted monopoles on the validation conformers."""
    from dcmnet.data.loader import load_dataset
    from dcmnet.training.evaluate import fitted_monopole_errors

    cfg = json.loads((exp_dir / "config.json").read_text())
    split = json.loads((exp_dir / "split.json").read_text())
    data = load_dataset(cfg.get("data_files") or None, verbose=False)
    valid = data.subset(np.asarray(split["valid"], np.int64))
    err = fitted_monopole_errors(valid)
    n = valid.n_grid.astype(np.float64)
    return float(math.sqrt(np.sum(n * err["esp_rmse"] ** 2) / n.sum()))


def run_one(name: str, overrides: dict, seed: int, data: list[str] | None, out: Path) -> dict:
    """Train one candidate with one seed; return its curve and final numbers."""
    from dcmnet.training.runner import run_training

    exp = f"{name}_s{seed}"
    kw = dict(overrides)
    if data:
        kw["data_files"] = list(data)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_training(name=exp, output_dir=str(out), random_seed=seed, overwrite=True,
                 progress=False, table_every=0, **kw)
    wall = time.perf_counter() - t0
    exp_dir = out / exp
    with open(exp_dir / "training_history.csv") as fh:
        rows = list(csv.DictReader(fh))
    t = np.cumsum([float(r["time_s"]) for r in rows])
    rmse = np.array([float(r["valid_esp_rmse"]) for r in rows])
    mono = _fitted_monopole_rmse(exp_dir)
    ev = json.loads((exp_dir / "analysis" / "validation_evaluation.json").read_text())
    final = ev["esp_rmse_kcal_mol_e"]["median"] / ev["fitted_monopole_esp_rmse_kcal_mol_e"]["median"]
    return {"candidate": name, "seed": seed, "overrides": overrides,
            "time_s": t.tolist(), "ratio_curve": (rmse / mono).tolist(),
            "final_median_ratio": float(final),
            "final_median_rmse": float(ev["esp_rmse_kcal_mol_e"]["median"]),
            "monopole_median_rmse": float(ev["fitted_monopole_esp_rmse_kcal_mol_e"]["median"]),
            "train_wall_s": wall, "load_start": load0, "load_end": os.getloadavg()[0]}


def plot(results: list[dict], path: Path, title: str, epoch_s: dict | None = None,
         xlabel: str = "wall time [s] (2 CPU cores)") -> None:
    """Ratio-to-monopoles curves against wall time, median over seeds with min–max band.

    ``epoch_s``: candidate → seconds per epoch measured on a quiet machine; such curves use
    epochs × that instead of the recorded (load-dependent) time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(dict.fromkeys(r["candidate"] for r in results))
    for name in names:
        runs = [r for r in results if r["candidate"] == name]
        n = min(len(r["time_s"]) for r in runs)
        t = np.median([r["time_s"][:n] for r in runs], axis=0)
        if epoch_s and name in epoch_s:
            t = np.arange(1, n + 1) * float(epoch_s[name])
        y = np.array([r["ratio_curve"][:n] for r in runs])
        line, = ax.plot(t, np.median(y, 0), label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(t, y.min(0), y.max(0), color=line.get_color(), alpha=0.2)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.axhline(0.45, color="grey", lw=0.8, ls=":")
    ax.set(xlabel=xlabel, ylabel="valid ESP RMSE / fitted monopoles",
           ylim=(0.3, 1.5), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", nargs="+", default=["deg1-e660"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--data", nargs="+", default=None,
                    help="dataset file(s) (default: the bundled data)")
    ap.add_argument("--out", default="scratch/recipe", help="experiment folders go here")
    ap.add_argument("--json", default=None, help="append results to this JSON file")
    ap.add_argument("--plot", default=None, help="write the curves of --json to this PNG")
    ap.add_argument("--title", default="learning curves")
    ap.add_argument("--xlabel", default="wall time [s] (2 CPU cores)",
                    help="x-axis label of --plot (say how the runs were timed)")
    ap.add_argument("--epoch-seconds", nargs="*", default=[], metavar="CANDIDATE=S",
                    help="quiet-machine seconds per epoch: the plot's time axis becomes "
                         "epochs × S for that candidate")
    ap.add_argument("--label", nargs="*", default=[], metavar="CANDIDATE=TEXT",
                    help="legend text of a candidate")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra overrides applied to every candidate (JSON values)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for k, v in CANDIDATES.items():
            print(f"{k:14s} {v}")
        return 0
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    out = Path(args.out)
    results = []
    if args.json and Path(args.json).exists():
        results = json.loads(Path(args.json).read_text())
    done = {(r["candidate"], r["seed"]) for r in results}
    for name in args.candidates:
        if name not in CANDIDATES:
            sys.exit(f"unknown candidate {name!r}; --list shows them")
        for seed in args.seeds:
            if (name, seed) in done:
                continue
            r = run_one(name, {**STUDY_BASE, **CANDIDATES[name], **extra}, seed,
                        args.data, out)
            results.append(r)
            print(f"{name:14s} seed {seed}: final median ratio {r['final_median_ratio']:.3f} "
                  f"({r['final_median_rmse']:.3f} vs {r['monopole_median_rmse']:.3f}), "
                  f"{r['time_s'][-1]:.0f} s training, load {r['load_start']:.1f}→"
                  f"{r['load_end']:.1f}", flush=True)
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(args.json + ".tmp")
                tmp.write_text(json.dumps(results))
                tmp.replace(args.json)
    for name in dict.fromkeys(r["candidate"] for r in results):
        f = [r["final_median_ratio"] for r in results if r["candidate"] == name]
        t = [r["time_s"][-1] for r in results if r["candidate"] == name]
        print(f"{name:14s} final ratio {np.mean(f):.3f} ± {np.std(f):.3f} over {len(f)} seeds, "
              f"{np.mean(t):.0f} s")
    if args.plot:
        labels = dict(a.split("=", 1) for a in args.label)
        results = [dict(r) for r in results if r["candidate"] in args.candidates]
        for r in results:
            r["candidate"] = labels.get(r["candidate"], r["candidate"])
        epoch_s = {labels.get(k, k): float(v)
                   for k, v in (a.split("=", 1) for a in args.epoch_seconds)}
        plot(results, Path(args.plot), args.title, epoch_s, args.xlabel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
