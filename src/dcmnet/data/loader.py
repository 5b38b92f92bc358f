"""Load one or several ESP files into one canonical :class:`Dataset`, detecting the layout.

Detection is by content, never by file name:

* canonical dcmnet NPZ: has a ``format`` key equal to :data:`dataset.FORMAT_TAG`;
* mmml-style padded NPZ: has ``R``, ``Z`` and ``esp`` (read by
  :func:`dcmnet.data.mmml.read_mmml_npz`).

Every file is tried; if any fails, one :class:`DataError` lists each bad file with its
problem. With no path, the small dataset bundled with the package is loaded.
"""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Iterable

from dcmnet.data.dataset import FORMAT_TAG, Dataset, open_npz
from dcmnet.data.mmml import read_mmml_npz
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
    """``"canonical"`` or ``"mmml"`` for an NPZ file, judged by its keys.

    Raises:
        DataError: unreadable file, unknown ``format`` tag, or neither layout.
    """
    path = Path(path)
    with open_npz(path) as z:
        files = set(z.files)
        if "format" in files:
            try:
                tag = str(z["format"])
            except ValueError:
                tag = "<pickled object>"
            if tag == FORMAT_TAG:
                return "canonical"
            raise DataError(f"{path}: 'format' key is {tag!r}; this dcmnet reads canonical "
                            f"files tagged {FORMAT_TAG!r} (written by a different version?).")
    if {"R", "Z", "esp"} <= files:
        return "mmml"
    raise DataError(f"{path}: unknown NPZ layout (keys {sorted(files)}). Expected a canonical "
                    f"dcmnet dataset (key 'format' = {FORMAT_TAG!r}) or an mmml-style padded "
                    "file with 'R', 'Z', 'esp' and 'vdw_surface'.")


def _as_list(paths) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def load_dataset_with_report(paths: PathLike | Iterable[PathLike] | None = None
                             ) -> tuple[Dataset, list[str]]:
    """Load and concatenate ESP files (in the given order); return the dataset and a report.

    Args:
        paths: one path, a list of paths, or ``None``/``[]`` for the bundled dataset.

    Returns:
        ``(dataset, report)``; ``report`` holds one line per detection/decision.

    Raises:
        DataError: listing every file that failed (all files are tried), or saying that the
            package installation lacks the bundled dataset.
    """
    files = _as_list(paths)
    report: list[str] = []
    if not files:
        bundled = bundled_dataset_path()
        if not bundled.exists():
            raise DataError(f"no data file given and this dcmnet installation lacks the bundled "
                            f"dataset ({bundled}); reinstall dcmnet or pass a data file.")
        files = [bundled]
        report.append(f"no data file given: using the bundled dataset {bundled}.")
    datasets: list[Dataset] = []
    errors: list[tuple[Path, str]] = []
    for path in files:
        try:
            kind = detect_format(path)
            if kind == "canonical":
                ds = Dataset.load(path)
                report.append(f"{path}: canonical dcmnet dataset, {len(ds)} molecules, "
                              f"{int(ds.n_atoms.min())}..{int(ds.n_atoms.max())} atoms, "
                              f"{int(ds.n_grid.min())}..{int(ds.n_grid.max())} grid points.")
            else:
                ds, lines = read_mmml_npz(path)
                report.append(f"{path}: detected mmml-style padded NPZ.")
                report.extend("  " + line for line in lines)
            datasets.append(ds)
        except DataError as exc:
            errors.append((path, str(exc)))
    if errors:
        if len(errors) == 1 and len(files) == 1:
            raise DataError(errors[0][1])
        lines = "\n".join(f"  - {p}: {msg}" for p, msg in errors)
        raise DataError(f"{len(errors)} of {len(files)} data files could not be loaded:\n"
                        f"{lines}")
    ds = Dataset.concatenate(datasets)
    if len(datasets) > 1:
        report.append(f"combined {len(datasets)} files: {len(ds)} molecules.")
    return ds, report


def load_dataset(paths: PathLike | Iterable[PathLike] | None = None,
                 verbose: bool = True) -> Dataset:
    """Like :func:`load_dataset_with_report`; prints the report with ``rich`` when verbose."""
    ds, report = load_dataset_with_report(paths)
    if verbose:
        from rich.console import Console
        console = Console(stderr=True)
        for line in report:
            style = "yellow" if "WARNING" in line else None
            console.print(line, style=style, markup=False, highlight=False)
    return ds
