"""Everything dcmnet writes for other programs.

* :mod:`dcmnet.export.tables` — atomic writers of tables (CSV, JSON, Parquet, pickle) and of
  predicted charges (extended XYZ, sites CSV, the ``dcmnet-charges-v1`` text file). Its public
  names are re-exported here, so ``from dcmnet.export import write_csv`` works.
* :mod:`dcmnet.export.openmm` — an OpenMM ``System`` / PDB / ForceField XML with one massless
  virtual site per charge site (``to_openmm``; needs the ``md`` extra: ``openmm``).
* :mod:`dcmnet.export.charmm` — the ``.dcm`` file of CHARMM's DCM module (charges in local
  axis frames of atom triples).

The OpenMM and CHARMM modules are imported on demand (``import dcmnet.export.openmm``), so
importing :mod:`dcmnet.export` never needs OpenMM.
"""
from __future__ import annotations

from dcmnet.export.tables import (  # noqa: F401
    CHARGES_FILE_HEADER,
    TABLE_FORMATS,
    atomic_path,
    jsonable,
    require_pandas,
    write_bytes,
    write_charges_file,
    write_csv,
    write_extxyz,
    write_json,
    write_sites_csv,
    write_table,
    write_text,
)
from dcmnet.export import tables as _tables

__all__ = list(_tables.__all__)
