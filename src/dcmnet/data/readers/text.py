"""Text files of the readers: Fortran-style numbers (``0.12D-01``), reading and writing.

:func:`parse_floats` turns a line's tokens into floats with a :class:`DataError` naming file
and line; :func:`fortran_d` prints numbers the way Gaussian does; :func:`read_text` and
:func:`write_text_atomic` read and (atomically) write whole files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from dcmnet.data.readers.report import PathLike, err
from dcmnet.errors import DataError

_FORTRAN_D = re.compile(r"(?<=[0-9.])[dD](?=[+-]?[0-9])")


def fortran_float(token: str) -> float:
    """Parse a number that may use a Fortran ``D`` exponent (``0.12D-01``) → float.

    Raises:
        ValueError: not a number.
    """
    return float(_FORTRAN_D.sub("e", token.strip()))


def parse_floats(tokens: Sequence[str], path, line_no: int, expected: int | None = None
                 ) -> list[float]:
    """Floats of a line's tokens (``D`` exponents allowed); DataError names file and line."""
    if expected is not None and len(tokens) < expected:
        raise err(path, f"expected {expected} numbers, found {len(tokens)} "
                  f"({' '.join(tokens)!r}).", "The file is truncated or not in the expected "
                  "layout.", line=line_no)
    try:
        vals = [fortran_float(t) for t in tokens]
    except ValueError:
        raise err(path, f"could not read numbers from {' '.join(tokens)!r}.",
                  "The file is corrupt or not in the expected layout.", line=line_no) from None
    return vals



def fortran_d(value: float, digits: int = 8) -> str:
    """``value`` in Fortran ``D`` notation with a 0.1 ≤ |mantissa| < 1, e.g. ``0.12345678D-01``.

    This is how Gaussian prints numbers in ``.esp`` files (format ``D16.8``-like).
    """
    v = float(value)
    if v == 0.0 or not np.isfinite(v):
        return f"{0.0:.{digits}f}D+00" if v == 0.0 else str(v)
    e = int(np.floor(np.log10(abs(v)))) + 1
    m = round(v / 10.0 ** e, digits)
    if abs(m) >= 1.0:
        m /= 10.0
        e += 1
    return f"{m:.{digits}f}D{e:+03d}"



def read_text(path: PathLike) -> str:
    """The text of a file (UTF-8 with replacement); DataError when missing/unreadable."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found.")
    try:
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{p}: cannot read the file ({exc}).") from None



def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write a text file atomically (temporary file + rename); creates the folder."""

    from dcmnet.fileio import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text)



__all__ = ["fortran_float", "parse_floats", "fortran_d", "read_text", "write_text_atomic"]
