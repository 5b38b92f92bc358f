"""Writers of tables (analysis reports) and predicted charges; every write is atomic.

Public names: ``from dcmnet.fileio.tables import write_csv``.

Each writer builds the file under a temporary name in the destination folder and renames it
(``os.replace``) only when complete, so an interrupted run never leaves a half-written file
under the final name.

Formats:

* tables (a list of flat dicts): CSV (always), JSON, Parquet (needs the ``analysis`` extra:
  pandas + pyarrow), pickle (output only; dcmnet never reads pickles back);
* predicted charges: extended XYZ (atoms plus charge sites), JSON, CSV of sites, and the
  plain-text *DCM charges file* described in :func:`write_charges_file`.
"""
from __future__ import annotations

import csv
import io
import math
import pickle
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from dcmnet.fileio import atomic_path  # noqa: F401  (re-exported for the writers' callers)
from dcmnet.fileio import atomic_write_extxyz, atomic_write_json
from dcmnet.errors import OptionalDependencyError

#: Table formats understood by :func:`write_table`.
TABLE_FORMATS = ("csv", "json", "parquet", "pkl")

__all__ = [
    "TABLE_FORMATS",
    "atomic_path",
    "write_text",
    "write_bytes",
    "write_json",
    "write_csv",
    "write_table",
    "require_pandas",
    "jsonable",
    "write_charges_file",
    "write_sites_csv",
    "write_extxyz",
    "CHARGES_FILE_HEADER",
]


def write_bytes(data: bytes, path) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(text: str, path) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes(text.encode("utf-8"), path)


def jsonable(obj):
    """``obj`` with numpy scalars/arrays, paths and non-finite floats made JSON-safe.

    NaN and ±Inf become ``None`` (JSON has no NaN).
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj, path, indent: int | None = 2) -> Path:
    """Write ``obj`` (made safe by :func:`jsonable`) as JSON, atomically
    (:func:`dcmnet.fileio.atomic_write_json`)."""
    return atomic_write_json(path, jsonable(obj), indent)


def _columns(rows: Sequence[Mapping]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return keys


def _num(v) -> str:
    """A number as CSV text: full precision (``repr`` of a Python float), never the repr of a
    NumPy scalar (NumPy 2 writes ``np.float64(0.1)``); NaN/inf as an empty cell."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def _cell(v):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    if v is None:
        return ""
    return v


def write_csv(rows: Sequence[Mapping], path, columns: Sequence[str] | None = None) -> Path:
    """Write a list of flat dicts as CSV (header = union of the keys, in first-seen order).

    Missing values and NaN are written as empty cells; floats with full precision.
    """
    cols = list(columns) if columns is not None else _columns(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k)) for k in cols})
    return write_text(buf.getvalue(), path)


def require_pandas():
    """Import pandas (and check pyarrow) for Parquet output.

    Raises:
        OptionalDependencyError: pandas or pyarrow missing (``pip install 'dcmnet[analysis]'``).
    """
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise OptionalDependencyError(
            "Parquet output needs pandas and pyarrow: pip install 'dcmnet[analysis]' "
            f"(missing: {exc.name}); use --format csv or json instead.") from exc
    return pd


def write_table(rows: Sequence[Mapping], path, format: str | None = None,
                extra: Mapping | None = None) -> Path:
    """Write a table (list of flat dicts) as csv, json, parquet or pkl.

    Args:
        rows: the rows; values must be scalars (numbers, strings, None).
        path: destination; the format defaults to its suffix.
        format: one of :data:`TABLE_FORMATS`.
        extra: for json and pkl, further entries stored next to ``rows`` (for example the
            summary); csv and parquet hold the rows only.
    Raises:
        ValueError: unknown format.
        OptionalDependencyError: parquet without pandas/pyarrow.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt == "pickle":
        fmt = "pkl"
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(TABLE_FORMATS)}")
    if fmt == "csv":
        return write_csv(rows, path)
    payload = {**(jsonable(dict(extra)) if extra else {}), "rows": jsonable(list(rows))}
    if fmt == "json":
        return write_json(payload, path)
    if fmt == "pkl":
        # plain Python containers only; written for users, never read back by dcmnet
        return write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), path)
    pd = require_pandas()
    frame = pd.DataFrame([{k: _parquet_cell(r.get(k)) for k in _columns(rows)} for r in rows])
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def _parquet_cell(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------------------
# predicted charges
# --------------------------------------------------------------------------------------

#: First lines of every DCM charges file (see :func:`write_charges_file`).
CHARGES_FILE_HEADER = (
    "# dcmnet distributed charges, format dcmnet-charges-v1\n"
    "# units: charge e, positions Angstrom (absolute, same frame as the structure)\n"
    "# per frame: a line 'FRAME <k> <n_atoms> <n_sites> <net_charge>' then one line per\n"
    "# charge site: '<atom> <charge> <x> <y> <z>', atom = 1-based index of the parent atom\n"
    "# (line order of the structure file); sites of an atom are consecutive.\n"
)


def write_charges_file(path, frames: Iterable[Mapping]) -> Path:
    """Write predicted distributed charges in the plain-text *DCM charges* layout.

    Layout (whitespace separated, ``#`` starts a comment line)::

        # dcmnet distributed charges, format dcmnet-charges-v1
        # ... (header comments)
        FRAME 0 6 12 0.0
        1 -0.4123456789 0.0123456789 -1.2345678901 0.5000000000
        1  0.1023456789 ...
        2 ...

    one ``FRAME k n_atoms n_sites net_charge`` line per structure, followed by ``n_sites``
    lines ``atom charge x y z``: ``atom`` the 1-based index of the parent atom, ``charge`` in
    e, ``x y z`` absolute positions in Å. The charges of a frame sum to its net charge.

    Args:
        path: destination file.
        frames: dicts with ``charges`` (N, n_dcm) e, ``positions`` (N, n_dcm, 3) Å and
            ``net_charge`` (e).
    """
    out = [CHARGES_FILE_HEADER]
    for k, fr in enumerate(frames):
        q = np.asarray(fr["charges"], np.float64)
        x = np.asarray(fr["positions"], np.float64)
        N, n = q.shape
        out.append(f"FRAME {k} {N} {N * n} {float(fr['net_charge']):.6g}\n")
        atom = np.repeat(np.arange(1, N + 1), n)
        qf, xf = q.reshape(-1), x.reshape(-1, 3)
        out.extend(f"{a:d} {c: .10f} {p[0]: .10f} {p[1]: .10f} {p[2]: .10f}\n"
                   for a, c, p in zip(atom, qf, xf))
    return write_text("".join(out), path)


def write_sites_csv(path, frames: Iterable[Mapping]) -> Path:
    """CSV with one row per charge site: ``frame, atom (0-based), site, element, charge_e,
    x_A, y_A, z_A, atom_charge_e``. ``frames`` as in :func:`write_charges_file` plus
    ``symbols`` (N,)."""
    buf = io.StringIO()
    buf.write("frame,atom,site,element,charge_e,x_A,y_A,z_A,atom_charge_e\n")
    for k, fr in enumerate(frames):
        q = np.asarray(fr["charges"], np.float64)
        x = np.asarray(fr["positions"], np.float64)
        aq = q.sum(axis=1)
        for i in range(q.shape[0]):
            for s in range(q.shape[1]):
                p = x[i, s]
                buf.write(f"{k},{i},{s},{fr['symbols'][i]},{_num(q[i, s])},{_num(p[0])},"
                          f"{_num(p[1])},{_num(p[2])},{_num(aq[i])}\n")
    return write_text(buf.getvalue(), path)


def write_extxyz(path, frames: Iterable[Mapping]) -> Path:
    """Extended XYZ: per frame the atoms followed by their charge sites as dummy atoms ``X``.

    Per-atom arrays: ``dcm_charge`` (e; the summed charge of an atom's sites for real atoms,
    the site charge for ``X`` entries) and ``parent`` (0-based index of the parent atom for
    sites, −1 for atoms). Frame info: ``net_charge`` (e), ``dipole_eA`` (e·Å about the
    centre of mass), ``dipole_D`` (Debye), ``n_dcm``, ``n_atoms``.

    ``frames`` as in :func:`write_sites_csv` plus ``R`` (N, 3) Å, ``dipole`` (3,) e·Å and
    ``dipole_debye`` (3,).
    """
    from ase import Atoms

    images = []
    for fr in frames:
        q = np.asarray(fr["charges"], np.float64)
        x = np.asarray(fr["positions"], np.float64)
        N, n = q.shape
        symbols = list(fr["symbols"]) + ["X"] * (N * n)
        pos = np.concatenate([np.asarray(fr["R"], np.float64), x.reshape(-1, 3)])
        at = Atoms(symbols=symbols, positions=pos)
        at.new_array("dcm_charge", np.concatenate([q.sum(axis=1), q.reshape(-1)]))
        at.new_array("parent", np.concatenate([np.full(N, -1), np.repeat(np.arange(N), n)]))
        at.info.update({"net_charge": float(fr["net_charge"]), "n_dcm": int(n),
                        "n_atoms": int(N),
                        "dipole_eA": np.asarray(fr["dipole"], np.float64),
                        "dipole_D": np.asarray(fr["dipole_debye"], np.float64)})
        images.append(at)
    return atomic_write_extxyz(path, images)
