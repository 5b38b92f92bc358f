"""ORCA ``orca_vpot`` output (+ the ORCA input or an xyz file for the atoms).

``orca_vpot NAME.gbw NAME.scfp POINTS.xyz OUT`` evaluates the total ESP of a converged
ORCA density on given points (ORCA manual, "orca_vpot"). Both files are plain text in
atomic units:

* the points file: the number of points on line 1, then ``x y z`` per line (Bohr);
* the output ``OUT``: the number of points on line 1, then ``x y z V`` per line (Bohr,
  Hartree/e).

The output names no atoms, so it is paired with the ORCA input of the same job
(``* xyz CHARGE MULT`` … ``*`` block, Å unless ``! Bohrs``; ``* xyzfile CHARGE MULT
FILE`` is followed to FILE) or an xyz file (ORCA writes ``NAME.xyz``). The input's charge
and multiplicity are used and checked against the electron count.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.chemistry import (
    default_multiplicity,
    element_number,
    only_molecule,
    symbol,
)
from dcmnet.data.readers.geometry import Geometry, require_geometry, single_molecule_dataset
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.data.readers.text import parse_floats, read_text, write_text_atomic
from dcmnet.units import ANGSTROM_TO_BOHR

_STAR = re.compile(r"^\s*\*\s*(xyzfile|xyz|int|gzmt)\s+([-+]?\d+)\s+(\d+)\s*(\S+)?",
                   re.IGNORECASE)


def _count_then_rows(lines: list[str], ncol: int) -> bool:
    if len(lines) < 2:
        return False
    t = lines[0].split()
    if len(t) != 1:
        return False
    try:
        n = int(t[0])
        rows = [ln for ln in lines[1:] if ln.strip()]
        if n < 1 or len(rows[0].split()) != ncol:
            return False
        [float(x) for x in rows[0].split()]
    except (ValueError, IndexError):
        return False
    return True


def looks_like_orca_vpot(lines: list[str]) -> bool:
    """True for a point count followed by ``x y z V`` rows (the ``orca_vpot`` output)."""
    return _count_then_rows(lines, 4)


def looks_like_orca_points(lines: list[str]) -> bool:
    """True for a point count followed by ``x y z`` rows (the ``orca_vpot`` points input)."""
    return _count_then_rows(lines, 3)


def looks_like_orca_input(text: str) -> bool:
    """True for an ORCA input with a ``* xyz``/``* xyzfile`` coordinate block."""
    return any(_STAR.match(ln) for ln in text.splitlines()) and "!" in text


def parse_orca_input_geometry(path) -> Geometry:
    """Atoms, charge and multiplicity from an ORCA input's coordinate block.

    Raises:
        DataError: no ``* xyz`` block, an unterminated block, unknown elements, or a
            referenced ``xyzfile`` that is missing.
    """
    path = Path(path)
    lines = read_text(path).splitlines()
    text = "\n".join(lines)
    bohr = bool(re.search(r"^\s*!.*\bbohrs?\b", text, re.IGNORECASE | re.MULTILINE))
    for i, ln in enumerate(lines):
        m = _STAR.match(ln)
        if not m:
            continue
        kind, q, mult = m.group(1).lower(), float(m.group(2)), int(m.group(3))
        if kind == "xyzfile":
            from dcmnet.data.readers.extxyz import read_xyz_geometry
            ref = path.parent / (m.group(4) or "")
            if not m.group(4) or not ref.exists():
                raise err(path, f"'* xyzfile' refers to {m.group(4)!r}, which is missing.",
                          "Put the xyz file next to the input.", line=i + 1)
            g = read_xyz_geometry(ref)
            return Geometry(Z=g.Z, R=g.R, unit="angstrom", source=path, net_charge=q,
                            multiplicity=mult)
        if kind != "xyz":
            raise err(path, f"uses '* {kind}' coordinates; dcmnet reads Cartesian '* xyz' "
                      "blocks.", "Give Cartesian coordinates or an xyz file.", line=i + 1)
        Z, R = [], []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "*":
            t = lines[j].split()
            if t:
                Z.append(element_number(t[0], path, f" (line {j + 1})"))
                R.append(parse_floats(t[1:4], path, j + 1, 3))
            j += 1
        if j >= len(lines):
            raise err(path, "the '* xyz' block is not closed by a line with '*'.",
                      "Fix the input file.", line=i + 1)
        return Geometry(Z=np.array(Z, int), R=np.array(R, float),
                        unit="bohr" if bohr else "angstrom", source=path, net_charge=q,
                        multiplicity=mult)
    raise err(path, "holds no '* xyz CHARGE MULT' coordinate block.",
              "Give the ORCA input of the job or an xyz file.")


def read_orca_vpot(path, geometry: Geometry | None, options: ReadOptions | None = None
                   ) -> tuple[Dataset, ReadReport]:
    """Read an ``orca_vpot`` output with the geometry of the job.

    Returns:
        ``(dataset, report)``: one molecule; Å, Hartree/e.
    Raises:
        DataError: no geometry, a point count that differs from line 1, bad numbers.
    """
    options = options or ReadOptions()
    path = Path(path)
    rep = ReadReport(path, "orca_vpot")
    geometry = require_geometry(path, geometry, "an orca_vpot output holds no atoms, so it "
                                "needs the ORCA input (or xyz) of the same job.",
                                "Put 'NAME.inp' or 'NAME.xyz' next to it.")
    lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
    try:
        n = int(lines[0].split()[0])
    except (ValueError, IndexError):
        raise err(path, "line 1 must hold the number of points.",
                  "This is not an orca_vpot output.", line=1) from None
    if len(lines) - 1 != n:
        raise err(path, f"line 1 announces {n} points but {len(lines) - 1} lines follow.",
                  "The file is truncated or was edited.")
    if n == 0:
        raise err(path, "has no ESP grid points.", "Regenerate the ESP.", mol=0)
    rows = np.array([parse_floats(lines[1 + k].split(), path, 2 + k, 4)[:4]
                     for k in range(n)])
    rep.note(f"ORCA orca_vpot output: {n} points, atomic units (Bohr, Hartree/e); "
             f"{geometry.describe()}.")
    lf = resolve_length("bohr", options, rep, "ESP points")
    ef = resolve_esp("hartree", options, rep)
    R = geometry.positions_angstrom(options, rep)
    grid, esp = rows[:, :3] * lf, rows[:, 3] * ef
    return single_molecule_dataset(path, geometry, options, R, grid, esp, path.stem,
                                   "an orca_vpot output", rep), rep


def write_orca(molecule, folder, name: str = "mol") -> dict:
    """Write one molecule as an ORCA job would leave it: ``NAME.inp`` (``* xyz q m`` block,
    Å), ``NAME_vpot.xyz`` (points input, Bohr) and ``NAME_vpot.out`` (``x y z V``).

    Returns:
        dict with the paths written (``input``, ``points``, ``vpot``).
    """
    m = only_molecule(molecule, "an orca_vpot output holds one molecule; write one file each.")
    folder = Path(folder)
    Z, R = np.asarray(m["Z"], int), np.asarray(m["R"], float)
    q = float(m.get("net_charge", 0.0))
    inp = ["! HF 6-31G KeepDens", "", f"* xyz {int(round(q))} "
           f"{default_multiplicity(Z, q)}"]
    inp += [f"  {symbol(z):<2s} {r[0]:16.10f} {r[1]:16.10f} {r[2]:16.10f}" for z, r in zip(Z, R)]
    inp += ["*", ""]
    grid = np.asarray(m["grid"], float) * ANGSTROM_TO_BOHR
    esp = np.asarray(m["esp"], float)
    ip = write_text_atomic(folder / f"{name}.inp", "\n".join(inp))
    pp = write_text_atomic(folder / f"{name}_vpot.xyz", f"{len(grid)}\n" + "".join(
        f"{g[0]:16.10f} {g[1]:16.10f} {g[2]:16.10f}\n" for g in grid))
    vp = write_text_atomic(folder / f"{name}_vpot.out", f"{len(grid)}\n" + "".join(
        f"{g[0]:16.10f} {g[1]:16.10f} {g[2]:16.10f} {v:22.14E}\n" for g, v in zip(grid, esp)))
    return {"input": ip, "points": pp, "vpot": vp}


__all__ = ["read_orca_vpot", "parse_orca_input_geometry", "write_orca",
           "looks_like_orca_vpot", "looks_like_orca_points", "looks_like_orca_input"]
