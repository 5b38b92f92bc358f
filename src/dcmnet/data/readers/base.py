"""Shared pieces of the ESP file readers: options, text parsing, geometry files, assembly.

Every reader turns one file (or one group of companion files) into a canonical
:class:`~dcmnet.data.dataset.Dataset` (Å, e, Hartree/e, e·Å) plus a report
(:mod:`.report`). Here: :class:`ReadOptions` (the user's choices), Fortran-style number
parsing, :class:`Geometry` companion files, the net charge of a single-molecule file and
:func:`build_dataset`. Units are in :mod:`.file_units`, elements and net charges in
:mod:`.chemistry`.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.chemistry import check_electron_count, formula, net_charge_from_esp
from dcmnet.data.readers.file_units import (
    ESP_UNITS,
    LENGTH_UNITS,
    UNIT_LABEL,
    esp_unit,
    length_unit,
)
from dcmnet.data.readers.report import PathLike, Report, err
from dcmnet.errors import DataError
from dcmnet.surface import DEFAULT_SHELLS
from dcmnet.units import BOHR_TO_ANGSTROM


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


# ---------------------------------------------------------------------------- parsing helpers
_FORTRAN_D = re.compile(r"(?<=[0-9.])[dD](?=[+-]?[0-9])")


def fortran_float(token: str) -> float:
    """Parse a number that may use a Fortran ``D`` exponent (``0.12D-01``) → float.

    Raises:
        ValueError: not a number.
    """
    return float(_FORTRAN_D.sub("e", token.strip()))


def parse_floats(tokens: Sequence[str], path, line_no: int, expected: int | None = None
                 ) -> list[float]:
    """Floats of a line's tokens (``D`` exponents allowed); DataError names file and line."""
    if expected is not None and len(tokens) < expected:
        raise err(path, f"expected {expected} numbers, found {len(tokens)} "
                  f"({' '.join(tokens)!r}).", "The file is truncated or not in the expected "
                  "layout.", line=line_no)
    try:
        vals = [fortran_float(t) for t in tokens]
    except ValueError:
        raise err(path, f"could not read numbers from {' '.join(tokens)!r}.",
                  "The file is corrupt or not in the expected layout.", line=line_no) from None
    return vals


# ---------------------------------------------------------------------------- units


# ---------------------------------------------------------------------------- net charges


# ---------------------------------------------------------------------------- assembly
def build_dataset(molecules: list[dict], path, report: Report) -> Dataset:
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


def read_text(path: PathLike) -> str:
    """The text of a file (UTF-8 with replacement); DataError when missing/unreadable."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found.")
    try:
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{p}: cannot read the file ({exc}).") from None


def fortran_d(value: float, digits: int = 8) -> str:
    """``value`` in Fortran ``D`` notation with a 0.1 ≤ |mantissa| < 1, e.g. ``0.12345678D-01``.

    This is how Gaussian prints numbers in ``.esp`` files (format ``D16.8``-like).
    """
    v = float(value)
    if v == 0.0 or not np.isfinite(v):
        return f"{0.0:.{digits}f}D+00" if v == 0.0 else str(v)
    e = int(np.floor(np.log10(abs(v)))) + 1
    m = round(v / 10.0 ** e, digits)
    if abs(m) >= 1.0:
        m /= 10.0
        e += 1
    return f"{m:.{digits}f}D{e:+03d}"


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write a text file atomically (temporary file + rename); creates the folder."""

    from dcmnet.fileio import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text)


@dataclasses.dataclass
class Geometry:
    """Atoms of one molecule read from a companion file (xyz, psi4 output, ORCA input).

    Attributes:
        Z: (N,) atomic numbers; R: (N, 3) positions in ``unit``; unit: length unit of the
        file (``"angstrom"``/``"bohr"``); net_charge / multiplicity: when the file states
        them, else ``None``; source: the file.
    """

    Z: np.ndarray
    R: np.ndarray
    unit: str
    source: Path
    net_charge: float | None = None
    multiplicity: int | None = None

    def positions_angstrom(self, options: "ReadOptions", report: "Report") -> np.ndarray:
        """(N, 3) positions in Å, honouring a ``--length-unit`` override."""
        return self.R * resolve_length(self.unit, options, report,
                                       f"geometry {self.source.name}")

    def describe(self) -> str:
        """One line: file, formula, unit and what it states about the charge."""
        extra = []
        if self.net_charge is not None:
            extra.append(f"net charge {self.net_charge:+g} e")
        if self.multiplicity is not None:
            extra.append(f"multiplicity {self.multiplicity}")
        return (f"geometry from {self.source.name} ({formula(self.Z)}, {len(self.Z)} atoms, "
                f"{UNIT_LABEL[self.unit]}" + (", " + ", ".join(extra) if extra else "") + ")")


def match_geometry(path, geometry: Geometry, R_data_angstrom: np.ndarray,
                   R_geom_angstrom: np.ndarray, tol: float = 0.01) -> None:
    """Check that a data file's atoms sit where the companion geometry puts them.

    Raises:
        DataError: different atom counts or positions further apart than ``tol`` Å; the
            message suggests a unit mix-up when a Bohr/Å factor explains the difference.
    """
    if len(R_data_angstrom) != len(R_geom_angstrom):
        raise err(path, f"holds {len(R_data_angstrom)} atoms but its geometry "
                  f"{geometry.source.name} has {len(R_geom_angstrom)}.",
                  "Pair each data file with the geometry of the same molecule.")
    dev = float(np.abs(R_data_angstrom - R_geom_angstrom).max()) if len(R_geom_angstrom) else 0
    if dev > tol:
        hint = ""
        for f, name in ((BOHR_TO_ANGSTROM, "Bohr"), (1 / BOHR_TO_ANGSTROM, "Å")):
            if np.abs(R_data_angstrom - R_geom_angstrom * f).max() < tol:
                hint = (f" The geometry file looks like it is in {name}: pass "
                        "--length-unit accordingly or fix the file.")
        raise err(path, f"atoms differ from those of {geometry.source.name} by up to "
                  f"{dev:.3f} Å.", "Use the geometry of the same calculation (same "
                  "orientation and order)." + hint)


def resolve_net_charge(geometry: Geometry | None, options: "ReadOptions", Z, R, grid, esp,
                       path, report: "Report", what: str) -> float:
    """Net charge of a single-molecule file: the geometry file's (a different
    ``--net-charge`` gives a warning), else the user's, else estimated from the ESP;
    cross-checked against the multiplicity when known.

    Raises:
        DataError: an ambiguous estimate, or a charge inconsistent with the multiplicity.
    """
    if geometry is not None and geometry.net_charge is not None:
        q = float(geometry.net_charge)
        report.note(f"net charge {q:+g} e from {geometry.source.name}.")
        if options.net_charge is not None and float(options.net_charge) != q:
            report.warn(f"{geometry.source.name} states net charge {q:+g} e; --net-charge "
                        f"{options.net_charge:+g} only applies to files that do not state "
                        "it, so the file's charge is used.")
    elif options.net_charge is not None:
        q = float(options.net_charge)
        report.note(f"net charge {q:+g} e given by the user.")
    else:
        q = net_charge_from_esp(Z, R, grid, esp, path, report, None, what)
    if geometry is not None and geometry.multiplicity is not None:
        check_electron_count(Z, q, path, None, multiplicity=geometry.multiplicity)
    return q + 0.0


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
