"""The units ESP files come in: names users may spell, and factors to Å and Hartree/e.

Each reader knows the units its format uses (for example Bohr and Hartree/e for Gaussian
``.esp`` files); ``ReadOptions.length_unit`` / ``ReadOptions.esp_unit`` override them
for ambiguous files (:func:`~dcmnet.data.readers.base.resolve_length` and
:func:`~dcmnet.data.readers.base.resolve_esp` apply and report the override).
All factors come from :mod:`dcmnet.units`.
"""
from __future__ import annotations

from dcmnet.errors import DataError
from dcmnet.units import (
    BOHR_TO_ANGSTROM,
    KCAL_MOL_TO_HARTREE,
    KJ_MOL_TO_HARTREE,
    NM_TO_ANGSTROM,
    VOLT_TO_HARTREE_PER_E,
)

#: Length units understood by ``--length-unit``: factor that converts a value to Å.
LENGTH_UNITS: dict[str, float] = {
    "angstrom": 1.0,
    "bohr": BOHR_TO_ANGSTROM,
    "nm": NM_TO_ANGSTROM,
}
_LENGTH_ALIASES = {
    "angstrom": "angstrom", "angstroms": "angstrom", "ang": "angstrom", "a": "angstrom",
    "å": "angstrom", "aa": "angstrom",
    "bohr": "bohr", "au": "bohr", "a.u.": "bohr", "a0": "bohr", "atomic": "bohr",
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm",
}
#: ESP units understood by ``--esp-unit``: factor that converts a value to Hartree/e.
ESP_UNITS: dict[str, float] = {
    "hartree": 1.0,
    "kcal/mol": KCAL_MOL_TO_HARTREE,
    "kj/mol": KJ_MOL_TO_HARTREE,
    "volt": VOLT_TO_HARTREE_PER_E,
}
_ESP_ALIASES = {
    "hartree": "hartree", "hartree/e": "hartree", "au": "hartree", "a.u.": "hartree",
    "atomic": "hartree", "eh": "hartree", "eh/e": "hartree",
    "hartree/elementary_charge": "hartree",
    "kcal/mol": "kcal/mol", "kcal/(mol*e)": "kcal/mol", "kcal/(mol·e)": "kcal/mol",
    "kcal/mol/e": "kcal/mol", "kcal": "kcal/mol",
    "kj/mol": "kj/mol", "kj/(mol*e)": "kj/mol", "kj/mol/e": "kj/mol", "kj": "kj/mol",
    "volt": "volt", "v": "volt", "volts": "volt", "ev": "volt", "ev/e": "volt",
}
#: Human-readable names of the units above, for reports.
UNIT_LABEL = {"angstrom": "Å", "bohr": "Bohr", "nm": "nm", "hartree": "Hartree/e",
              "kcal/mol": "kcal/(mol·e)", "kj/mol": "kJ/(mol·e)", "volt": "V (eV/e)"}


def length_unit(name: str) -> str:
    """Canonical name (``angstrom``/``bohr``/``nm``) of a length unit spelled by a user.

    Raises:
        DataError: an unknown unit name (the message lists the accepted names).
    """
    key = str(name).strip().lower()
    if key not in _LENGTH_ALIASES:
        raise DataError(f"unknown length unit {name!r}; use one of "
                        f"{sorted(LENGTH_UNITS)} (e.g. --length-unit bohr).")
    return _LENGTH_ALIASES[key]


def esp_unit(name: str) -> str:
    """Canonical name (``hartree``/``kcal/mol``/``kj/mol``/``volt``) of an ESP unit.

    Raises:
        DataError: an unknown unit name (the message lists the accepted names).
    """
    key = str(name).strip().lower().replace(" ", "")
    if key not in _ESP_ALIASES:
        raise DataError(f"unknown ESP unit {name!r}; use one of {sorted(ESP_UNITS)} "
                        "(e.g. --esp-unit kcal/mol).")
    return _ESP_ALIASES[key]


