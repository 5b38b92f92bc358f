"""Physical constants and unit conversions: the only module that holds a conversion factor.

Conventions (see docs/conventions.md):

* stored and computed: length in Å, charge in e, ESP in Hartree/e, dipole in e·Å;
* reported: ESP in kcal/(mol·e), dipole in Debye.

All constants come from CODATA 2018 through :func:`ase.units.create_units`, so that
1 Bohr = 0.529177210903 Å and 1 Hartree = 627.509474 kcal/mol.
"""
from __future__ import annotations

from ase.units import create_units

#: Largest atomic number (oganesson): real atoms have ``1 <= Z <= MAX_ATOMIC_NUMBER``, 0 marks
#: padding. (A model's embedding covers ``0..ModelConfig.max_atomic_number``.)
MAX_ATOMIC_NUMBER = 118

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

# ---------------------------------------------------------------- constants added for data readers
#: 1 Hartree in kJ/mol (CODATA 2018: 2625.4996...).
HARTREE_TO_KJ_MOL: float = float(_U["Hartree"] / (_U["kJ"] / _U["mol"]))
#: 1 kJ/mol in Hartree.
KJ_MOL_TO_HARTREE: float = 1.0 / HARTREE_TO_KJ_MOL
#: 1 Hartree/e (atomic unit of electric potential) in volts; numerically 1 Hartree in eV.
HARTREE_PER_E_TO_VOLT: float = HARTREE_TO_EV
#: 1 volt (= 1 eV/e) in Hartree/e.
VOLT_TO_HARTREE_PER_E: float = 1.0 / HARTREE_TO_EV
#: 1 nm in Å.
NM_TO_ANGSTROM: float = float(_U["nm"])
#: 1 Debye in e·Bohr (atomic units of dipole).
DEBYE_TO_EBOHR: float = DEBYE_TO_EANGSTROM / BOHR_TO_ANGSTROM

# ---------------------------------------------------------------- constants added for md/ (energies)
#: Coulomb constant e²/(4πε₀) in eV·Å (= 1 Hartree · 1 Bohr; CODATA 2018: 14.3996...).
COULOMB_EV_ANGSTROM: float = HARTREE_TO_EV * BOHR_TO_ANGSTROM
#: 1 eV in kcal/mol (CODATA 2018: 23.0605...).
EV_TO_KCAL_MOL: float = HARTREE_TO_KCAL_MOL / HARTREE_TO_EV
