"""Shared pieces of the ESP file readers: options, reports, units, elements, net charges.

Every reader turns one file (or one group of companion files) into a canonical
:class:`~dcmnet.data.dataset.Dataset` (Å, e, Hartree/e, e·Å) plus a report: a list of
human-readable lines saying what was detected and decided. Lines that start with
``WARNING:`` after the file tag are warnings; :class:`Report` also emits them as Python
:class:`UserWarning` so that library users see them.

Units: each reader knows the units its format uses (for example Bohr and Hartree/e for
Gaussian ``.esp`` files, Å for psi4 geometries given in Å). ``ReadOptions.length_unit`` /
``ReadOptions.esp_unit`` override them for ambiguous files; the override is reported.
All factors come from :mod:`dcmnet.units`.
"""
from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from ase.data import atomic_numbers as _ASE_NUMBERS
from ase.data import chemical_symbols

from dcmnet.data.dataset import Dataset
from dcmnet.errors import DataError
from dcmnet.surface import DEFAULT_SHELLS
from dcmnet.units import (BOHR_TO_ANGSTROM, EBOHR_TO_EANGSTROM, KCAL_MOL_TO_HARTREE,
                          KJ_MOL_TO_HARTREE, NM_TO_ANGSTROM, VOLT_TO_HARTREE_PER_E)

PathLike = str | os.PathLike

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


class Report:
    """Collects the lines of a reader's report, each prefixed with the file's name."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.tag = self.path.name
        self.lines: list[str] = []
        #: free-form extra information (multipoles etc.) that has no canonical field
        self.extras: dict = {}

    def note(self, line: str) -> None:
        """Add an informational line."""
        self.lines.append(f"{self.tag}: {line}")

    def warn(self, line: str) -> None:
        """Add a ``WARNING:`` line and emit a :class:`UserWarning`."""
        self.lines.append(f"{self.tag}: WARNING: {line}")
        warnings.warn(f"{self.path}: {line}", UserWarning, stacklevel=3)


_VERBS = {"is", "holds", "has", "ends", "mixes", "does", "describes", "was", "states", "uses",
          "needs", "refers", "announces", "lists", "contains"}


def err(path: PathLike, msg: str, fix: str | None = None, field: str | None = None,
        mol: int | None = None, line: int | None = None) -> DataError:
    """A :class:`DataError` whose text names file, line/field, molecule and the fix.

    ``msg`` continues the subject: ``err(p, "has no grid points.", mol=3)`` gives
    ``"p: molecule 3 has no grid points."``.
    """
    subject = f"{path}"
    if line is not None:
        subject += f", line {line}"
    if field is not None:
        subject += f": field '{field}'" + (f" of molecule {int(mol)}" if mol is not None else "")
        text = f"{subject} {msg}"
    elif mol is not None:
        text = f"{subject}: molecule {int(mol)} {msg}"
    elif msg.split(" ", 1)[0] in _VERBS and line is None:
        text = f"{subject} {msg}"
    else:
        text = f"{subject}: {msg}"
    if fix:
        text += f" {fix}"
    return DataError(text)


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


def element_number(symbol: str, path, where: str = "") -> int:
    """Atomic number of an element symbol (``'C'``, ``'cl'``, ``'H1'`` → 6, 17, 1) or number.

    Digits or labels after the symbol (``H1``, ``C_a``) are tolerated; letters are not
    (``HA`` is refused rather than guessed).

    Raises:
        DataError: an unknown element symbol; the message names the file and the place.
    """
    s = str(symbol).strip()
    if re.fullmatch(r"\d+", s):
        z = int(s)
        if 1 <= z <= 118:
            return z
        raise err(path, f"atomic number {z}{where} is outside 1..118.",
                  "Give element symbols or atomic numbers of real atoms.")
    m = re.fullmatch(r"([A-Za-z]{1,2})(?:[0-9_\-.:].*)?", s)
    if m:
        cand = m.group(1)[:1].upper() + m.group(1)[1:].lower()
        if cand != "X" and cand in _ASE_NUMBERS and _ASE_NUMBERS[cand] > 0:
            return int(_ASE_NUMBERS[cand])
    raise err(path, f"unknown element symbol {symbol!r}{where}.",
              "Use standard element symbols (H, C, N, O, ...) or atomic numbers.")


def symbol(z: int) -> str:
    """Element symbol of an atomic number (``'X'`` for 0)."""
    return chemical_symbols[int(z)] if 0 <= int(z) < len(chemical_symbols) else str(z)


def formula(Z) -> str:
    """Hill-like formula (C, H first, then alphabetical) of atomic numbers."""
    Z = np.asarray(Z, int)
    counts = {symbol(z): int((Z == z).sum()) for z in np.unique(Z)}
    order = [s for s in ("C", "H") if s in counts] + sorted(s for s in counts if s not in "CH")
    if "C" not in counts:
        order = sorted(counts)
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in order)


# ---------------------------------------------------------------------------- units
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


# ---------------------------------------------------------------------------- net charges
def estimate_net_charge(Z, R, grid, esp) -> float:
    """Total charge (e) of the unconstrained least-squares point-charge fit to an ESP.

    The monopole of an ESP sampled around a molecule is well determined (Gauss's law), so
    the fitted total is close to the true net charge (within ~0.1 e on vdW shells).

    Args:
        Z: (N,) atomic numbers (unused, kept for symmetry); R: (N, 3) Å;
        grid: (G, 3) Å; esp: (G,) Hartree/e.
    Returns:
        The fitted total charge, e (not rounded).
    """
    from dcmnet.fitting import coulomb_matrix

    grid = np.asarray(grid, np.float64)
    esp = np.asarray(esp, np.float64)
    if grid.shape[0] > 4000:
        idx = np.linspace(0, grid.shape[0] - 1, 4000).astype(int)
        grid, esp = grid[idx], esp[idx]
    A = coulomb_matrix(grid, np.asarray(R, np.float64))
    q = np.linalg.lstsq(A, esp, rcond=None)[0]
    return float(q.sum())


def net_charge_from_esp(Z, R, grid, esp, path, report: Report, mol: int | None = None,
                        what: str = "the file") -> float:
    """Net charge estimated from the ESP, rounded; DataError when it is ambiguous.

    Raises:
        DataError: the fitted total is further than 0.3 e from an integer.
    """
    raw = estimate_net_charge(Z, R, grid, esp)
    q = float(np.round(raw))
    where = "" if mol is None else f" of molecule {mol}"
    if abs(raw - q) > 0.3:
        raise err(path, f"{what} does not state the net charge{where} and the ESP does not "
                  f"tell it clearly (fitted total charge {raw:+.2f} e).",
                  "Give it explicitly: --net-charge Q (Python: net_charge=Q) or a "
                  "'charge=Q' entry in the xyz comment line.")
    report.note(f"net charge{where} not stated in {what}: estimated from the ESP "
                f"(unconstrained point-charge fit totals {raw:+.3f} e → {q:+g} e); pass "
                "--net-charge to set it explicitly.")
    return q + 0.0


def check_electron_count(Z, net_charge: float, path, mol: int | None = None,
                         multiplicity: int | None = None,
                         n_electrons: float | None = None) -> None:
    """Check a net charge against what is known about the electrons.

    * ``n_electrons`` (e.g. the integral of a density cube): ``sum(Z) - net_charge`` must
      equal it within 0.5 e;
    * ``multiplicity`` 2S+1: the electron count ``sum(Z) - net_charge`` must be odd for even
      multiplicities and even for odd ones.

    Raises:
        DataError: the net charge is inconsistent; the message says what to fix.
    """
    ztot = int(np.sum(np.asarray(Z, int)))
    n_el = ztot - float(net_charge)
    where = "" if mol is None else f" of molecule {mol}"
    if n_electrons is not None and abs(n_el - n_electrons) > 0.5:
        implied = ztot - n_electrons
        raise err(path, f"net charge{where} {net_charge:+g} e implies {n_el:g} electrons, but "
                  f"the electron density integrates to {n_electrons:.2f} (net charge "
                  f"{implied:+.2f} e).", "Check the charge (--net-charge) or the density file.")
    if multiplicity is not None:
        mult = int(multiplicity)
        if mult < 1:
            raise err(path, f"multiplicity{where} is {mult}; it must be 1 or more.")
        if (round(n_el) % 2) == (mult % 2):
            raise err(path, f"net charge{where} {net_charge:+g} e gives {n_el:g} electrons, "
                      f"impossible with multiplicity {mult} (sum of Z = {ztot}).",
                      "Fix the charge or the multiplicity in the file.")


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


def com(Z, R) -> np.ndarray:
    """(3,) centre of mass in Å (ASE masses) of atoms ``Z`` (N,) at ``R`` (N, 3) Å."""
    from ase.data import atomic_masses
    m = atomic_masses[np.asarray(Z, int)]
    return (m[:, None] * np.asarray(R, float)).sum(0) / m.sum()


def dipole_to_com(mu_ebohr, origin, Z, R, net_charge) -> np.ndarray:
    """Dipole (3,) from e·Bohr about ``origin`` (Å) to e·Å about the centre of mass.

    ``mu_c = mu_o - Q (c - o)``: a no-op for neutral molecules.
    """
    mu = np.asarray(mu_ebohr, float) * EBOHR_TO_EANGSTROM
    c = com(Z, R)
    return mu - float(net_charge) * (c - np.asarray(origin, float))


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


def default_multiplicity(Z, net_charge: float) -> int:
    """1 for an even number of electrons, 2 for an odd one (lowest spin)."""
    return 1 if int(round(np.sum(np.asarray(Z, int)) - net_charge)) % 2 == 0 else 2


def molecules_of(data) -> list[dict]:
    """Per-molecule dicts of a :class:`Dataset`, a single molecule dict or a list of them."""
    if isinstance(data, Dataset):
        return [data.molecule(i) for i in range(len(data))]
    if isinstance(data, dict):
        return [data]
    return list(data)


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


def mol_formal_charges(path: PathLike) -> list[int] | None:
    """Total formal charge (e) of every record of an SDF/MOL file, read with RDKit (the
    ``M  CHG`` lines and atom-block charge codes, which ASE's reader drops).

    Returns:
        one integer per record (file order), or None when RDKit is missing or the file is
        not SDF/MOL (``.sdf``, ``.mol``, ``.sd``).
    Raises:
        DataError: a record RDKit cannot read (names the file and record).
    """
    path = Path(path)
    if path.suffix.lower() not in (".sdf", ".mol", ".sd"):
        return None
    try:
        from rdkit import Chem, RDLogger
    except ImportError:  # pragma: no cover - optional extra
        return None
    RDLogger.DisableLog("rdApp.*")
    out = []
    for k, mol in enumerate(Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)):
        if mol is None:
            raise DataError(f"{path}: record {k} could not be read by RDKit (formal charges "
                            "unknown); fix the record or give --charge.")
        out.append(int(sum(a.GetFormalCharge() for a in mol.GetAtoms())))
    return out
