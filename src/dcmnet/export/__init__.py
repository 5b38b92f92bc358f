"""Everything dcmnet writes for other programs (MD engines).

* :mod:`dcmnet.export.openmm` — an OpenMM ``System`` / PDB / ForceField XML with one massless
  virtual site per charge site (``to_openmm``; needs the ``md`` extra: ``openmm``).
* :mod:`dcmnet.export.charmm` — the ``.dcm`` file of CHARMM's DCM module (charges in local
  axis frames of atom triples).
* :mod:`dcmnet.export.frames` — the local axis frames both share.

Tables and predicted-charge files (CSV, JSON, Parquet, extended XYZ, the
``dcmnet-charges-v1`` text file) are written by :mod:`dcmnet.fileio.tables`.

The OpenMM and CHARMM modules are imported on demand (``import dcmnet.export.openmm``), so
importing :mod:`dcmnet.export` never needs OpenMM.
"""
