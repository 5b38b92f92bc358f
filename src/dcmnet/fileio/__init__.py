"""Atomic file writing: the one place that implements "temporary file, then rename".

Every file dcmnet writes for a user (datasets, configs, splits, histories, analysis
reports, exports) goes through :func:`atomic_path`, so an interrupted run never leaves a
half-written file under the final name: the old file (if any) stays intact until the new
one is complete.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from dcmnet.errors import DCMNetError


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_folder(path, what: str = "output folder") -> Path:
    """Raise :class:`DCMNetError` if ``path`` or one of its parents is an existing file.

    Called before long work so that a bad output path fails at once with a clear message
    instead of a traceback at the end. Returns ``Path(path)``; creates nothing.
    """
    p = Path(path)
    for q in [p, *p.parents]:
        if q.exists() and not q.is_dir():
            raise DCMNetError(f"{path}: {q} is a file, not a folder; choose another {what}.")
    return p


def ensure_folder(path, what: str = "output folder") -> Path:
    """:func:`check_folder`, then create the folder (and parents)."""
    p = check_folder(path, what)
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Args:
        path: the final file; its folder is created.
        suffix: ending of the temporary name (default: that of ``path``), for writers that
            choose a format by extension (``np.savez`` adds ``.npz`` otherwise).
    The file gets the usual permissions (0666 minus the umask). On an exception the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise DCMNetError(f"{path} is a folder; give a file name to write.")
    ensure_folder(path.parent, "output path")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=".tmp" + (suffix or path.suffix))
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path, obj, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``json.dumps(obj, indent=indent)`` and a
    newline; the package's one JSON writer); returns the path. Raises TypeError: ``obj``
    not JSON-serialisable (see :func:`dcmnet.fileio.tables.jsonable`)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_write_extxyz(path, images) -> Path:
    """Write ``ase.Atoms`` frames as extended XYZ with ASE (``ase.io.write``, format
    ``extxyz``; arrays and ``info`` as ASE writes them) atomically; the package's one
    extxyz writer. Returns the path."""
    from ase.io import write

    with atomic_path(path, suffix=".extxyz") as tmp:
        write(str(tmp), list(images), format="extxyz")
    return Path(path)
