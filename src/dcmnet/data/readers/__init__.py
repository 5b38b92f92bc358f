"""Readers of ESP file formats, one module per family, and format detection.

=====================  ====================================================  =================
module                 format                                                 native units
=====================  ====================================================  =================
:mod:`.cube`           Gaussian cube (potential [+ density])                 Bohr (Å if the
                                                                              voxel counts are
                                                                              negative), Ha/e
:mod:`.gaussian_esp`   Gaussian ``.esp`` from ``pop=MK iop(6/50=1)``         Bohr, Hartree/e
:mod:`.espot`          AmberTools ``espot`` (+ xyz for the elements)         Bohr, Hartree/e
:mod:`.psi4`           psi4 ``grid.dat`` + ``grid_esp.dat`` (+ geometry)     geometry's, Ha/e
:mod:`.orca`           ORCA ``orca_vpot`` output (+ input or xyz)            Bohr, Hartree/e
:mod:`.hdf5`           SPICE-like HDF5 with ESP datasets                     ``units`` attrs
                                                                              (Bohr, Ha/e)
:mod:`.extxyz`         extxyz: atoms + ``X`` rows carrying ``esp``           Å, Hartree/e
:mod:`.npz`            NPZ (canonical, mmml-style and aliases; layouts in    Å, Hartree/e
                       :mod:`.npz_layout`)
=====================  ====================================================  =================

Every reader returns ``(Dataset, ReadReport)`` (:mod:`.report`: format, canonical flag,
notes and warnings as records; ``report.lines()`` is the printed text); :mod:`.registry`
detects formats by content and pairs companion files. Shared pieces: :mod:`.options`
(``ReadOptions``, unit overrides), :mod:`.text` (Fortran numbers, text files),
:mod:`.geometry` (companion geometries, single-molecule files), :mod:`.assemble`
(``build_dataset``), :mod:`.file_units`, :mod:`.chemistry`. Use :func:`dcmnet.data.load_dataset` to read any
mix of them.
"""
from dcmnet.data.readers.cube import read_cube
from dcmnet.data.readers.espot import read_espot, write_espot
from dcmnet.data.readers.extxyz import read_extxyz, read_xyz_geometry, write_extxyz
from dcmnet.data.readers.file_units import ESP_UNITS, LENGTH_UNITS
from dcmnet.data.readers.geometry import Geometry
from dcmnet.data.readers.gaussian_esp import read_gaussian_esp, write_gaussian_esp
from dcmnet.data.readers.hdf5 import read_hdf5, write_hdf5
from dcmnet.data.readers.options import ReadOptions
from dcmnet.data.readers.orca import read_orca_vpot, write_orca
from dcmnet.data.readers.psi4 import read_psi4_grid, write_psi4_grid
from dcmnet.data.readers.registry import KINDS, Job, plan, read_geometry, read_job, sniff
from dcmnet.data.readers.report import ReadReport, ReadWarning

__all__ = [
    "ReadOptions", "Geometry", "LENGTH_UNITS", "ESP_UNITS", "KINDS", "Job", "plan", "sniff",
    "read_job", "read_geometry", "read_cube", "read_gaussian_esp", "write_gaussian_esp",
    "read_espot", "write_espot", "read_psi4_grid", "write_psi4_grid", "read_orca_vpot",
    "write_orca", "read_hdf5", "write_hdf5", "read_extxyz", "write_extxyz",
    "read_xyz_geometry", "ReadReport", "ReadWarning",
]
