"""What a reader detected and decided, as records: :class:`ReadReport` and :class:`ReadWarning`.

Every reader returns its dataset with a :class:`ReadReport`: the format, whether the file
was already canonical, informational notes and warnings (each a :class:`ReadWarning` with
file, molecule, field, message and fix), in the order they were made. Code decides on these
fields, never on the text of a message. :meth:`ReadReport.lines` renders the human-readable
lines that ``dcmnet inspect``/``convert``/``train`` print (``"NAME: note"``,
``"NAME: WARNING: message fix"``); a report also behaves as the sequence of those lines.
:meth:`ReadReport.warn` also emits a Python :class:`UserWarning` so that library users see
it. Errors are built by :func:`err` (:func:`dcmnet.errors.data_error`): file, line, field,
molecule and the fix.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from dcmnet.errors import data_error

PathLike = str | os.PathLike

#: The one builder of data error messages (re-exported for the readers).
err = data_error


@dataclasses.dataclass(frozen=True)
class ReadWarning:
    """One warning about a file.

    Attributes:
        file: the file (as given); message: what is wrong or was assumed; molecule: its
        index in the file, ``None`` for the whole file; field: the field concerned, if one;
        fix: what the user can do, ``None`` when the message says it.
    """

    file: str
    message: str
    molecule: int | None = None
    field: str | None = None
    fix: str | None = None

    @property
    def text(self) -> str:
        """The message followed by the fix."""
        return self.message + (f" {self.fix}" if self.fix else "")


@dataclasses.dataclass(frozen=True)
class ReportLine:
    """One entry of a report: a note (``text``) or a warning, with how it is printed.

    Attributes:
        tag: what the printed line starts with (the file's name or path; ``""``: nothing);
        text: the note; warning: the warning (then ``text`` is unused); indent: leading
        white space of the printed line.
    """

    tag: str
    text: str = ""
    warning: ReadWarning | None = None
    indent: str = ""

    @property
    def body(self) -> str:
        """The line without tag and indent (``"WARNING: ..."`` for a warning)."""
        return f"WARNING: {self.warning.text}" if self.warning else self.text

    def render(self) -> str:
        """The printed line."""
        return self.indent + (f"{self.tag}: {self.body}" if self.tag else self.body)


class ReadReport(Sequence):
    """The structured report of a reader (or of the loader, for several files).

    Attributes:
        path: the file (``None`` for a report over several files); tag: the file's name,
        which starts its lines; format: the kind read (a key of
        :data:`dcmnet.data.readers.registry.KINDS`), if known; canonical: the file was a
        canonical dcmnet dataset (no translation, no unit checks needed); title: an optional
        first line (the loader's "detected ..."); entries: the notes and warnings in order;
        extras: free-form information (multipoles etc.) without a canonical field.

    As a sequence it holds the rendered lines (``list(report) == report.lines()``).
    """

    def __init__(self, path: PathLike | None = None, format: str | None = None,
                 canonical: bool = False):
        self.path = Path(path) if path is not None else None
        self.tag = self.path.name if self.path is not None else ""
        self.format = format
        self.canonical = canonical
        self.title: ReportLine | None = None
        self.entries: list[ReportLine] = []
        self.extras: dict = {}

    # ------------------------------------------------------------------ building
    def note(self, text: str, tag: str | None = None) -> None:
        """Add an informational line (prefixed with ``tag``, default the file's name)."""
        self.entries.append(ReportLine(self.tag if tag is None else tag, text))

    def warn(self, message: str, fix: str | None = None, *, molecule: int | None = None,
             field: str | None = None, tag: str | None = None, emit: bool = True,
             stacklevel: int = 3) -> ReadWarning:
        """Add a warning; with ``emit`` also a :class:`UserWarning` naming the file."""
        w = ReadWarning(str(self.path) if self.path is not None else str(tag or ""),
                        message, molecule, field, fix)
        self.entries.append(ReportLine(self.tag if tag is None else tag, warning=w))
        if emit:
            warnings.warn(f"{self.path}: {w.text}", UserWarning, stacklevel=stacklevel)
        return w

    def add(self, other: "ReadReport", indent: str = "", tag: str | None = None) -> None:
        """Append the entries of ``other`` (its title first), indented and re-tagged."""
        for e in other.rows:
            self.entries.append(dataclasses.replace(
                e, indent=indent + e.indent, tag=e.tag if tag is None else tag))
        self.extras.update(other.extras)

    # ------------------------------------------------------------------ reading
    @property
    def rows(self) -> list[ReportLine]:
        """The title (if any), then every entry."""
        return ([self.title] if self.title else []) + self.entries

    @property
    def warnings(self) -> list[ReadWarning]:
        """The warnings, in order."""
        return [e.warning for e in self.entries if e.warning is not None]

    @property
    def notes(self) -> list[str]:
        """The texts of the notes (title included), in order."""
        return [e.text for e in self.rows if e.warning is None]

    def lines(self) -> list[str]:
        """The printed lines: title, then every note and warning."""
        return [e.render() for e in self.rows]

    def __getitem__(self, i):
        return self.lines()[i]

    def __len__(self) -> int:
        return len(self.entries) + (self.title is not None)

    def __iter__(self):
        return iter(self.lines())

    def __repr__(self) -> str:
        return (f"ReadReport(path={self.path}, format={self.format!r}, "
                f"canonical={self.canonical}, {len(self.entries)} entries, "
                f"{len(self.warnings)} warnings)")
