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
    from dcmnet.data.readers.base import ReadOptions
    if options is None:
        return ReadOptions(**kwargs)
    if kwargs:
        import dataclasses
        return dataclasses.replace(options, **kwargs)
    return options


def _screen_grid(ds: Dataset, path, report: list[str]) -> Dataset:
    """Drop grid points inside the atoms' vdW spheres (:func:`sanity.drop_points_inside_atoms`)
    and add one WARNING line per file saying how many."""
    from dcmnet.data.sanity import INSIDE_SCALE, drop_points_inside_atoms

    try:
        ds, dropped = drop_points_inside_atoms(ds)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    if dropped.any():
        i = int(np.argmax(dropped))
        report.append(f"{path}: WARNING: dropped {int(dropped.sum())} grid points inside the "
                      f"atoms' vdW spheres (closer than {INSIDE_SCALE:g} × r_vdW to a nucleus, "
                      f"where the ESP is the nuclear cusp) in {int((dropped > 0).sum())} of "
                      f"{len(ds)} molecules (most: molecule {i}, {int(dropped[i])} points); "
                      "the rest of the grid is kept.")
    return ds


def load_dataset_with_report(paths: PathLike | Iterable[PathLike] | None = None,
                             options=None, **option_kwargs) -> tuple[Dataset, list[str]]:
    """Load and concatenate ESP files (in the given order); return the dataset and a report.

    Args:
        paths: one path, a list of paths (files or folders), or ``None``/``[]`` for the
            bundled dataset.
        options: a :class:`dcmnet.data.readers.ReadOptions`; or give its fields as keywords
            (``length_unit="bohr"``, ``esp_unit="kcal/mol"``, ``net_charge=1``,
            ``cube_mode="outside"``, ``check_units=False``, ...).

    Returns:
        ``(dataset, report)``; ``report`` holds one line per detection/decision; lines with
        ``WARNING:`` are warnings.

    Raises:
        DataError: listing every file that failed (all files are tried), or saying that the
            package installation lacks the bundled dataset.
    """
    from dcmnet.data.readers.registry import plan, read_job
    from dcmnet.data.sanity import apply_checks

    opts = _options(options, **option_kwargs)
    files = _as_list(paths)
    report: list[str] = []
    if not files:
        bundled = bundled_dataset_path()
        if not bundled.exists():
            raise DataError(f"no data file given and this dcmnet installation lacks the bundled "
                            f"dataset ({bundled}); reinstall dcmnet or pass a data file.")
        files = [bundled]
        report.append(f"no data file given: using the bundled dataset {bundled}.")
    from dcmnet.data.ondisk import is_npy_dir, open_npy_dir
    if any(is_npy_dir(p) for p in files):
        if len(files) > 1:
            raise DataError(f"{', '.join(map(str, files))}: an on-disk .npy dataset folder "
                            "is read alone; convert all files into one folder with `dcmnet "
                            "convert A B ... --format npy-dir --out DIR`.")
        ds = open_npy_dir(files[0])
        return ds, [f"{files[0]}: on-disk dataset (memory-mapped .npy folder, values checked "
                    f"when written): {len(ds)} molecules."]
    missing = [p for p in files if not p.exists()]
    jobs, errors, notes = plan([p for p in files if p.exists()])
    errors = [(p, f"{p}: file not found.") for p in missing] + errors
    datasets: list[Dataset] = []
    for job in jobs:
        try:
            ds, lines = read_job(job, opts)
            head = lines[0] if lines else ""
            if "canonical dcmnet dataset" in head:
                report.append(f"{job.path}: " + head.split(": ", 1)[-1])
            else:
                from dcmnet.data.readers.registry import KINDS
                companions = [p.name for p in job.companions.values() if p is not None]
                report.append(f"{job.path}: detected {KINDS[job.kind][0]}"
                              + (f" with {', '.join(companions)}" if companions else "") + ".")
                report.extend("  " + line for line in lines)
            ds = _screen_grid(ds, job.path, report)
            from dcmnet.data.connectivity import check_fragments
            report.extend(f"{job.path}: WARNING: {f.message}" for f in check_fragments(ds))
            if opts.check_units and "canonical dcmnet dataset" not in head:
                extra: list[str] = []
                apply_checks(ds, job.path, extra, opts.length_unit is not None,
                             opts.esp_unit is not None)
                report.extend("  " + line for line in extra)
            elif opts.check_units:
                from dcmnet.data.sanity import check_canonical
                bad = [f.message for f in check_canonical(ds) if f.level == "error"]
                if bad:
                    raise DataError(f"{job.path}: " + " Also: ".join(bad))
            datasets.append(ds)
        except DataError as exc:
            errors.append((job.path, str(exc)))
    report.extend(notes)
    n_files = len(jobs) + len([e for e in errors if e[0] not in {j.path for j in jobs}])
    if errors:
        if len(errors) == 1 and n_files == 1:
            raise DataError(errors[0][1])
        lines = "\n".join(f"  - {p}: {msg}" for p, msg in errors)
        raise DataError(f"{len(errors)} of {n_files} data files could not be loaded:\n"
                        f"{lines}")
    if not datasets:
        raise DataError("no ESP data found in " + ", ".join(str(p) for p in files)
                        + ". dcmnet reads NPZ, HDF5, Gaussian cube/.esp, espot, psi4, ORCA and "
                        "extxyz files; see docs/data.md.")
    ds = Dataset.concatenate(datasets)
    if len(datasets) > 1:
        report.append(f"combined {len(datasets)} files: {len(ds)} molecules.")
    return ds, report


def load_dataset(paths: PathLike | Iterable[PathLike] | None = None,
                 verbose: bool = True, options=None, **option_kwargs) -> Dataset:
    """Like :func:`load_dataset_with_report`; prints the report with ``rich`` when verbose."""
    ds, report = load_dataset_with_report(paths, options, **option_kwargs)
    if verbose:
        from rich.console import Console
        console = Console(stderr=True)
        for line in report:
            style = "yellow" if "WARNING" in line else None
            console.print(line, style=style, markup=False, highlight=False)
    return ds
