"""``dcmnet analyze``, ``compare``, ``plot`` and ``predict`` (imports are lazy: no JAX at
parse time)."""
from __future__ import annotations

import argparse

BOOL = argparse.BooleanOptionalAction


_EXPERIMENT_HELP = "experiment folder or checkpoint folder"


def _add_source(p, data_help: str, *, many: bool = False) -> None:
    """The arguments ``analyze``, ``compare`` and ``plot`` share: the experiment (``many``:
    one or more), ``--data-files`` (help ``data_help``) and ``--checkpoint``."""
    if many:
        p.add_argument("experiments", nargs="+", help="experiment or checkpoint folders")
    else:
        p.add_argument("experiment", help=_EXPERIMENT_HELP)
    p.add_argument("--data-files", nargs="+", default=None, metavar="FILE", help=data_help)
    p.add_argument("--checkpoint", choices=("best", "latest"), default="best")


def _add_analyze(sub) -> None:
    a = sub.add_parser(
        "analyze", help="ESP errors by molecule, element and shell vs baselines; writes "
                        "EXP/analysis/",
        description="Analyse a trained checkpoint: per-molecule ESP RMSE/MAE, breakdowns by "
                    "the element of the closest atom and by vdW shell, dipole and net-charge "
                    "errors, next to reference mono charges and per-molecule ESP-fitted "
                    "monopoles. Writes EXP/analysis/best_analysis.json, predictions.csv, "
                    "training_history.csv, by_element.csv, by_shell.csv.")
    _add_source(a, "data to analyse (default: the experiment's validation set)")
    a.add_argument("--format", nargs="+", default=["json"], dest="formats",
                   choices=("json", "csv", "parquet", "pkl"),
                   help="extra report formats best_analysis.<fmt> (json always written)")
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--top", type=int, default=10, metavar="N",
                   help="list the N molecules with the largest DCM-net ESP RMSE, worst first "
                        "(default 10; 0: none; all molecules are in predictions.csv)")
    a.add_argument("--fit-dcm", action=BOOL, default=False,
                   help="also fit the DCM limit per molecule (slow); summary.fitted_dcm in "
                        "best_analysis.json holds it and the model's ratio to it")
    a.add_argument("--fit-dcm-steps", type=int, default=None, metavar="N",
                   help="L-BFGS iterations of that fit (default 300)")
    a.set_defaults(func=run_analyze)


def _add_compare(sub) -> None:
    c = sub.add_parser("compare", help="one table row per checkpoint on the same data",
                       description="Compare checkpoints (n_dcm, parameters, ESP and dipole "
                                   "errors, inference time) on the same molecules, with the "
                                   "point-charge baselines.")
    _add_source(c, "data (default: the first experiment's validation set)", many=True)
    c.add_argument("--out", default=None, metavar="FILE",
                   help="also write the table (.csv, .json, .parquet or .pkl)")
    c.add_argument("--plot", default=None, metavar="FILE.png",
                   help="also draw the comparison bars")
    c.add_argument("--batch-size", type=int, default=16)
    c.add_argument("--baselines", action=BOOL, default=True,
                   help="add fitted-monopole and reference-charge rows")
    c.set_defaults(func=run_compare)


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="training curves, parity, error maps, charges (EXP/plots/)",
                       description="Draw the pictures of an experiment under EXP/plots/: "
                                   "training curves, and with data (default: validation set) "
                                   "ESP parity, error histogram, surface ESP maps, charge "
                                   "sites in 3D, per-element and per-shell errors.")
    _add_source(p, "data (default: the experiment's validation set)")
    p.add_argument("--format", nargs="+", default=["png"], dest="formats",
                   choices=("png", "pdf"), help="static formats (default png)")
    p.add_argument("--html", action=BOOL, default=None,
                   help="interactive HTML (plotly) for the 3D pictures (default: when plotly "
                        "is installed, else skipped with a warning; --html without plotly "
                        "is an error)")
    p.add_argument("--embed-plotlyjs", action="store_true",
                   help="embed plotly.js in each HTML file (about 4.5 MB; viewable offline) "
                        "instead of loading it from the plotly CDN")
    p.add_argument("--molecule", type=int, default=None,
                   help="index of the molecule for the surface and charge pictures "
                        "(default: the median-error molecule)")
    p.add_argument("--history-only", action="store_true",
                   help="only the training curves (no model evaluation)")
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(func=run_plot)


def _add_predict(sub) -> None:
    r = sub.add_parser("predict", help="charges, dipoles and ESPs for structure files",
                       description="Predict distributed charges for structures read with ASE "
                                   "(xyz, extxyz, sdf, pdb, ...). Writes predictions.extxyz "
                                   "(atoms + charge sites X), predictions.json, "
                                   "predictions_sites.csv, predictions_frames.csv and "
                                   "predictions.dcm (plain text: atom charge x y z per site, "
                                   "e and Å), and predictions_esp.npz with --esp.")
    r.add_argument("experiment", help=_EXPERIMENT_HELP)
    r.add_argument("--structures", nargs="+", required=True, metavar="FILE",
                   help="structure files read with ASE (xyz, extxyz, sdf, pdb, ...); SDF/MOL "
                        "formal charges (M  CHG) give the net charge")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder")
    r.add_argument("--checkpoint", choices=("best", "latest"), default="best",
                   help="which checkpoint of the experiment to use (default best)")
    r.add_argument("--charge", type=float, default=None,
                   help="net charge of every structure, e (default: from the file: extxyz "
                        "'charge=', SDF formal charges; else 0, refused for an odd electron "
                        "count)")
    r.add_argument("--fragment-charges", default=None, metavar="Q1,Q2,...",
                   type=_charge_list,
                   help="net charge of each disconnected fragment (covalent connectivity, in "
                        "order of the fragments' first atoms), e, for every structure, e.g. "
                        "'0,1' for a water and a Na+ (default: SDF formal charges or "
                        "atoms.info['fragment_charges']; else only the total is constrained)")
    r.add_argument("--index", default=":", help="ASE frame selection, e.g. ':' or '::10'")
    r.add_argument("--esp", action=BOOL, default=False,
                   help="ESP on generated vdW-shell points (predictions_esp.npz)")
    r.add_argument("--formats", nargs="+", default=["extxyz", "json", "csv", "dcm"],
                   choices=("extxyz", "json", "csv", "dcm"),
                   help="output files to write (default: all four)")
    r.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    r.add_argument("--progress", action=BOOL, default=True,
                   help="show a progress bar (default on)")
    r.set_defaults(func=run_predict)


def add_parsers(sub) -> None:
    """Register ``analyze``, ``compare``, ``plot`` and ``predict``."""
    for add in (_add_analyze, _add_compare, _add_plot, _add_predict):
        add(sub)


def _console():
    from rich.console import Console
    return Console(stderr=True)


def run_analyze(args) -> int:
    from dcmnet.analysis import analysis_table, batch_analysis_summary, history_table, resolve_data
    from dcmnet.training.experiment import find_experiment_dir

    console = _console()
    from dcmnet.analysis import analyze_checkpoint

    exp = find_experiment_dir(args.experiment)
    data, what = resolve_data(exp, args.data_files, verbose=True)
    res = analyze_checkpoint(args.experiment, data, kind=args.checkpoint,
                             batch_size=args.batch_size)
    res.data_source = what
    if args.fit_dcm:                  # the limit rides in the summary (best_analysis.json)
        from dcmnet.config import ExperimentConfig
        from dcmnet.training.evaluate import fitted_dcm_summary
        from dcmnet.training.experiment import CONFIG_NAME

        m = ExperimentConfig.load(exp / CONFIG_NAME).model.max_displacement
        fd = fitted_dcm_summary(data, res.per_molecule["dcmnet_esp_rmse"], res.n_dcm, m,
                                args.fit_dcm_steps, args.batch_size)
        res.summary["fitted_dcm"] = fd
        console.print(f"fitted-DCM limit (n_dcm {fd['n_dcm']}): median ESP RMSE "
                      f"{fd['esp_rmse_kcal_mol_e']['median']:.4f} kcal/(mol·e), "
                      f"{fd['ratio_to_monopoles']:.3f} × fitted monopoles; DCM-net / limit "
                      f"= {fd['model_ratio_to_fitted_dcm']:.3f}", highlight=False)
    out = batch_analysis_summary(exp, analysis=res, formats=args.formats)
    console.print(analysis_table(res))
    from dcmnet.analysis.tables import worst_molecules_table
    if args.top > 0:
        csv_path = next((f for f in out["files"] if str(f).endswith("predictions.csv")), None)
        console.print(worst_molecules_table(res, n=args.top, csv_path=csv_path))
    if out["history"] is not None:
        console.print(history_table(out["history"]))
    for f in out["files"]:
        console.print(f"wrote {f}", highlight=False)
    return 0


def run_compare(args) -> int:
    from dcmnet.analysis import compare_checkpoints, comparison_table, export_analysis_report

    console = _console()
    rows = compare_checkpoints(args.experiments, args.data_files, kind=args.checkpoint,
                               batch_size=args.batch_size, baselines=args.baselines)
    console.print(comparison_table(rows, width=console.width))
    if args.out:
        export_analysis_report(rows, args.out)
        console.print(f"wrote {args.out}", highlight=False)
    if args.plot:
        from dcmnet.analysis.plots import plot_checkpoint_comparison
        for f in plot_checkpoint_comparison(rows, args.plot).paths:
            console.print(f"wrote {f}", highlight=False)
    return 0


def run_plot(args) -> int:
    from dcmnet.errors import OptionalDependencyError
    from dcmnet.analysis.plot_style import _plotly, plotly_available
    from dcmnet.analysis.plots import make_all_plots

    console = _console()
    html = args.html and not args.history_only
    if args.html is None and not args.history_only:
        html = plotly_available()
        if not html:
            console.print("HTML pictures skipped: pip install 'dcmnet[analysis]' for "
                          "interactive 3D", style="yellow", markup=False, highlight=False)
    elif html:
        try:
            _plotly()                      # explicit --html: a clear error before any work
        except OptionalDependencyError as exc:
            raise OptionalDependencyError(
                "--html needs plotly: pip install 'dcmnet[analysis]' (or drop --html / "
                "pass --no-html for PNG/PDF only).") from exc
    files = make_all_plots(args.experiment, args.data_files, kind=args.checkpoint,
                           formats=tuple(args.formats), html=bool(html),
                           molecule=args.molecule, dpi=args.dpi, batch_size=args.batch_size,
                           evaluate=not args.history_only,
                           include_plotlyjs=True if args.embed_plotlyjs else "cdn")
    for f in files:
        console.print(f"wrote {f}", highlight=False)
    return 0


def _charge_list(text: str) -> list[float]:
    """``'0,1'`` → ``[0.0, 1.0]`` (argparse type of ``--fragment-charges``)."""
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give comma-separated numbers, e.g. 0,1") from None


def run_predict(args) -> int:
    from dcmnet.fileio import check_folder
    from dcmnet.inference.predict import Predictor
    from dcmnet.inference.results import write_predictions
    from dcmnet.inference.structures import read_structures

    check_folder(args.out, "--out folder")
    console = _console()
    frames = read_structures(args.structures, index=args.index)
    pred = Predictor.from_experiment(args.experiment, kind=args.checkpoint,
                                     batch_size=args.batch_size)
    res = pred.predict(frames, charge=args.charge, esp=args.esp, progress=args.progress,
                       console=console, fragment_charges=args.fragment_charges)
    files = write_predictions(res, args.out, formats=args.formats)
    console.print(f"{len(res)} structure{'s' if len(res) != 1 else ''}, {int(res.n_atoms.sum())} atoms, n_dcm "
                  f"{pred.n_dcm}: {len(res) / res.seconds:.1f} frames/s", highlight=False)
    for f in files:
        console.print(f"wrote {f}", highlight=False)
    return 0
