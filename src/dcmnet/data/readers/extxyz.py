"""Extended XYZ (extxyz) with per-atom charges and ESP points; plain xyz geometries.

extxyz (the ASE/libAtoms convention, read with :func:`ase.io.read`) stores one frame per
molecule: an atom count, a comment line of ``key=value`` pairs (``Properties=`` declares
the per-row columns), then one row per atom. dcmnet's ESP layout in extxyz:

* real atoms are rows with element symbols; **ESP points are rows with the dummy symbol
  ``X``** (ASE atomic number 0) at the point's position;
* a per-row column ``esp`` (Hartree/e) holds the ESP on the ``X`` rows (ignored on atoms);
* an optional per-row column ``charges`` (or ``initial_charges``, ``mono``,
  ``partial_charges``) holds reference atomic charges in e on the atom rows;
* comment-line keys: ``charge`` (or ``total_charge``/``net_charge``) = net charge in e,
  ``multiplicity``, ``name``, optional ``dipole`` = "x y z" in e·Å about the coordinate
  origin (ASE's convention), moved to the centre of mass;
* positions in Å (extxyz convention).

Example frame (H₃O⁺ with two ESP points)::

    5
    Properties=species:S:1:pos:R:3:charges:R:1:esp:R:1 charge=1 name=hydronium
    O   0.0 0.0 0.0  -0.5  0.0
    H   0.98 0.0 0.0  0.5  0.0
    ...
    X   3.1 0.0 0.0   0.0  0.1021

A plain ``.xyz`` file (no ESP column) is a *geometry*: it pairs with an AmberTools espot,
psi4 or ORCA file of the same molecule; ``charge=q``/``multiplicity=m`` in its comment
line are honoured.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.assemble import build_dataset
from dcmnet.data.readers.geometry import Geometry
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.text import read_text, write_text_atomic
from dcmnet.data.readers.chemistry import (
    check_electron_count,
    dipole_to_com,
    element_number,
    formula,
    molecules_of,
    net_charge_from_esp,
    symbol,
)
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.units import ANGSTROM_TO_BOHR

#: Per-row columns taken as reference atomic charges, in order of preference.
CHARGE_COLUMNS = ("charges", "initial_charges", "mono", "partial_charges")
#: Comment-line keys taken as the net charge, in order of preference.
NET_CHARGE_KEYS = ("charge", "total_charge", "net_charge")


def looks_like_xyz(lines: list[str]) -> bool:
    """True for an (ext)xyz text: atom count, comment, then rows ``symbol x y z ...``."""
    if len(lines) < 3:
        return False
    try:
        n = int(lines[0].strip())
    except ValueError:
        return False
    if n < 1 or len(lines) < 2 + 1:
        return False
    t = lines[2].split()
    if len(t) < 4 or not t[0][:1].isalpha():
        return False
    try:
        [float(x) for x in t[1:4]]
    except ValueError:
        return False
    return True


def is_extxyz_with_esp(lines: list[str]) -> bool:
    """True when the first frame declares an ``esp`` per-row column."""
    return len(lines) > 1 and "properties=" in lines[1].lower() and ":esp:" in \
        lines[1].lower().replace("properties=", ":")


def _read_frames(path) -> list:
    import ase.io
    try:
        return ase.io.read(str(path), index=":", format="extxyz")
    except KeyError as exc:
        # an unknown element symbol: find it ourselves for a precise message
        lines = read_text(path).splitlines()
        for i, ln in enumerate(lines):
            t = ln.split()
            if t and t[0] == str(exc.args[0]):
                element_number(t[0], path, f" (line {i + 1})")
        raise err(path, f"holds an unknown element symbol {exc.args[0]!r}.",
                  "Use standard element symbols.") from None
    except Exception as exc:  # ASE raises many types for malformed files
        raise err(path, f"is not a readable (ext)xyz file ({type(exc).__name__}: {exc}).",
                  "Check the atom counts and the comment line.") from None


def _info_value(info: dict, keys, cast):
    """``cast`` of the first of ``keys`` in a frame's comment-line ``info`` (``None`` when
    absent or not convertible)."""
    for k in keys:
        if k in info:
            try:
                return cast(info[k])
            except (TypeError, ValueError):
                return None
    return None


def _info_charge(info: dict) -> float | None:
    return _info_value(info, NET_CHARGE_KEYS, float)


def _info_mult(info: dict) -> int | None:
    return _info_value(info, ("multiplicity", "mult"), int)


def read_xyz_geometry(path) -> Geometry:
    """The first frame of an (ext)xyz file as a :class:`Geometry` (Å).

    Raises:
        DataError: unreadable file, unknown element symbols, ``X`` rows (an ESP file, not
            a geometry).
    """
    path = Path(path)
    frames = _read_frames(path)
    if not frames:
        raise err(path, "holds no frame.", "Check the file.")
    a = frames[0]
    if (a.numbers == 0).any():
        raise err(path, "holds dummy 'X' rows; it is an ESP file, not a geometry.",
                  "Pass it as a data file.")
    return Geometry(Z=a.numbers.astype(int), R=a.positions.astype(float), unit="angstrom",
                    source=path, net_charge=_info_charge(a.info),
                    multiplicity=_info_mult(a.info))


def read_extxyz(path, options: ReadOptions | None = None) -> tuple[Dataset, ReadReport]:
    """Read an extxyz file whose frames hold atoms plus ``X`` rows carrying ``esp``.

    Returns:
        ``(dataset, report)``: one molecule per frame; Å, e, Hartree/e.
    Raises:
        DataError: unreadable file, unknown element symbols, a frame without ESP column or
            without ``X`` rows (no grid points), NaN values, charge/multiplicity mismatch.
    """
    options = options or ReadOptions()
    path = Path(path)
    rep = ReadReport(path, "extxyz")
    frames = _read_frames(path)
    rep.note(f"extended XYZ: {len(frames)} frame(s); atoms = element rows, ESP points = "
             "'X' rows with the 'esp' column; lengths Å, ESP Hartree/e.")
    lf = resolve_length("angstrom", options, rep)
    ef = resolve_esp("hartree", options, rep)
    sources = {"charge": set(), "mono": set(), "dipole": 0}
    mols = [_frame_molecule(a, i, path, options, lf, ef, rep, sources)
            for i, a in enumerate(frames)]
    rep.note("net charge from " + ", ".join(sorted(sources["charge"])) + "; "
             + (f"reference charges from column(s) {sorted(sources['mono'])}"
                if sources["mono"] else "no per-atom charge column: no 'mono'")
             + f"; dipoles in {sources['dipole']} frame(s).")
    if not sources["mono"]:
        rep.warn("no per-atom charges: the charge loss and charge metrics are off for these "
                 "molecules.", field="mono")
    rep.note(f"formulas: {', '.join(sorted({formula(m['Z']) for m in mols}))}.")
    return build_dataset(mols, path, rep), rep


def _column(a, key: str):
    """A per-row column of frame ``a`` (its arrays, else its calculator's results)."""
    col = a.arrays.get(key)
    if col is None and a.calc is not None:
        col = a.calc.results.get(key)
    return col


def _frame_molecule(a, i: int, path, options: ReadOptions, lf: float, ef: float,
                    rep: ReadReport, sources: dict) -> dict:
    """The molecule dict of frame ``i``; ``sources`` collects where the net charges,
    reference charges and dipoles came from.

    Raises:
        DataError: a frame without atoms, ESP column or ``X`` rows; an undecidable net
            charge or one inconsistent with the multiplicity.
    """
    num = a.numbers
    real, pts = num > 0, num == 0
    if not real.any():
        raise err(path, "has no atoms (only 'X' rows).", "Remove the frame.", mol=i)
    esp_col = _column(a, "esp")
    if esp_col is None:
        raise err(path, "has no per-row 'esp' column.",
                  "Add 'esp:R:1' to Properties= with the ESP (Hartree/e) on 'X' rows "
                  "(a plain xyz is only a geometry for espot/psi4/ORCA files).", mol=i)
    if not pts.any():
        raise err(path, "has no ESP grid points ('X' rows).",
                  "Add the points as 'X' rows or drop the frame.", mol=i)
    Z = num[real].astype(int)
    R = a.positions[real] * lf
    grid = a.positions[pts] * lf
    esp = np.asarray(esp_col, float)[pts] * ef
    mono = None
    for key in CHARGE_COLUMNS:
        col = _column(a, key)
        if col is not None:
            mono = np.asarray(col, float).reshape(len(a), -1)[:, 0][real]
            sources["mono"].add(key)
            break
    q = _frame_charge(a, i, Z, R, grid, esp, mono, path, options, rep, sources)
    mol = {"Z": Z, "R": R, "grid": grid, "esp": esp, "net_charge": q, "mono": mono,
           "name": str(a.info.get("name", f"{path.stem}:{i}"))}
    dip = a.info.get("dipole")
    if dip is None and a.calc is not None:
        dip = a.calc.results.get("dipole")
    if dip is not None:
        d = np.asarray(dip, float).reshape(-1)
        if d.shape == (3,):
            mol["dipole"] = dipole_to_com(d * ANGSTROM_TO_BOHR, np.zeros(3), Z, R, q)
            sources["dipole"] += 1
    return mol


def _frame_charge(a, i: int, Z, R, grid, esp, mono, path, options: ReadOptions,
                  rep: ReadReport, sources: dict) -> float:
    """Net charge of frame ``i``: the comment line's, the user's, the rounded sum of the
    reference charges, else the ESP estimate; checked against the multiplicity."""
    q = _info_charge(a.info)
    if q is not None:
        sources["charge"].add("comment line")
    elif options.net_charge is not None:
        q = float(options.net_charge)
        sources["charge"].add("--net-charge")
    elif mono is not None and abs(mono.sum() - round(mono.sum())) < 0.1:
        q = float(round(mono.sum()))
        sources["charge"].add("rounded sum of the charges")
    else:
        q = net_charge_from_esp(Z, R, grid, esp, path, rep, i, "the frame")
        sources["charge"].add("ESP estimate")
    q = float(round(q)) + 0.0
    mult = _info_mult(a.info)
    if mult is not None:
        check_electron_count(Z, q, path, i, multiplicity=mult)
    return q


def _fmt_info(m: dict) -> str:
    name = str(m.get("name", "mol")).replace('"', "'")
    q = float(m.get("net_charge", 0.0))
    s = (f'Properties=species:S:1:pos:R:3:charges:R:1:esp:R:1 charge={int(round(q))} '
         f'name="{name}"')
    if m.get("dipole") is not None:
        from dcmnet.data.readers.chemistry import com
        mu0 = np.asarray(m["dipole"], float) + q * com(m["Z"], m["R"])
        s += ' dipole="{:.10f} {:.10f} {:.10f}"'.format(*mu0)
    return s + ' pbc="F F F"'


def write_extxyz(data, path) -> Path:
    """Write molecule(s) as extxyz frames in dcmnet's ESP layout (see the module docstring).

    Written here rather than with ASE (:func:`dcmnet.fileio.atomic_write_extxyz`, used for
    predictions): ASE 3.29 writes every float column with 8 decimals, which keeps only ~4
    significant digits of a far-field ESP of 1e-4 Hartree/e; this writer keeps 10
    (``%.10e`` for the ESP).

    Args:
        data: a :class:`Dataset`, a molecule dict or a list of them (Å, e, Hartree/e).
    Molecules without reference charges get a zero ``charges`` column, which a reader
    takes as real charges (extxyz has no "absent" marker): keep partly labelled datasets
    in the canonical NPZ format instead.

    Returns:
        The path written (atomically).
    """
    out = []
    for m in molecules_of(data):
        Z, R = np.asarray(m["Z"], int), np.asarray(m["R"], float)
        grid, esp = np.asarray(m["grid"], float), np.asarray(m["esp"], float)
        mono = m.get("mono")
        mono = np.zeros(len(Z)) if mono is None else np.asarray(mono, float)
        out.append(str(len(Z) + len(esp)))
        out.append(_fmt_info(m))
        for a in range(len(Z)):
            out.append(f"{symbol(Z[a]):<2s} {R[a, 0]:16.10f} {R[a, 1]:16.10f} "
                       f"{R[a, 2]:16.10f} {mono[a]:14.10f} {0.0:18.10e}")
        for k in range(len(esp)):
            out.append(f"X  {grid[k, 0]:16.10f} {grid[k, 1]:16.10f} {grid[k, 2]:16.10f} "
                       f"{0.0:14.10f} {esp[k]:18.10e}")
    return write_text_atomic(path, "\n".join(out) + "\n")


def write_xyz_geometry(Z, R, path, net_charge: float | None = None,
                       multiplicity: int | None = None, name: str | None = None) -> Path:
    """Write a plain xyz geometry (Å) whose comment line carries ``charge=``/``multiplicity=``
    (extxyz ``key=value`` pairs, ignored by plain-xyz readers)."""
    Z, R = np.asarray(Z, int), np.asarray(R, float)
    info = []
    if net_charge is not None:
        info.append(f"charge={int(round(net_charge))}")
    if multiplicity is not None:
        info.append(f"multiplicity={int(multiplicity)}")
    if name:
        info.append(f'name="{name}"')
    lines = [str(len(Z)), " ".join(info)]
    lines += [f"{symbol(z):<2s} {r[0]:16.10f} {r[1]:16.10f} {r[2]:16.10f}" for z, r in zip(Z, R)]
    return write_text_atomic(path, "\n".join(lines) + "\n")


__all__ = ["read_extxyz", "write_extxyz", "read_xyz_geometry", "write_xyz_geometry",
           "looks_like_xyz", "is_extxyz_with_esp"]
