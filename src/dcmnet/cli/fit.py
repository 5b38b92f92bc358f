"""``dcmnet fit-dcm``: the fitted-DCM limit of ESP data (:mod:`dcmnet.fitting_dcm`).

Imports are lazy: parsing the command line imports no JAX.
"""
from __future__ import annotations


def add_parsers(sub) -> None:
    """Register ``fit-dcm``."""
    from dcmnet.config import FIT_DCM_STEPS as DEFAULT_STEPS, ModelConfig

    DEFAULT_MAX_DISPLACEMENT = ModelConfig().max_displacement

    p = sub.add_parser(
        "fit-dcm", help="the fitted-DCM limit: charges and sites fitted to each conformer's ESP",
        description="Fit n_dcm charges per atom (values and positions, net charge exact, "
                    "distance from the atom bounded) directly to each conformer's own ESP: "
                    "the limit a DCM-net with that n_dcm can reach. Prints median/mean ESP "
                    "RMSE of the fitted monopoles and of the fitted DCM per molecule and "
                    "overall, and writes fit_dcm.json and fit_dcm.csv (per conformer).")
    p.add_argument("files", nargs="+", metavar="DATA", help="ESP data files (any dcmnet format)")
    p.add_argument("--n-dcm", type=int, default=2, metavar="K", help="charge sites per atom")
    p.add_argument("--max-displacement", type=float, default=DEFAULT_MAX_DISPLACEMENT,
                   metavar="Å", help="bound on a site's distance from its atom (default: the "
                                     "model's, %(default)s Å)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, metavar="N",
                   help="L-BFGS iterations per conformer (default %(default)s)")
    p.add_argument("--max-conformers", type=int, default=None, metavar="N",
                   help="fit only the first N conformers of each molecule name (quick look)")
    p.add_argument("--batch-size", type=int, default=16, help="conformers per vmapped fit")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", default="fit_dcm", metavar="DIR",
                     help="folder for fit_dcm.json and fit_dcm.csv (default ./fit_dcm)")
    out.add_argument("--json", default=None, metavar="FILE",
                     help="write only the JSON summary to FILE ('-': stdout)")
    p.add_argument("--progress", action=__import__("argparse").BooleanOptionalAction,
                   default=True, help="show a progress bar")
    p.set_defaults(func=run_fit_dcm)


def _first_conformers(data, n: int):
    import numpy as np

    from dcmnet.errors import ConfigError
    if n < 1:
        raise ConfigError(f"--max-conformers must be ≥ 1, got {n}.")
    keep = [i for name in dict.fromkeys(data.name)
            for i in np.flatnonzero(data.name == name)[:n]]
    return data.subset(sorted(keep))


def fit_summary(data, res: dict) -> dict:
    """JSON summary of :func:`dcmnet.fitting_dcm.fit_dcm_dataset`: settings, overall and
    per-molecule ``{median, mean}`` ESP RMSE (kcal/(mol·e)) of monopoles and DCM, and the
    ratio of the medians (DCM/monopoles)."""
    import numpy as np

    def block(sel):
        m, d = res["esp_rmse_monopoles"][sel], res["esp_rmse_dcm"][sel]
        return {"n_conformers": int(sel.sum()),
                "fitted_monopoles": {"median": float(np.median(m)), "mean": float(np.mean(m))},
                "fitted_dcm": {"median": float(np.median(d)), "mean": float(np.mean(d))},
                "ratio_of_medians": float(np.median(d) / np.median(m))}

    allsel = np.ones(len(data), bool)
    return {"n_dcm": res["n_dcm"], "max_displacement_angstrom": res["max_displacement"],
            "steps": res["steps"], "data": data.source,
            "units": {"esp_rmse": "kcal/(mol*e)"}, "overall": block(allsel),
            "max_net_charge_error_e": float(np.max(res["net_charge_error"])),
            "max_site_distance_angstrom": float(np.max(res["max_site_distance"])),
            "per_molecule": {str(n): block(data.name == n) for n in dict.fromkeys(data.name)}}


def summary_table(summary: dict):
    """A rich table (≤ 80 columns): per molecule and overall median/mean ESP RMSE."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"fitted DCM, n_dcm {summary['n_dcm']} (|d| < "
                           f"{summary['max_displacement_angstrom']} Å), ESP RMSE in "
                           "kcal/(mol·e), median (mean)"), title_justify="left")
    for c, j in (("molecule", "left"), ("conf.", "right"), ("monopoles", "right"),
                 ("DCM", "right"), ("DCM/mono", "right")):
        t.add_column(c, justify=j)

    def row(name, b, **kw):
        m, d = b["fitted_monopoles"], b["fitted_dcm"]
        t.add_row(escape(name[:18]), str(b["n_conformers"]),
                  f"{m['median']:.3f} ({m['mean']:.3f})", f"{d['median']:.3f} ({d['mean']:.3f})",
                  f"{b['ratio_of_medians']:.3f}", **kw)

    for name, b in summary["per_molecule"].items():
        row(name, b)
    t.add_section()
    row("all", summary["overall"], style="bold")
    return t


def run_fit_dcm(args) -> int:
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dcmnet.data.loader import load_dataset
    from dcmnet.fileio.tables import write_csv, write_json
    from dcmnet.fileio import check_folder
    from dcmnet.fitting_dcm import _check_options, fit_dcm_dataset

    _check_options(args.n_dcm, args.max_displacement, args.steps)
    if args.json and args.json != "-":
        check_folder(Path(args.json).parent, "--json path")
    elif not args.json:
        check_folder(args.out, "--out folder")
    console = Console(stderr=True)
    data = load_dataset(args.files, verbose=True)
    if args.max_conformers is not None:
        data = _first_conformers(data, args.max_conformers)
    with Progress(TextColumn("fit-dcm"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not args.progress) as bar:
        task = bar.add_task("fit", total=len(data))
        res = fit_dcm_dataset(data, args.n_dcm, args.max_displacement, args.steps,
                              batch_size=args.batch_size,
                              progress=lambda n: bar.advance(task, n))
    summary = fit_summary(data, res)
    console.print(summary_table(summary))
    if args.json == "-":
        print(json.dumps(summary, indent=2))
        return 0
    if args.json:
        console.print(f"wrote {write_json(summary, args.json)}", highlight=False)
        return 0
    rows = [{"index": i, "molecule": str(data.name[i]), "n_atoms": int(data.n_atoms[i]),
             "net_charge": float(data.net_charge[i]),
             "esp_rmse_monopoles": float(res["esp_rmse_monopoles"][i]),
             "esp_rmse_dcm": float(res["esp_rmse_dcm"][i]), "ratio": float(res["ratio"][i]),
             "net_charge_error": float(res["net_charge_error"][i]),
             "max_site_distance": float(res["max_site_distance"][i])} for i in range(len(data))]
    out = Path(args.out)
    for f in (write_json(summary, out / "fit_dcm.json"),
              write_csv(rows, out / "fit_dcm.csv")):
        console.print(f"wrote {f}", highlight=False)
    return 0
