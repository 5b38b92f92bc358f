"""``dcmnet inspect`` and ``dcmnet convert``: see what dcmnet makes of ESP files, and write
the canonical dataset.

``dcmnet inspect FILE...`` prints, per file, the detected format and every decision of the
readers (fields, shapes, units, net charges, warnings) and a summary: molecules, elements,
atoms and grid points per molecule, net charges, ESP range, reference charges/dipoles.
``dcmnet convert FILE... --out data.npz`` reads and checks the same files and writes one
canonical dataset (or the mmml/extxyz/HDF5 layouts with ``--format``); ``--format npy-dir``
writes a folder of uncompressed ``.npy`` arrays that training reads memory-mapped (datasets
larger than memory; each FILE argument is read and appended in turn).
"""
from __future__ import annotations

import argparse
import sys

FORMATS_OUT = ("canonical", "mmml", "extxyz", "hdf5", "npy-dir")


def _add_read_options(p) -> None:
    g = p.add_argument_group("reading options")
    g.add_argument("--length-unit", default=None, metavar="UNIT",
                   help="unit of all lengths in the files, overriding the format's own: "
                        "angstrom | bohr | nm")
    g.add_argument("--esp-unit", default=None, metavar="UNIT",
                   help="unit of the ESP values: hartree (Hartree/e) | kcal/mol | kj/mol | "
                        "volt")
    g.add_argument("--net-charge", type=float, default=None, metavar="Q",
                   help="net charge (e) of molecules whose files do not state it (cube, "
                        "espot, orca_vpot, psi4 with an xyz geometry)")
    g.add_argument("--cube-mode", choices=("shells", "outside"), default="shells",
                   help="cube points kept: on the vdW shells (default) or all points outside "
                        "--cube-min-scale × r_vdW")
    g.add_argument("--cube-shells", type=float, nargs="+", default=None, metavar="S",
                   help="vdW scale factors of the shells (default 1.4 1.6 1.8 2.0)")
    g.add_argument("--cube-min-scale", type=float, default=1.4, metavar="S",
                   help="inner vdW scale for --cube-mode outside (default 1.4)")
    g.add_argument("--cube-max-points", type=int, default=None, metavar="N",
                   help="keep at most N cube points per molecule (evenly strided)")
    g.add_argument("--unit-checks", action=argparse.BooleanOptionalAction,
                   default=True, help="run the unit sanity checks (default on)")


def _read_options(args):
    from dcmnet.data.readers.options import ReadOptions
    from dcmnet.surface import DEFAULT_SHELLS
    return ReadOptions(length_unit=args.length_unit, esp_unit=args.esp_unit,
                       net_charge=args.net_charge, cube_mode=args.cube_mode,
                       cube_shells=tuple(args.cube_shells or DEFAULT_SHELLS),
                       cube_min_scale=args.cube_min_scale,
                       cube_max_points=args.cube_max_points, check_units=args.unit_checks)


def add_parsers(sub) -> None:
    """Register ``inspect`` and ``convert``."""
    p = sub.add_parser(
        "inspect", help="show what dcmnet detects in ESP files (format, fields, units, "
                        "charges, warnings)",
        description="Read ESP files of any supported format (folders are searched) and print "
                    "what was detected and decided, with a summary per file. Nothing is "
                    "written.")
    p.add_argument("files", nargs="+", metavar="FILE", help="data files or folders")
    _add_read_options(p)
    p.set_defaults(func=run_inspect)

    c = sub.add_parser(
        "convert", help="read ESP files of any supported format and write one canonical "
                        "dataset",
        description="Read, harmonize and check ESP files; write the canonical dataset "
                    "(Å, e, Hartree/e; NPZ without pickles).")
    c.add_argument("files", nargs="+", metavar="FILE", help="data files or folders")
    c.add_argument("--out", required=True, metavar="PATH", help="output file (e.g. data.npz)")
    c.add_argument("--format", choices=FORMATS_OUT, default="canonical",
                   help="output layout (default canonical NPZ; npy-dir: a folder of .npy "
                        "arrays read memory-mapped, for data larger than memory)")
    c.add_argument("--quiet", action="store_true", help="do not print the report")
    _add_read_options(c)
    c.set_defaults(func=run_convert)


def describe_dataset(ds) -> list[str]:
    """Summary lines of a dataset: molecules, elements, counts, charges, ESP range, labels."""
    import numpy as np

    from dcmnet.data.readers.chemistry import symbol
    from dcmnet.units import hartree_to_kcal

    els, cnt = np.unique(ds.Z, return_counts=True)
    q, qc = np.unique(ds.net_charge, return_counts=True)
    lines = [
        f"molecules: {len(ds)} ({len(np.unique(ds.name))} distinct names)",
        "elements (atoms): " + ", ".join(f"{symbol(z)} {c}" for z, c in zip(els, cnt)),
        f"atoms per molecule: {int(ds.n_atoms.min())}..{int(ds.n_atoms.max())} "
        f"(median {float(np.median(ds.n_atoms)):g})",
        f"grid points per molecule: {int(ds.n_grid.min())}..{int(ds.n_grid.max())} "
        f"(median {float(np.median(ds.n_grid)):g})",
        "net charges: " + ", ".join(f"{c} × {v:+g} e" for v, c in zip(q, qc)),
        f"ESP range: {float(ds.esp.min()):.5f} .. {float(ds.esp.max()):.5f} Hartree/e "
        f"({hartree_to_kcal(float(ds.esp.min())):.2f} .. "
        f"{hartree_to_kcal(float(ds.esp.max())):.2f} kcal/(mol·e))",
        f"reference charges ('mono'): {int(ds.has_mono.sum())} of {len(ds)} molecules; "
        f"dipoles: {int(ds.has_dipole.sum())} of {len(ds)}",
        "stored units: lengths Å, charges e, ESP Hartree/e, dipoles e·Å about the centre of "
        "mass",
    ]
    return lines


def run_inspect(args) -> int:
    """Print detection report and summary of each file; exit status 2 if any file failed.

    Each file is read and checked by :func:`dcmnet.data.loader.read_file`, as for training.
    """
    import warnings

    from dcmnet.data.loader import plan_files, read_file
    from dcmnet.errors import DataError

    opts = _read_options(args)
    jobs, errors, notes = plan_files(args.files)
    out = sys.stdout
    good = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report shows every warning
        for job in jobs:
            _print_job_head(job, out)
            try:
                ds, rep = read_file(job, opts)
            except DataError as exc:
                print(f"   ERROR: {exc}", file=out)
                errors.append((job.path, str(exc)))
                continue
            good.append(ds)
            for row in rep.entries:
                print("   " + row.body, file=out)
            for ln in describe_dataset(ds):
                print("   " + ln, file=out)
            print(f"   warnings: {len(rep.warnings) or 'none'}", file=out)
    for n in notes:
        print(f"note: {n}", file=out)
    _print_failures_and_total(jobs, errors, good, out)
    if errors:
        listed = {j.path for j in jobs}
        n_files = len(jobs) + len([e for e in errors if e[0] not in listed])
        raise DataError(f"{len(errors)} of {n_files} file(s) could not be read; see the ERROR "
                        "lines above.")
    if not jobs:
        raise DataError("no ESP data file found in " + ", ".join(args.files) + ".")
    return 0


def _print_job_head(job, out) -> None:
    """``== PATH`` and the detected format with its companion files."""
    from dcmnet.data.readers.registry import KINDS

    print(f"== {job.path}", file=out)
    print(f"   format: {KINDS[job.kind][0]}" + (
        "" if not any(job.companions.values()) else " with " + ", ".join(
            f"{k} {v.name}" for k, v in job.companions.items() if v is not None)), file=out)


def _print_failures_and_total(jobs, errors, good, out) -> None:
    """The errors of files that were not read at all, and the summary of all good files."""
    listed = {j.path for j in jobs}
    for p, msg in errors:
        if p not in listed:
            print(f"== {p}\n   ERROR: {msg}", file=out)
    if len(good) > 1:
        from dcmnet.data.dataset import Dataset
        total = Dataset.concatenate(good)
        print(f"== all {len(good)} readable files together", file=out)
        for ln in describe_dataset(total):
            print("   " + ln, file=out)


def run_convert(args) -> int:
    """Read, check and write the canonical (or another) dataset layout."""
    import warnings
    from pathlib import Path

    from dcmnet.data.loader import load_dataset_with_report

    opts = _read_options(args)
    if args.format == "npy-dir":
        return _convert_npy_dir(args, opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report shows every warning
        ds, report = load_dataset_with_report(args.files, opts)
    if not args.quiet:
        for ln in report.lines():
            print(ln, file=sys.stderr)
    out = Path(args.out)
    if args.format == "canonical":
        from dcmnet import __version__
        ds.save(out, metadata={"converted_from": [str(f) for f in args.files],
                               "dcmnet_version": __version__,
                               "read_options": {k: (list(v) if isinstance(v, tuple) else v)
                                                for k, v in vars(opts).items()},
                               "report": report.lines()})
    elif args.format == "mmml":
        from dcmnet.data.mmml import write_mmml_npz
        write_mmml_npz(ds, out)
    elif args.format == "extxyz":
        from dcmnet.data.readers.extxyz import write_extxyz
        write_extxyz(ds, out)
    else:
        from dcmnet.data.readers.hdf5 import write_hdf5
        write_hdf5(ds, out)
    print(f"wrote {len(ds)} molecules ({int(ds.n_atoms.sum())} atoms, {int(ds.n_grid.sum())} "
          f"grid points) to {out} [{args.format}]")
    return 0


def _convert_npy_dir(args, opts) -> int:
    """``--format npy-dir``: read each FILE argument in turn and append it to the folder."""
    import warnings
    from pathlib import Path

    from dcmnet import __version__
    from dcmnet.data.loader import load_dataset_with_report
    from dcmnet.data.ondisk_writer import NpyDirWriter

    out = Path(args.out)
    meta = {"converted_from": [str(f) for f in args.files], "dcmnet_version": __version__}
    n = na = ng = 0
    with NpyDirWriter(out, meta) as writer:
        for f in args.files:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the report shows every warning
                ds, report = load_dataset_with_report([f], opts)
            if not args.quiet:
                for ln in report.lines():
                    print(ln, file=sys.stderr)
            writer.append(ds)
            n, na, ng = n + len(ds), na + int(ds.n_atoms.sum()), ng + int(ds.n_grid.sum())
    print(f"wrote {n} molecules ({na} atoms, {ng} grid points) to {out} [npy-dir]")
    return 0
