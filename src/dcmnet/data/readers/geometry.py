"""Geometry companion files of single-molecule ESP files (espot, psi4 grids, ORCA output).

:class:`Geometry` holds the atoms (and, when the file states them, net charge and
multiplicity) of an xyz file, a psi4 output or an ORCA input; :func:`match_geometry` checks
a data file's atoms against it; :func:`resolve_net_charge` decides a single molecule's net
charge; :func:`require_geometry` and :func:`single_molecule_dataset` are the shared opening
and closing of the readers whose data files name no atoms.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.assemble import build_dataset
from dcmnet.data.readers.chemistry import check_electron_count, formula, net_charge_from_esp
from dcmnet.data.readers.file_units import UNIT_LABEL
from dcmnet.data.readers.options import ReadOptions, resolve_length
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.units import BOHR_TO_ANGSTROM


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

    def positions_angstrom(self, options: ReadOptions, report: ReadReport) -> np.ndarray:
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


def resolve_net_charge(geometry: Geometry | None, options: ReadOptions, Z, R, grid, esp,
                       path, report: ReadReport, what: str) -> float:
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
                        "it, so the file's charge is used.", field="net_charge", molecule=0)
    elif options.net_charge is not None:
        q = float(options.net_charge)
        report.note(f"net charge {q:+g} e given by the user.")
    else:
        q = net_charge_from_esp(Z, R, grid, esp, path, report, None, what)
    if geometry is not None and geometry.multiplicity is not None:
        check_electron_count(Z, q, path, None, multiplicity=geometry.multiplicity)
    return q + 0.0


def require_geometry(path, geometry: Geometry | None, what: str, fix: str) -> Geometry:
    """``geometry``, or the DataError of a data file (``what``, e.g. "an espot file holds no
    element names") that cannot be read without one.

    Raises:
        DataError: ``geometry`` is ``None``; the message ends with ``fix``.
    """
    if geometry is None:
        raise err(path, what, fix)
    return geometry


def single_molecule_dataset(path, geometry: Geometry, options: ReadOptions, R, grid, esp,
                            name: str, what: str, report: ReadReport) -> Dataset:
    """The one-molecule dataset of a file whose atoms come from ``geometry``.

    Decides the net charge (:func:`resolve_net_charge`), reports that the file has no
    reference charges or dipole, and assembles the molecule.

    Args:
        R: (N, 3) Å; grid: (G, 3) Å; esp: (G,) Hartree/e; name: the molecule's name; what:
        the file in words ("an espot file").
    Raises:
        DataError: an undecidable net charge, or invalid values (:func:`build_dataset`).
    """
    q = resolve_net_charge(geometry, options, geometry.Z, R, grid, esp, path, report, what)
    report.note(f"no reference charges or dipole in {what} ('mono' and dipole absent).")
    mol = {"Z": geometry.Z, "R": R, "grid": grid, "esp": esp, "net_charge": q, "name": name}
    report.note(f"molecule 0: {formula(geometry.Z)}, net charge {q:+g} e.")
    return build_dataset([mol], path, report)


__all__ = ["Geometry", "match_geometry", "resolve_net_charge", "require_geometry",
           "single_molecule_dataset"]
