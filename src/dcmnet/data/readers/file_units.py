"""The units ESP files come in, and the options that override them.

Each reader knows the units its format uses (for example Bohr and Hartree/e for Gaussian
``.esp`` files); ``ReadOptions.length_unit`` / ``ReadOptions.esp_unit`` override them
for ambiguous files (:func:`resolve_length`, :func:`resolve_esp` report the override).
All factors come from :mod:`dcmnet.units`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dcmnet.errors import DataError
from dcmnet.units import (
    BOHR_TO_ANGSTROM,
    KCAL_MOL_TO_HARTREE,
    KJ_MOL_TO_HARTREE,
    NM_TO_ANGSTROM,
    VOLT_TO_HARTREE_PER_E,
)

if TYPE_CHECKING:                 # annotations only: base imports this module
    from dcmnet.data.readers.base import ReadOptions
    from dcmnet.data.readers.report import Report

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


def resolve_length(native: str, options: ReadOptions, report: Report, what: str = "lengths"
                   ) -> float:
    """Factor to Å for a reader whose format uses ``native`` units; applies the override."""
    unit = native
    if options.length_unit is not None and options.length_unit != native:
        report.note(f"{what}: the format's unit is {UNIT_LABEL[native]}, overridden by the "
                    f"user to {UNIT_LABEL[options.length_unit]}.")
        unit = options.length_unit
    return LENGTH_UNITS[unit]


def resolve_esp(native: str, options: ReadOptions, report: Report) -> float:
    """Factor to Hartree/e for a reader whose format uses ``native`` ESP units."""
    unit = native
    if options.esp_unit is not None and options.esp_unit != native:
        report.note(f"ESP: the format's unit is {UNIT_LABEL[native]}, overridden by the "
                    f"user to {UNIT_LABEL[options.esp_unit]}.")
        unit = options.esp_unit
    return ESP_UNITS[unit]
