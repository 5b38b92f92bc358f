"""psi4 ``GRID_ESP`` output: ``grid.dat`` + ``grid_esp.dat`` (+ the geometry).

psi4's ``oeprop(wfn, "GRID_ESP")`` (or ``properties=["GRID_ESP"]``) reads the points from
``grid.dat`` (one ``x y z`` per line, **in the units of the molecule's geometry**) and
writes the total ESP in Hartree/e to ``grid_esp.dat``, one value per line, same order
(psi4 manual, "Properties evaluated on a grid"; the psi4 RESP plugin names them
``1_NAME_grid.dat`` / ``1_NAME_grid_esp.dat``). The two files must have the same number of
lines.

The geometry comes from a companion file: an xyz file (Å; ``charge=q multiplicity=m`` in
its comment line are honoured) or a psi4 output file, whose last block

.. code-block:: text

        Geometry (in Angstrom), charge = 1, multiplicity = 1:

           Center              X                  Y                   Z       ...
        ------------   -----------------  -----------------  -----------------
             O            0.000000000000     0.000000000000    -0.068516219320 ...

gives the elements, positions, unit, charge and multiplicity.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.chemistry import default_multiplicity, element_number, only_molecule
from dcmnet.data.readers.geometry import Geometry, require_geometry, single_molecule_dataset
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.data.readers.text import parse_floats, read_text, write_text_atomic

_GEOM = re.compile(r"Geometry \(in (Angstrom|Bohr)\),\s*charge\s*=\s*([-+]?\d+),\s*"
                   r"multiplicity\s*=\s*(\d+)", re.IGNORECASE)


def looks_like_psi4_output(text: str) -> bool:
    """True for a psi4 output file with a printed geometry block."""
    return bool(_GEOM.search(text)) and ("psi4" in text.lower() or "Center" in text)


def parse_psi4_output_geometry(path) -> Geometry:
    """The last ``Geometry (in UNIT), charge = q, multiplicity = m:`` block of a psi4 output.

    Raises:
        DataError: no geometry block, or an unreadable/unknown atom line.
    """
    path = Path(path)
    lines = read_text(path).splitlines()
    start = None
    for i, ln in enumerate(lines):
        m = _GEOM.search(ln)
        if m:
            start, unit, q, mult = i, m.group(1).lower(), int(m.group(2)), int(m.group(3))
    if start is None:
        raise err(path, "holds no 'Geometry (in Angstrom), charge = q, multiplicity = m:' "
                  "block.", "Give the psi4 output of the ESP calculation or an xyz file.")
    i = start + 1
    while i < len(lines) and not lines[i].strip().startswith("---"):
        i += 1
    i += 1
    Z, R = [], []
    while i < len(lines) and lines[i].strip():
        t = lines[i].split()
        label = t[0]
        if label.lower().startswith("gh("):  # ghost atoms carry no charge
            i += 1
            continue
        Z.append(element_number(label, path, f" (line {i + 1})"))
        R.append(parse_floats(t[1:4], path, i + 1, 3))
        i += 1
    if not Z:
        raise err(path, "the geometry block lists no atoms.", "Check the psi4 output.",
                  line=start + 1)
    return Geometry(Z=np.array(Z, int), R=np.array(R, float),
                    unit="angstrom" if unit.startswith("ang") else "bohr", source=path,
                    net_charge=float(q), multiplicity=mult)


def _numeric_rows(path, ncol: int) -> np.ndarray:
    rows = []
    for i, ln in enumerate(read_text(path).splitlines()):
        t = ln.split()
        if not t:
            continue
        if len(t) != ncol:
            raise err(path, f"has {len(t)} columns, expected {ncol}.",
                      "grid.dat holds 'x y z' per line and grid_esp.dat one value per line.",
                      line=i + 1)
        rows.append(parse_floats(t, path, i + 1, ncol))
    return np.array(rows, float).reshape(-1, ncol)


def read_psi4_grid(grid_path, esp_path, geometry: Geometry | None,
                   options: ReadOptions | None = None) -> tuple[Dataset, ReadReport]:
    """Read psi4's ``grid.dat`` and ``grid_esp.dat`` with the molecule's geometry.

    Args:
        grid_path: points, in the geometry's length unit; esp_path: values, Hartree/e;
        geometry: the molecule (xyz or psi4 output), required.
    Returns:
        ``(dataset, report)``: one molecule; Å, Hartree/e.
    Raises:
        DataError: missing geometry, line counts that differ, bad numbers.
    """
    options = options or ReadOptions()
    grid_path, esp_path = Path(grid_path), Path(esp_path)
    rep = ReadReport(esp_path, "psi4_esp")
    geometry = require_geometry(esp_path, geometry, "psi4 grid files hold no atoms, so they "
                                "need the geometry of the molecule.", "Put the psi4 output "
                                "(output.dat) or an xyz file next to grid.dat/grid_esp.dat.")
    g = _numeric_rows(grid_path, 3)
    v = _numeric_rows(esp_path, 1)[:, 0]
    if len(g) != len(v):
        raise err(esp_path, f"has {len(v)} values but {grid_path.name} has {len(g)} points; "
                  "the files must have one line per point, in the same order.",
                  "Regenerate grid_esp.dat from this grid.dat.")
    if len(v) == 0:
        raise err(esp_path, "has no ESP grid points.", "Regenerate the ESP.", mol=0)
    rep.note(f"psi4 GRID_ESP: {len(v)} points from {grid_path.name} (in the geometry's "
             f"unit) and values from {esp_path.name} (Hartree/e); {geometry.describe()}.")
    lf = resolve_length(geometry.unit, options, rep, "geometry and grid")
    ef = resolve_esp("hartree", options, rep)
    R = geometry.R * lf
    grid = g * lf
    esp = v * ef
    return single_molecule_dataset(esp_path, geometry, options, R, grid, esp,
                                   grid_path.parent.name or grid_path.stem, "psi4 grid files",
                                   rep), rep


def write_psi4_output_geometry(Z, R, path, net_charge: float = 0.0,
                               multiplicity: int | None = None) -> Path:
    """Write the geometry block of a psi4 output (Å) — enough for :func:`parse_psi4_output_geometry`."""
    from ase.data import atomic_masses

    from dcmnet.data.readers.chemistry import symbol
    Z, R = np.asarray(Z, int), np.asarray(R, float)
    mult = multiplicity or default_multiplicity(Z, net_charge)
    out = ["", "  Psi4 (output written by dcmnet: geometry block only)", "",
           f"    Geometry (in Angstrom), charge = {int(round(net_charge))}, multiplicity = "
           f"{mult}:", "",
           "       Center              X                  Y                   Z       "
           "        Mass       ",
           "    ------------   -----------------  -----------------  -----------------  "
           "-----------------"]
    for z, r in zip(Z, R):
        out.append(f"         {symbol(z):<2s}     {r[0]:18.12f} {r[1]:18.12f} {r[2]:18.12f} "
                   f"{atomic_masses[z]:18.12f}")
    out.append("")
    return write_text_atomic(path, "\n".join(out) + "\n")


def write_psi4_grid(molecule, folder, prefix: str = "", geometry: str = "output") -> dict:
    """Write one molecule as psi4 would leave it: ``grid.dat`` (Å), ``grid_esp.dat``
    (``%16.10f``) and a geometry (``geometry="output"``: ``output.dat`` block;
    ``"xyz"``: ``geometry.xyz`` with ``charge=`` in the comment).

    Returns:
        dict with the paths written (``grid``, ``esp``, ``geometry``).
    """
    from dcmnet.data.readers.extxyz import write_xyz_geometry
    m = only_molecule(molecule, "psi4 grid files hold one molecule; write one folder each.")
    folder = Path(folder)
    grid, esp = np.asarray(m["grid"], float), np.asarray(m["esp"], float)
    gp = write_text_atomic(folder / f"{prefix}grid.dat", "".join(
        f"{p[0]:16.10f}{p[1]:16.10f}{p[2]:16.10f}\n" for p in grid))
    ep = write_text_atomic(folder / f"{prefix}grid_esp.dat",
                           "".join(f"{v:16.10f}\n" for v in esp))
    q = float(m.get("net_charge", 0.0))
    if geometry == "xyz":
        geo = write_xyz_geometry(m["Z"], m["R"], folder / "geometry.xyz", net_charge=q,
                                 name=m.get("name"))
    else:
        geo = write_psi4_output_geometry(m["Z"], m["R"], folder / "output.dat", q)
    return {"grid": gp, "esp": ep, "geometry": geo}


__all__ = ["read_psi4_grid", "parse_psi4_output_geometry", "write_psi4_grid",
           "write_psi4_output_geometry", "looks_like_psi4_output"]
