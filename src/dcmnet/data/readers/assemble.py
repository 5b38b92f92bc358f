"""Assembly of a reader's molecules into the canonical :class:`~dcmnet.data.dataset.Dataset`.

:func:`build_dataset` refuses empty molecules and NaN/Inf values with a message naming the
molecule and field, then builds the dataset (Å, e, Hartree/e, e·Å).
"""
from __future__ import annotations

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.errors import DataError


def build_dataset(molecules: list[dict], path, report: ReadReport) -> Dataset:
    """A validated :class:`Dataset` from per-molecule dicts (see ``Dataset.from_molecules``).

    Also refuses empty molecules and molecules without grid points with a message naming
    the molecule.

    Raises:
        DataError: no molecules, a molecule without atoms or grid points, NaN/Inf values.
    """
    if not molecules:
        raise err(path, "holds no molecules.", "Check that the file is complete.")
    for i, m in enumerate(molecules):
        if len(m["Z"]) == 0:
            raise err(path, "has no atoms.", "Remove it or give its geometry.", mol=i,
                      field="Z")
        if len(m["esp"]) == 0:
            raise err(path, "has no ESP grid points.", "Remove it or regenerate its ESP.",
                      mol=i, field="esp")
        for key in ("R", "grid", "esp"):
            a = np.asarray(m[key], np.float64)
            if not np.isfinite(a).all():
                raise err(path, "contains NaN or Inf.", "Fix or drop that molecule.",
                          field=key, mol=i)
        for key in ("mono", "dipole"):
            if m.get(key) is not None and not np.isfinite(np.asarray(m[key], float)).all():
                raise err(path, "contains NaN or Inf.", "Fix or drop that molecule.",
                          field=key, mol=i)
    try:
        return Dataset.from_molecules(molecules, source=str(path))
    except DataError as exc:
        raise DataError(f"{exc}") from None



__all__ = ["build_dataset"]
