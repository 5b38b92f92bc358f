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
