"""Gaussian ``.esp`` files written with ``pop=MK iop(6/50=1)`` (also read by antechamber).

Layout (Gaussian 09/16; the same file antechamber/espgen read, see AmberTools
``espgen.c`` and the RESP documentation):

.. code-block:: text

     ESP FILE - ATOMIC UNITS
     CHARGE =  0 - MULTIPLICITY =   1
     ATOMIC COORDINATES AND ESP CHARGES. #ATOMS =     3
     O   0.00000000D+00  0.00000000D+00  0.22143139D+00 -0.82187498D+00
     H   ...
     DIPOLE MOMENT:
     X=  0.00000000D+00 Y=  0.00000000D+00 Z= -0.80735082D+00 Total=  0.80735082D+00
     TRACELESS QUADRUPOLE MOMENT:
       XX=  ...   YY=  ...   ZZ=  ...
       XY=  ...   XZ=  ...   YZ=  ...
     ESP VALUES AND GRID POINT COORDINATES. #POINTS =   1234
     -0.12345678D-01  0.1D+01  0.2D+01  0.3D+01
     ...

Every number uses a Fortran ``D`` exponent. Units are atomic: coordinates in Bohr, ESP in
Hartree/e, dipole in e·Bohr, quadrupole in e·Bohr². The atom lines carry the element
symbol, the position and the Merz–Kollman ESP charge (used as ``mono``; all-zero columns,
written by some converters, count as absent). The net charge and multiplicity of the
header are checked against the electron count. Several blocks (files concatenated) are
read as several molecules.

The dipole is taken about the origin of the file's coordinates and moved to the centre of
mass (``mu_c = mu_0 - Q c``, a no-op for neutral molecules).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.assemble import build_dataset
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.text import fortran_d, parse_floats, read_text, write_text_atomic
from dcmnet.data.readers.chemistry import (
    check_electron_count,
    com,
    default_multiplicity,
    dipole_to_com,
    element_number,
    formula,
    molecules_of,
    symbol,
)
from dcmnet.data.readers.file_units import UNIT_LABEL
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.units import ANGSTROM_TO_BOHR

HEADER = "ESP FILE - ATOMIC UNIT"
_NUM = r"([-+]?[0-9]*\.?[0-9]+(?:[DdEe][-+]?[0-9]+)?)"
_CHARGE = re.compile(r"CHARGE\s*=\s*([-+]?\d+(?:\.\d*)?)\s*-\s*MULTIPLICITY\s*=\s*(\d+)")
_NATOMS = re.compile(r"(?:#ATOMS|NUMBER OF CENTERS)\s*=\s*(\d+)")
_NPOINTS = re.compile(r"#POINTS\s*=\s*(\d+)")
_COMP = re.compile(r"\b(XX|YY|ZZ|XY|XZ|YZ|X|Y|Z|Total)=\s*" + _NUM)
#: one Fortran/C number; also splits numbers printed without a space between them
_TOKEN = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[DdEe][-+]?\d+)?|[-+]?(?:nan|inf)",
                    re.IGNORECASE)


def _numbers(text: str) -> list[str]:
    """Number tokens of a line, robust to Fortran fields that touch (``0.1D+00-0.2D+00``)."""
    return _TOKEN.findall(text)


def looks_like_gaussian_esp(lines: list[str]) -> bool:
    """True when the first non-blank line is Gaussian's ``ESP FILE - ATOMIC UNITS`` header."""
    for ln in lines[:3]:
        if ln.strip():
            return HEADER in ln.upper()
    return False


def _components(line: str) -> dict[str, float]:
    return {k: float(v.replace("D", "E").replace("d", "e")) for k, v in _COMP.findall(line)}


def _parse_block(lines: list[str], start: int, path, rep: ReadReport, options: ReadOptions,
                 lf: float, ef: float, index: int) -> tuple[dict, int]:
    """Parse one block starting at its header line; return (molecule, next line index).

    Sections: charge and atom-count lines, atom lines, dipole/quadrupole lines, ESP points;
    then the molecule is assembled (:func:`_block_molecule`).

    Raises:
        DataError: a missing or damaged section, naming the line (or the molecule).
    """
    charge, mult, n_at, i = _block_header(lines, start, path)
    Z, R, q, i = _block_atoms(lines, i, n_at, path)
    dip, quad, npts, i = _block_moments(lines, i, path, index)
    v, i = _block_points(lines, i, npts, path, index)
    mol = _block_molecule(path, rep, index, lf, ef, charge, mult, np.array(Z, int), R, q, v,
                          dip, quad)
    return mol, i


def _block_header(lines: list[str], start: int, path) -> tuple[float, int, int, int]:
    """``(charge, multiplicity, atom count, index of the first atom line)``."""
    i = start + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    m = _CHARGE.search(lines[i]) if i < len(lines) else None
    if not m:
        raise err(path, "expected 'CHARGE = q - MULTIPLICITY = m' after the header.",
                  "The file is not a Gaussian iop(6/50=1) ESP file or is damaged.", line=i + 1)
    charge, mult = float(m.group(1)), int(m.group(2))
    i += 1
    m = _NATOMS.search(lines[i]) if i < len(lines) else None
    if not m:
        raise err(path, "expected the 'ATOMIC COORDINATES ... #ATOMS = n' line.",
                  "The file is damaged.", line=i + 1)
    return charge, mult, int(m.group(1)), i + 1


def _block_atoms(lines: list[str], i: int, n_at: int, path):
    """``(Z [N], R [N][3] Bohr, ESP charges [N], next line index)`` of the atom lines."""
    Z, R, q = [], [], []
    for a in range(n_at):
        if i >= len(lines):
            raise err(path, f"ends inside the atom list ({a} of {n_at} atoms).",
                      "The file is truncated.", line=i + 1)
        t = lines[i].split(None, 1)
        nums = _numbers(t[1]) if len(t) > 1 else []
        if len(nums) < 3:
            raise err(path, f"atom line {a + 1} has {len(nums)} numbers; expected the symbol, "
                      "x, y, z and the ESP charge.", "The file is damaged.", line=i + 1)
        Z.append(element_number(t[0], path, f" (line {i + 1})"))
        vals = parse_floats(nums[:4], path, i + 1, 3)
        R.append(vals[:3])
        q.append(vals[3] if len(vals) > 3 else 0.0)
        i += 1
    return Z, R, q, i


def _block_moments(lines: list[str], i: int, path, index: int):
    """``(dipole (3,) | None, quadrupole components, point count, index of the first point
    line)``: the lines between the atoms and the ESP values."""
    dip, quad = None, {}
    npts = None
    while i < len(lines):
        up = lines[i].upper()
        if "DIPOLE MOMENT" in up:
            c = _components(lines[i + 1]) if i + 1 < len(lines) else {}
            if all(k in c for k in "XYZ"):
                dip = np.array([c["X"], c["Y"], c["Z"]])
            i += 2
            continue
        if "QUADRUPOLE" in up:
            for j in (1, 2):
                if i + j < len(lines):
                    quad.update({k: v for k, v in _components(lines[i + j]).items()
                                 if len(k) == 2})
            i += 3
            continue
        m = _NPOINTS.search(lines[i])
        if m and "ESP VALUES" in up:
            npts = int(m.group(1))
            i += 1
            break
        if lines[i].strip():
            raise err(path, f"unexpected line {lines[i].strip()[:60]!r} before the ESP "
                      "values.", "The file is damaged.", line=i + 1)
        i += 1
    if npts is None:
        raise err(path, "has no 'ESP VALUES AND GRID POINT COORDINATES. #POINTS = n' "
                  "section.", "Rerun Gaussian with pop=MK iop(6/50=1) or check the file.",
                  mol=index)
    return dip, quad, npts, i


def _block_points(lines: list[str], i: int, npts: int, path, index: int):
    """``(rows (P, 4) of 'V x y z' in atomic units, next line index)``."""
    vals = []
    first = i
    while i < len(lines) and lines[i].strip() and HEADER not in lines[i].upper():
        vals.append(parse_floats(_numbers(lines[i])[:4], path, i + 1, 4))
        i += 1
    if len(vals) != npts:
        raise err(path, f"announces {npts} ESP points in its header but {len(vals)} follow "
                  f"(lines {first + 1}..{i}).", "The file is truncated or was edited.",
                  mol=index)
    if npts == 0:
        raise err(path, "has no ESP grid points.", "Regenerate the ESP.", mol=index)
    return np.array(vals), i


def _block_molecule(path, rep: ReadReport, index: int, lf: float, ef: float, charge: float,
                    mult: int, Z: np.ndarray, R, q, v: np.ndarray, dip, quad: dict) -> dict:
    """The molecule dict of one block (Å, Hartree/e; ``mono`` from a non-empty ESP-charge
    column; dipole about the centre of mass) and its report line.

    Raises:
        DataError: a non-integer header charge, or one inconsistent with the multiplicity.
    """
    R = np.array(R) * lf
    frac = abs(charge - round(charge))
    if frac > 1e-6:
        raise err(path, f"has a non-integer CHARGE = {charge} in its header.",
                  "Fix the header.", mol=index)
    charge = float(round(charge)) + 0.0
    check_electron_count(Z, charge, path, index, multiplicity=mult)
    mol = {"Z": Z, "R": R, "grid": v[:, 1:4] * lf, "esp": v[:, 0] * ef,
           "net_charge": charge, "name": f"{Path(path).stem}" + (f":{index}" if index else "")}
    q = np.array(q)
    if np.any(q != 0):
        mol["mono"] = q
        if abs(q.sum() - charge) > 0.01:
            rep.warn(f"ESP charges of molecule {index} sum to {q.sum():.4f} e, not the "
                     f"header's {charge:+g} e.", molecule=index, field="mono", stacklevel=4)
    if dip is not None:
        mol["dipole"] = dipole_to_com(dip, np.zeros(3), Z, R, charge)
    rep.extras.setdefault("quadrupole_traceless_au", []).append(quad or None)
    rep.note(f"molecule {index}: {formula(Z)}, {len(Z)} atoms, {len(v)} ESP points, charge "
             f"{charge:+g} e and multiplicity {mult} from the header (electron count "
             "consistent); "
             + ("Merz–Kollman ESP charges used as 'mono'; " if "mono" in mol
                else "ESP-charge column empty (no 'mono'); ")
             + ("dipole (e·Bohr about the origin) moved to the centre of mass; "
                if dip is not None else "no dipole; ")
             + ("traceless quadrupole (e·Bohr², not used for training): "
                + ", ".join(f"{k}={v:.5g}" for k, v in quad.items()) + "." if quad
                else "no quadrupole."))
    return mol


def read_gaussian_esp(path, options: ReadOptions | None = None) -> tuple[Dataset, ReadReport]:
    """Read a Gaussian ``iop(6/50=1)`` ESP file (one molecule per block).

    Returns:
        ``(dataset, report)``: positions and grid in Å, ESP in Hartree/e, ``mono`` from
        the ESP-charge column, dipole in e·Å about the centre of mass.
    Raises:
        DataError: malformed header/lines, a point count that differs from the header's,
            unknown element symbols, charge inconsistent with the multiplicity.
    """
    options = options or ReadOptions()
    path = Path(path)
    rep = ReadReport(path, "gaussian_esp")
    lines = read_text(path).splitlines()
    if not looks_like_gaussian_esp(lines):
        raise err(path, f"does not start with '{HEADER}S'.",
                  "This is not a Gaussian iop(6/50=1) ESP file.")
    rep.note("Gaussian ESP file (pop=MK iop(6/50=1)): Fortran D exponents, atomic units "
             f"(lengths {UNIT_LABEL['bohr']}, ESP {UNIT_LABEL['hartree']}).")
    lf = resolve_length("bohr", options, rep)
    ef = resolve_esp("hartree", options, rep)
    mols, i = [], 0
    while i < len(lines):
        if HEADER in lines[i].upper():
            mol, i = _parse_block(lines, i, path, rep, options, lf, ef, len(mols))
            mols.append(mol)
        else:
            i += 1
    if options.net_charge is not None:
        for k, m in enumerate(mols):
            if m["net_charge"] != float(options.net_charge):
                rep.warn(f"the header states net charge {m['net_charge']:+g} e for molecule "
                         f"{k}; --net-charge {options.net_charge:+g} only applies to files "
                         "that do not state it, so the header's charge is used.",
                         molecule=k, field="net_charge")
    return build_dataset(mols, path, rep), rep


def write_gaussian_esp(data, path, multiplicity: int | None = None) -> Path:
    """Write molecule(s) in the Gaussian ``iop(6/50=1)`` layout (atomic units, D exponents).

    Args:
        data: a :class:`Dataset`, one molecule dict (``Z``, ``R`` Å, ``grid`` Å, ``esp``
            Hartree/e, ``net_charge``, optional ``mono``, ``dipole`` e·Å about the centre of
            mass) or a list of them; several molecules become concatenated blocks.
        multiplicity: written in the header (default: 1 or 2 from the electron count).
    Returns:
        The path written (atomically).
    """
    out = []
    for m in molecules_of(data):
        Z = np.asarray(m["Z"], int)
        R = np.asarray(m["R"], float) * ANGSTROM_TO_BOHR
        q = float(m.get("net_charge", 0.0))
        mult = multiplicity or default_multiplicity(Z, q)
        mono = m.get("mono")
        out.append(" ESP FILE - ATOMIC UNITS")
        out.append(f" CHARGE = {int(round(q)):3d} - MULTIPLICITY = {mult:3d}")
        out.append(f" ATOMIC COORDINATES AND ESP CHARGES. #ATOMS = {len(Z):5d}")
        for a in range(len(Z)):
            qa = 0.0 if mono is None else float(mono[a])
            out.append(f" {symbol(Z[a]):<2s} " + " ".join(
                f"{fortran_d(x):>15s}" for x in (*R[a], qa)))
        dip = m.get("dipole")
        out.append(" DIPOLE MOMENT:")
        if dip is not None:
            mu0 = (np.asarray(dip, float) + q * com(Z, m["R"])) * ANGSTROM_TO_BOHR
            out.append(" X= {} Y= {} Z= {} Total= {}".format(
                *(f"{fortran_d(x):>15s}" for x in (*mu0, np.linalg.norm(mu0)))))
        else:
            out.append(" X= {0} Y= {0} Z= {0} Total= {0}".format(f"{fortran_d(0.0):>15s}"))
        out.append(" TRACELESS QUADRUPOLE MOMENT:")
        zero = f"{fortran_d(0.0):>15s}"
        out.append(f"   XX= {zero}   YY= {zero}   ZZ= {zero}")
        out.append(f"   XY= {zero}   XZ= {zero}   YZ= {zero}")
        grid = np.asarray(m["grid"], float) * ANGSTROM_TO_BOHR
        esp = np.asarray(m["esp"], float)
        out.append(f" ESP VALUES AND GRID POINT COORDINATES. #POINTS = {len(esp):8d}")
        for k in range(len(esp)):
            out.append(" " + " ".join(f"{fortran_d(x):>15s}" for x in (esp[k], *grid[k])))
    return write_text_atomic(path, "\n".join(out) + "\n")


__all__ = ["read_gaussian_esp", "write_gaussian_esp", "looks_like_gaussian_esp"]
