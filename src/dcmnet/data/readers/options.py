"""The reading options a user can give (:class:`ReadOptions`) and how they override a
format's own units (:func:`resolve_length`, :func:`resolve_esp`; the tables are in
:mod:`.file_units`).
"""
from __future__ import annotations

import dataclasses

from dcmnet.data.readers.file_units import (
    ESP_UNITS,
    LENGTH_UNITS,
    UNIT_LABEL,
    esp_unit,
    length_unit,
)
from dcmnet.data.readers.report import ReadReport
from dcmnet.errors import DataError
from dcmnet.surface import DEFAULT_SHELLS


@dataclasses.dataclass
class ReadOptions:
    """Choices a user can make when reading files (all optional).

    Attributes:
        length_unit: unit of all lengths in the file(s), overriding the format's own
            (``angstrom``, ``bohr``, ``nm``); ``None`` keeps the format's unit.
        esp_unit: unit of the ESP values (``hartree``, ``kcal/mol``, ``kj/mol``, ``volt``).
        net_charge: total charge (e) for molecules whose files do not state it; ``None``
            lets the reader take it from the file or estimate it from the ESP.
        cube_mode: ``"shells"`` keeps cube points lying on the vdW shells
            ``cube_shells`` (± half a voxel); ``"outside"`` keeps every point at least
            ``cube_min_scale`` × vdW radius from all atoms.
        cube_shells: vdW scale factors of the shells (default Merz–Kollman 1.4..2.0).
        cube_min_scale: the inner vdW scale for ``"outside"``.
        cube_max_points: keep at most this many cube points (evenly strided), ``None`` = all.
        check_units: run the unit sanity checks (:mod:`dcmnet.data.sanity`).
    """

    length_unit: str | None = None
    esp_unit: str | None = None
    net_charge: float | None = None
    cube_mode: str = "shells"
    cube_shells: tuple[float, ...] = DEFAULT_SHELLS
    cube_min_scale: float = 1.4
    cube_max_points: int | None = None
    check_units: bool = True

    def __post_init__(self):
        if self.length_unit is not None:
            self.length_unit = length_unit(self.length_unit)
        if self.esp_unit is not None:
            self.esp_unit = esp_unit(self.esp_unit)
        if self.cube_mode not in ("shells", "outside"):
            raise DataError(f"cube_mode must be 'shells' or 'outside', not {self.cube_mode!r}.")



def _resolve(native: str, override: str | None, table: dict, what: str,
             report: ReadReport) -> float:
    """Factor of ``table`` for ``native`` units, or for the user's ``override`` (reported)."""
    unit = native
    if override is not None and override != native:
        report.note(f"{what}: the format's unit is {UNIT_LABEL[native]}, overridden by the "
                    f"user to {UNIT_LABEL[override]}.")
        unit = override
    return table[unit]


def resolve_length(native: str, options: ReadOptions, report: ReadReport,
                   what: str = "lengths") -> float:
    """Factor to Å for a reader whose format uses ``native`` units; applies the override."""
    return _resolve(native, options.length_unit, LENGTH_UNITS, what, report)


def resolve_esp(native: str, options: ReadOptions, report: ReadReport) -> float:
    """Factor to Hartree/e for a reader whose format uses ``native`` ESP units."""
    return _resolve(native, options.esp_unit, ESP_UNITS, "ESP", report)


__all__ = ["ReadOptions", "resolve_length", "resolve_esp"]
