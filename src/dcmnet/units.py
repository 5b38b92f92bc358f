"""Physical constants and unit conversions: the only module that holds a conversion factor.

Conventions (see docs/conventions.md):

* stored and computed: length in Å, charge in e, ESP in Hartree/e, dipole in e·Å;
* reported: ESP in kcal/(mol·e), dipole in Debye.

All constants come from CODATA 2018 through :func:`ase.units.create_units`, so that
1 Bohr = 0.529177210903 Å and 1 Hartree = 627.509474 kcal/mol.
"""
from __future__ import annotations

from ase.units import create_units

#: CODATA release the constants are taken from.
CODATA_VERSION = "2018"
_U = create_units(CODATA_VERSION)

#: 1 Bohr in Å (CODATA 2018: 0.529177210903).
BOHR_TO_ANGSTROM: float = float(_U["Bohr"])
#: 1 Å in Bohr.
ANGSTROM_TO_BOHR: float = 1.0 / BOHR_TO_ANGSTROM
#: 1 Hartree in kcal/mol (CODATA 2018: 627.509474...).
HARTREE_TO_KCAL_MOL: float = float(_U["Hartree"] / (_U["kcal"] / _U["mol"]))
#: 1 Hartree in eV.
HARTREE_TO_EV: float = float(_U["Hartree"])
#: 1 kcal/mol in Hartree.
KCAL_MOL_TO_HARTREE: float = 1.0 / HARTREE_TO_KCAL_MOL
#: 1 e·Å in Debye (about 4.80320 D).
EANGSTROM_TO_DEBYE: float = float(1.0 / _U["Debye"])
#: 1 Debye in e·Å.
DEBYE_TO_EANGSTROM: float = float(_U["Debye"])
#: 1 e·Bohr (atomic unit of dipole) in e·Å.
EBOHR_TO_EANGSTROM: float = BOHR_TO_ANGSTROM


def hartree_to_kcal(x):
    """ESP (or energy) from Hartree/e to kcal/(mol·e); works on floats and arrays."""
    return x * HARTREE_TO_KCAL_MOL


def kcal_to_hartree(x):
    """ESP (or energy) from kcal/(mol·e) to Hartree/e; works on floats and arrays."""
    return x * KCAL_MOL_TO_HARTREE


def eangstrom_to_debye(x):
    """Dipole from e·Å to Debye; works on floats and arrays."""
    return x * EANGSTROM_TO_DEBYE


def ebohr_to_eangstrom(x):
    """Dipole from atomic units (e·Bohr) to e·Å; works on floats and arrays."""
    return x * EBOHR_TO_EANGSTROM
