"""Reports of the readers and the one builder of their error messages.

Every reader returns its dataset with a report: human-readable lines saying what was
detected and decided. Lines that start with ``WARNING:`` after the file tag are warnings;
:class:`Report` also emits them as Python :class:`UserWarning` so that library users see
them. :func:`err` builds every reader's :class:`~dcmnet.errors.DataError`: file, line,
field, molecule and the fix.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from dcmnet.errors import DataError

PathLike = str | os.PathLike


class Report:
    """Collects the lines of a reader's report, each prefixed with the file's name."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.tag = self.path.name
        self.lines: list[str] = []
        #: free-form extra information (multipoles etc.) that has no canonical field
        self.extras: dict = {}

    def note(self, line: str) -> None:
        """Add an informational line."""
        self.lines.append(f"{self.tag}: {line}")

    def warn(self, line: str) -> None:
        """Add a ``WARNING:`` line and emit a :class:`UserWarning`."""
        self.lines.append(f"{self.tag}: WARNING: {line}")
        warnings.warn(f"{self.path}: {line}", UserWarning, stacklevel=3)


_VERBS = {"is", "holds", "has", "ends", "mixes", "does", "describes", "was", "states", "uses",
          "needs", "refers", "announces", "lists", "contains"}


def err(path: PathLike, msg: str, fix: str | None = None, field: str | None = None,
        mol: int | None = None, line: int | None = None) -> DataError:
    """A :class:`DataError` whose text names file, line/field, molecule and the fix.

    ``msg`` continues the subject: ``err(p, "has no grid points.", mol=3)`` gives
    ``"p: molecule 3 has no grid points."``.
    """
    subject = f"{path}"
    if line is not None:
        subject += f", line {line}"
    if field is not None:
        subject += f": field '{field}'" + (f" of molecule {int(mol)}" if mol is not None else "")
        text = f"{subject} {msg}"
    elif mol is not None:
        text = f"{subject}: molecule {int(mol)} {msg}"
    elif msg.split(" ", 1)[0] in _VERBS and line is None:
        text = f"{subject} {msg}"
    else:
        text = f"{subject}: {msg}"
    if fix:
        text += f" {fix}"
    return DataError(text)
