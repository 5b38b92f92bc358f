"""Load one or several ESP files into one canonical :class:`Dataset`, detecting the layout.

Detection is by content, never by file name alone (:func:`dcmnet.data.readers.sniff`):

* NPZ: canonical dcmnet files (``format`` key equal to :data:`dataset.FORMAT_TAG`) or any
  mmml-style/aliased layout (:func:`dcmnet.data.readers.npz.read_npz`);
* a folder written by ``dcmnet convert --format npy-dir`` (:mod:`dcmnet.data.ondisk`):
  opened memory-mapped, read alone (not joined with other files);
* Gaussian cube, Gaussian ``.esp`` (iop(6/50=1)), AmberTools espot, psi4 ``grid.dat`` +
  ``grid_esp.dat``, ORCA ``orca_vpot`` output, SPICE-like HDF5, extxyz with ESP points
  (:mod:`dcmnet.data.readers`), with companion files (density cube, geometries) paired
  automatically; folders are searched recursively.

Every file is tried and checked (:mod:`dcmnet.data.sanity`); if any fails, one
:class:`DataError` lists each bad file with its problem. With no path, the small dataset
bundled with the package is loaded.
"""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.report import ReadReport, ReportLine
from dcmnet.errors import DataError

#: File name of the bundled dataset inside ``dcmnet/data/bundled/``.
BUNDLED_NAME = "dcmnet_small.npz"

PathLike = str | os.PathLike


def bundled_dataset_path() -> Path:
    """Path of the small dataset shipped with the package (``data/bundled/dcmnet_small.npz``).

    The file may be absent (for example in a source checkout before it is generated);
    :func:`load_dataset` then raises a :class:`DataError`.
    """
    return Path(str(importlib.resources.files("dcmnet.data") / "bundled" / BUNDLED_NAME))


def detect_format(path: PathLike) -> str:
    """The format of a file, judged by its content.

    Returns:
        ``"canonical"`` or ``"mmml"`` for NPZ files (``"mmml"`` covers every harmonized NPZ
        layout), else a kind of :data:`dcmnet.data.readers.KINDS` (``"cube"``,
        ``"gaussian_esp"``, ``"espot"``, ``"psi4_esp"``, ``"orca_vpot"``, ``"hdf5"``,
        ``"extxyz"``, ...).
    Raises:
        DataError: unreadable file, unknown ``format`` tag, or no known layout.
    """
    from dcmnet.data.readers.npz import detect_npz_kind
    from dcmnet.data.readers.registry import sniff

    path = Path(path)
    kind = sniff(path)
    if kind != "npz":
        return kind
    return "canonical" if detect_npz_kind(path) == "canonical" else "mmml"


def _as_list(paths) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _options(options=None, **kwargs):
    from dcmnet.data.readers.options import ReadOptions
    if options is None:
        return ReadOptions(**kwargs)
    if kwargs:
        import dataclasses
        return dataclasses.replace(options, **kwargs)
    return options


def _screen_grid(ds: Dataset, path, report: ReadReport) -> Dataset:
    """Drop grid points inside the atoms' vdW spheres (:func:`sanity.drop_points_inside_atoms`)
    and add one warning per file saying how many."""
    from dcmnet.data.sanity import INSIDE_SCALE, drop_points_inside_atoms

    try:
        ds, dropped = drop_points_inside_atoms(ds)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    if dropped.any():
        i = int(np.argmax(dropped))
        report.warn(f"dropped {int(dropped.sum())} grid points inside the atoms' vdW spheres "
                    f"(closer than {INSIDE_SCALE:g} × r_vdW to a nucleus, where the ESP is the "
                    f"nuclear cusp) in {int((dropped > 0).sum())} of {len(ds)} molecules "
                    f"(most: molecule {i}, {int(dropped[i])} points); the rest of the grid is "
                    "kept.", tag=str(path), field="esp", emit=False)
    return ds


def plan_files(paths: PathLike | Iterable[PathLike]):
    """The reading plan of files and folders (:func:`dcmnet.data.readers.plan`), with files
    that do not exist listed first among the errors.

    Returns:
        ``(jobs, errors, notes)``: :class:`~dcmnet.data.readers.Job` list, ``(path,
        message)`` pairs and note lines.
    """
    from dcmnet.data.readers.registry import plan

    files = _as_list(paths)
    missing = [p for p in files if not p.exists()]
    jobs, errors, notes = plan([p for p in files if p.exists()])
    return jobs, [(p, f"{p}: file not found.") for p in missing] + errors, notes


def read_file(job, options) -> tuple[Dataset, ReadReport]:
    """Read one planned file and check it: the reader, points inside atoms dropped,
    fragments, unit sanity checks (the cheap checks only for canonical files).

    Returns:
        ``(dataset, report)``: the report's title says what was detected (none for a
        canonical file), the reader's entries follow indented, then the checks'.
    Raises:
        DataError: from the reader or a failed check (the message names the file).
    """
    from dcmnet.data.connectivity import check_fragments
    from dcmnet.data.readers.registry import KINDS, read_job
    from dcmnet.data.sanity import apply_checks, check_canonical

    ds, rep = read_job(job, options)
    out = ReadReport(job.path, job.kind, canonical=rep.canonical)
    if rep.canonical:
        out.add(rep, tag=str(job.path))
    else:
        companions = [p.name for p in job.companions.values() if p is not None]
        out.title = ReportLine(str(job.path), f"detected {KINDS[job.kind][0]}" + (
            f" with {', '.join(companions)}" if companions else "") + ".")
        out.add(rep, indent="  ")
    ds = _screen_grid(ds, job.path, out)
    for f in check_fragments(ds):
        out.warn(f.message, tag=str(job.path), emit=False)
    if options.check_units and not rep.canonical:
        checks = ReadReport(job.path)
        apply_checks(ds, job.path, checks, options.length_unit is not None,
                     options.esp_unit is not None)
        out.add(checks, indent="  ")
    elif options.check_units:
        bad = [f.message for f in check_canonical(ds) if f.level == "error"]
        if bad:
            raise DataError(f"{job.path}: " + " Also: ".join(bad))
    return ds, out


def _given_or_bundled(paths, report: ReadReport) -> list[Path]:
    """The files to read: those given, else the bundled dataset (with a note).

    Raises:
        DataError: no file given and the installation lacks the bundled dataset.
    """
    files = _as_list(paths)
    if files:
        return files
    bundled = bundled_dataset_path()
    if not bundled.exists():
        raise DataError(f"no data file given and this dcmnet installation lacks the bundled "
                        f"dataset ({bundled}); reinstall dcmnet or pass a data file.")
    report.note(f"no data file given: using the bundled dataset {bundled}.")
    return [bundled]


def _open_npy_dir(files: list[Path]) -> tuple[Dataset, ReadReport]:
    """An on-disk ``.npy`` folder, which is read alone.

    Raises:
        DataError: the folder was given together with other files.
    """
    from dcmnet.data.ondisk import open_npy_dir

    if len(files) > 1:
        raise DataError(f"{', '.join(map(str, files))}: an on-disk .npy dataset folder "
                        "is read alone; convert all files into one folder with `dcmnet "
                        "convert A B ... --format npy-dir --out DIR`.")
    ds = open_npy_dir(files[0])
    report = ReadReport(files[0], "npy-dir", canonical=True)
    report.note(f"on-disk dataset (memory-mapped .npy folder, values checked when written): "
                f"{len(ds)} molecules.", tag=str(files[0]))
    return ds, report


def _raise_failures(errors: list, n_files: int) -> None:
    """One :class:`DataError` for the files that could not be loaded (none: no error)."""
    if not errors:
        return
    if len(errors) == 1 and n_files == 1:
        raise DataError(errors[0][1])
    lines = "\n".join(f"  - {p}: {msg}" for p, msg in errors)
    raise DataError(f"{len(errors)} of {n_files} data files could not be loaded:\n{lines}")


def load_dataset_with_report(paths: PathLike | Iterable[PathLike] | None = None,
                             options=None, **option_kwargs) -> tuple[Dataset, ReadReport]:
    """Load and concatenate ESP files (in the given order); return the dataset and a report.

    Args:
        paths: one path, a list of paths (files or folders), or ``None``/``[]`` for the
            bundled dataset.
        options: a :class:`dcmnet.data.readers.ReadOptions`; or give its fields as keywords
            (``length_unit="bohr"``, ``esp_unit="kcal/mol"``, ``net_charge=1``,
            ``cube_mode="outside"``, ``check_units=False``, ...).

    Returns:
        ``(dataset, report)``: ``report`` is a :class:`~dcmnet.data.readers.ReadReport`
        over all files (``report.warnings`` the warning records, ``report.lines()`` one
        printed line per detection/decision; it also iterates over those lines).

    Raises:
        DataError: listing every file that failed (all files are tried), or saying that the
            package installation lacks the bundled dataset.
    """
    from dcmnet.data.ondisk import is_npy_dir

    opts = _options(options, **option_kwargs)
    report = ReadReport()
    files = _given_or_bundled(paths, report)
    if any(is_npy_dir(p) for p in files):
        return _open_npy_dir(files)
    jobs, errors, notes = plan_files(files)
    datasets: list[Dataset] = []
    for job in jobs:
        try:
            ds, rep = read_file(job, opts)
        except DataError as exc:
            errors.append((job.path, str(exc)))
            continue
        report.add(rep)
        datasets.append(ds)
    for n in notes:
        report.note(n)
    listed = {j.path for j in jobs}
    _raise_failures(errors, len(jobs) + len([e for e in errors if e[0] not in listed]))
    if not datasets:
        raise DataError("no ESP data found in " + ", ".join(str(p) for p in files)
                        + ". dcmnet reads NPZ, HDF5, Gaussian cube/.esp, espot, psi4, ORCA and "
                        "extxyz files; see docs/data.md.")
    ds = Dataset.concatenate(datasets)
    if len(datasets) > 1:
        report.note(f"combined {len(datasets)} files: {len(ds)} molecules.")
    return ds, report


def load_dataset(paths: PathLike | Iterable[PathLike] | None = None,
                 verbose: bool = True, options=None, **option_kwargs) -> Dataset:
    """Like :func:`load_dataset_with_report`; prints the report with ``rich`` when verbose
    (warnings in yellow)."""
    ds, report = load_dataset_with_report(paths, options, **option_kwargs)
    if verbose:
        from rich.console import Console
        console = Console(stderr=True)
        for row in report.rows:
            console.print(row.render(), style="yellow" if row.warning else None,
                          markup=False, highlight=False)
    return ds
