"""Exception types of dcmnet.

Every error a user can cause derives from :class:`DCMNetError`, so that the command line
prints its message (which names the file, the field, the molecule and the fix) instead of
a traceback.
"""
from __future__ import annotations


class DCMNetError(Exception):
    """Base class of all user-facing dcmnet errors; the CLI prints only the message."""


class DataError(DCMNetError, ValueError):
    """Bad or inconsistent input data (a file, a field, a molecule)."""


class ConfigError(DCMNetError, ValueError):
    """An invalid configuration value or an unknown configuration key."""


class CheckpointError(DCMNetError):
    """A missing, corrupt or incompatible checkpoint."""


class OptionalDependencyError(DCMNetError, ImportError):
    """An optional extra (for example ``dcmnet[qm]``: PySCF and RDKit) is not installed."""


#: First words of a message that continue the file name as a sentence (``"p.esp is empty."``).
_VERBS = {"is", "holds", "has", "ends", "mixes", "does", "describes", "was", "states", "uses",
          "needs", "refers", "announces", "lists", "contains"}


def data_error(path, msg: str, fix: str | None = None, field: str | None = None,
               mol: int | None = None, line: int | None = None) -> DataError:
    """The one builder of data error messages: a :class:`DataError` naming file, line,
    field, molecule and the fix.

    ``msg`` continues the subject: ``data_error(p, "has no grid points.", mol=3)`` gives
    ``"p: molecule 3 has no grid points."``; with ``field="esp"`` it gives
    ``"p: field 'esp' of molecule 3 has no grid points."``; ``fix`` is appended.
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
