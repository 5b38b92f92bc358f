"""AmberTools ``espot`` files (the ESP input of ``resp``, written by ``espgen``).

Layout (RESP documentation, "unit 10: espot"; AmberTools ``espgen.c``):

* line 1: number of atoms, number of ESP points (and a 0), Fortran ``2I5`` (``%5d%5d%5d``);
* one line per atom: x y z in Bohr, Fortran ``17X,3E16.7`` (espgen: ``%32.7E%16.7E%16.7E``);
* one line per point: ESP (Hartree/e) and x y z (Bohr), Fortran ``1X,4E16.7``.

The file holds no element information, so the atoms are paired with an xyz geometry of
the same molecule (same order; positions must agree within 0.01 Å). The net charge comes
from the xyz comment line (``charge=q``), from ``--net-charge``, or is estimated from the
ESP.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.chemistry import only_molecule
from dcmnet.data.readers.geometry import (
    Geometry,
    match_geometry,
    require_geometry,
    single_molecule_dataset,
)
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.data.readers.text import parse_floats, read_text, write_text_atomic
from dcmnet.units import ANGSTROM_TO_BOHR


def _ints(line: str) -> list[int] | None:
    t = line.split()
    try:
        return [int(x) for x in t]
    except ValueError:
        return None


def looks_like_espot(lines: list[str]) -> bool:
    """True when line 1 holds 2–3 integers (atoms, points[, 0]) followed by 3- then 4-column
    numeric lines."""
    if len(lines) < 3:
        return False
    head = _ints(lines[0])
    if head is None or not 2 <= len(head) <= 3 or head[0] < 1 or head[1] < 0:
        return False
    n_at = head[0]
    try:
        if len(lines[1].split()) != 3:
            return False
        [float(x.replace("D", "E")) for x in lines[1].split()]
        if len(lines) > 1 + n_at and head[1] > 0:
            return len(lines[1 + n_at].split()) == 4
    except ValueError:
        return False
    return True


def read_espot(path, geometry: Geometry | None, options: ReadOptions | None = None
               ) -> tuple[Dataset, ReadReport]:
    """Read an espot file with the xyz geometry that names its atoms.

    Args:
        path: the espot file; geometry: :class:`Geometry` of the same molecule (required).
    Returns:
        ``(dataset, report)``: one molecule; Å, Hartree/e; positions from the espot.
    Raises:
        DataError: no geometry, counts in line 1 that disagree with the lines that follow,
            unreadable numbers, atoms that do not match the geometry.
    """
    options = options or ReadOptions()
    path = Path(path)
    rep = ReadReport(path, "espot")
    geometry = require_geometry(path, geometry, "an espot file holds no element names, so it "
                                "needs the xyz geometry of the same molecule.", "Put "
                                "'NAME.xyz' next to 'NAME.espot' (or pass both files).")
    lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
    head = _ints(lines[0]) if lines else None
    if not head or len(head) < 2:
        raise err(path, "line 1 must hold the number of atoms and of ESP points.",
                  "This is not an AmberTools espot file.", line=1)
    n_at, n_pts = head[0], head[1]
    if len(lines) - 1 != n_at + n_pts:
        raise err(path, f"line 1 announces {n_at} atoms and {n_pts} points "
                  f"({n_at + n_pts} lines) but {len(lines) - 1} lines follow.",
                  "The file is truncated or its counts are wrong.")
    if n_pts == 0:
        raise err(path, "has no ESP grid points.", "Regenerate the ESP.", mol=0)
    Ra = np.array([parse_floats(lines[1 + a].split(), path, 2 + a, 3)[:3]
                   for a in range(n_at)])
    P = np.array([parse_floats(lines[1 + n_at + k].split(), path, 2 + n_at + k, 4)[:4]
                  for k in range(n_pts)])
    rep.note(f"AmberTools espot file: {n_at} atoms, {n_pts} ESP points; atomic units "
             "(Bohr, Hartree/e).")
    lf = resolve_length("bohr", options, rep)
    ef = resolve_esp("hartree", options, rep)
    R = Ra * lf
    match_geometry(path, geometry, R, geometry.positions_angstrom(options, rep))
    rep.note(f"elements from {geometry.describe()}; positions from the espot.")
    grid, esp = P[:, 1:4] * lf, P[:, 0] * ef
    return single_molecule_dataset(path, geometry, options, R, grid, esp, path.stem,
                                   "an espot file", rep), rep


def write_espot(molecule, path, xyz_path=None) -> tuple[Path, Path]:
    """Write one molecule as ``espot`` (espgen's formats) plus its xyz geometry.

    Args:
        molecule: a molecule dict (or a one-molecule :class:`Dataset`), Å and Hartree/e.
        path: the espot file; xyz_path: the geometry (default: same stem, ``.xyz``), whose
            comment line carries ``charge=q``.
    Returns:
        ``(espot_path, xyz_path)``.
    """
    from dcmnet.data.readers.extxyz import write_xyz_geometry

    m = only_molecule(molecule, "an espot file holds exactly one molecule; write one file each.")
    path = Path(path)
    xyz_path = Path(xyz_path) if xyz_path else path.with_suffix(".xyz")
    R = np.asarray(m["R"], float) * ANGSTROM_TO_BOHR
    grid = np.asarray(m["grid"], float) * ANGSTROM_TO_BOHR
    esp = np.asarray(m["esp"], float)
    out = [f"{len(R):5d}{len(esp):5d}{0:5d}"]
    out += [f"{r[0]:32.7E}{r[1]:16.7E}{r[2]:16.7E}" for r in R]
    out += [f"{v:16.7E}{g[0]:16.7E}{g[1]:16.7E}{g[2]:16.7E}" for v, g in zip(esp, grid)]
    write_text_atomic(path, "\n".join(out) + "\n")
    write_xyz_geometry(m["Z"], m["R"], xyz_path, net_charge=m.get("net_charge", 0.0),
                       name=m.get("name"))
    return path, xyz_path


__all__ = ["read_espot", "write_espot", "looks_like_espot"]
