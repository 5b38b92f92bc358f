"""Gaussian cube files parsed: header, atoms and values (:func:`parse_cube` → :class:`Cube`).

Layout (Gaussian cubegen / PySCF ``pyscf.tools.cubegen``; documented by Gaussian, "cubegen"
and in the Molpro/VMD cube notes):

* lines 1–2: free comments (PySCF: "Molecular electrostatic potential in real space";
  Gaussian: "Electrostatic potential from Total SCF Density");
* line 3: number of atoms, origin x y z (a negative atom count means one extra line of
  orbital labels follows the atoms);
* lines 4–6: number of voxels and step vector along each axis; a *positive* count means
  Bohr, a *negative* count means Å;
* one line per atom: atomic number, nuclear charge, x y z;
* the values, x outermost and z innermost, six per line (``%13.5E``).

Values of a potential cube are in Hartree/e (atomic units), of a density cube in
e/Bohr³. The data block is read with ASE (:func:`ase.io.cube.read_cube`) when the voxel
counts are positive; the header is parsed here because ASE drops the nuclear charges and
the Å flag, and ASE's Bohr (CODATA 2014) is not dcmnet's (CODATA 2018).

The ESP reader (point selection, net charge) is :mod:`.cube`.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from dcmnet.data.readers.file_units import LENGTH_UNITS
from dcmnet.data.readers.report import err
from dcmnet.data.readers.text import parse_floats, read_text
from dcmnet.units import MAX_ATOMIC_NUMBER


@dataclasses.dataclass
class Cube:
    """A parsed cube file; lengths already in Å.

    Attributes:
        comment: the two comment lines; Z: (N,) atomic numbers; nuclear_charge: (N,);
        R: (N, 3) Å; origin: (3,) Å; axes: (3, 3) Å step vectors (rows);
        data: (nx, ny, nz) values as printed; length_unit: ``"bohr"`` or ``"angstrom"``
        (what the file used); kind: ``"potential"``, ``"density"`` or ``"unknown"``.
    """

    path: Path
    comment: str
    Z: np.ndarray
    nuclear_charge: np.ndarray
    R: np.ndarray
    origin: np.ndarray
    axes: np.ndarray
    data: np.ndarray
    length_unit: str
    kind: str

    def points(self) -> np.ndarray:
        """(nx·ny·nz, 3) coordinates (Å) of the values in ``data.reshape(-1)`` order."""
        nx, ny, nz = self.data.shape
        i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
        idx = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(np.float64)
        return self.origin[None, :] + idx @ self.axes

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in the file's length unit cubed."""
        f = LENGTH_UNITS[self.length_unit]
        return float(abs(np.linalg.det(self.axes / f)))


def looks_like_cube(lines: list[str]) -> bool:
    """True when lines 3–6 of a text have the cube header shape (int + 3 floats each)."""
    if len(lines) < 7:
        return False
    try:
        for ln in lines[2:6]:
            t = ln.split()
            if len(t) < 4:
                return False
            int(t[0])
            [float(x) for x in t[1:4]]
        n_at = abs(int(lines[2].split()[0]))
        if n_at == 0:
            return False
        t = lines[6].split()
        int(float(t[0]))
        [float(x) for x in t[1:5]]
    except (ValueError, IndexError):
        return False
    return True


def kind_from_comment(comment: str) -> str:
    """``"potential"``, ``"density"`` or ``"unknown"``, from a cube's comment lines."""
    c = comment.lower()
    if "potential" in c or re.search(r"\bmep\b|\besp\b", c):
        return "potential"
    if "density" in c:
        return "density"
    return "unknown"


def parse_cube(path) -> Cube:
    """Parse a cube file (any voxel-count sign) into a :class:`Cube` in Å.

    Raises:
        DataError: a malformed header, a wrong number of values, several values per
            point, or NaN/Inf values; the message names file and line.
    """
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    if not looks_like_cube(lines):
        raise err(path, "is not a Gaussian cube file (lines 3–6 must hold a count and three "
                  "numbers each).", "Check the file type.")
    comment = (lines[0].strip() + " | " + lines[1].strip())
    n_at_signed, origin, shape, axes, unit = _cube_header(lines, path)
    f = LENGTH_UNITS[unit]
    Z, qn, R = _cube_atoms(lines, abs(n_at_signed), path)
    data_start = 6 + abs(n_at_signed)
    if n_at_signed < 0:
        data_start += 1  # orbital-label line (simple case: one line)
    data = _cube_values(path, lines, data_start, shape, ase_layout=(
        unit == "bohr" and n_at_signed > 0))
    return Cube(path=path, comment=comment, Z=Z, nuclear_charge=np.array(qn),
                R=np.array(R, float) * f, origin=origin * f, axes=np.array(axes) * f,
                data=data, length_unit=unit, kind=kind_from_comment(comment))


def _cube_header(lines: list[str], path):
    """``(signed atom count, origin (3,), shape [3], axes (3, 3), unit)`` of lines 3–6, in
    the file's unit (``"bohr"``, or ``"angstrom"`` for negative voxel counts).

    Raises:
        DataError: several values per point, an axis of 0 voxels, mixed voxel-count signs.
    """
    t = lines[2].split()
    n_at_signed = int(t[0])
    if len(t) >= 5 and int(float(t[4])) != 1:
        raise err(path, f"holds {t[4]} values per grid point; dcmnet reads cubes with one "
                  "value (the ESP) per point.", "Write one property per cube file.", line=3)
    origin = np.array(parse_floats(t[1:4], path, 3, 3))
    shape, axes, signs = [], [], []
    for li in range(3, 6):
        v = lines[li].split()
        n = int(v[0])
        shape.append(abs(n))
        signs.append(n)
        axes.append(parse_floats(v[1:4], path, li + 1, 3))
    if any(s == 0 for s in signs):
        raise err(path, "has an axis with 0 voxels.", "The header is corrupt.", line=4)
    if len({np.sign(s) for s in signs}) > 1:
        raise err(path, "mixes positive (Bohr) and negative (Å) voxel counts.",
                  "The header is corrupt.", line=4)
    return n_at_signed, origin, shape, axes, ("bohr" if signs[0] > 0 else "angstrom")


def _cube_atoms(lines: list[str], n_at: int, path):
    """``(Z (N,), nuclear charges [N], positions [N][3] in the file's unit)``.

    Raises:
        DataError: the file ends inside the atom list, or an atomic number out of range.
    """
    Z, qn, R = [], [], []
    for a in range(n_at):
        li = 6 + a
        if li >= len(lines):
            raise err(path, f"ends inside the atom list (atom {a + 1} of {n_at}).",
                      "The file is truncated.", line=li + 1)
        v = lines[li].split()
        vals = parse_floats(v[:5], path, li + 1, 5)
        Z.append(int(round(vals[0])))
        qn.append(vals[1])
        R.append(vals[2:5])
    Z = np.array(Z, int)
    if ((Z < 1) | (Z > MAX_ATOMIC_NUMBER)).any():
        a = int(np.flatnonzero((Z < 1) | (Z > MAX_ATOMIC_NUMBER))[0])
        raise err(path, f"atom {a + 1} has atomic number {Z[a]}.",
                  "Atomic numbers must be 1..118.", line=7 + a)
    return Z, qn, R


def _cube_values(path, lines: list[str], data_start: int, shape: list[int],
                 ase_layout: bool) -> np.ndarray:
    """The volumetric data, ``shape`` (float64): through ASE for the plain Bohr layout,
    else (or when ASE fails) by the own parser, which names the problem.

    Raises:
        DataError: a value that is not a number, a wrong count, NaN/Inf values.
    """
    data = None
    if ase_layout:
        try:
            from ase.io.cube import read_cube as _ase_read_cube
            with open(path, encoding="utf-8", errors="replace") as fh:
                data = np.asarray(_ase_read_cube(fh, read_data=True)["data"], np.float64)
        except (ValueError, IndexError):
            data = None  # fall through to the own parser, which names the problem
    if data is None:
        raw = " ".join(lines[data_start:]).split()
        try:
            flat = np.array([float(x.replace("D", "E").replace("d", "e")) for x in raw])
        except ValueError:
            raise err(path, "holds a value that is not a number in its data block.",
                      "The file is corrupt.") from None
        if flat.size != int(np.prod(shape)):
            raise err(path, f"holds {flat.size} values but the header announces "
                      f"{shape[0]}×{shape[1]}×{shape[2]} = {int(np.prod(shape))}.",
                      "The file is truncated or its header is wrong.")
        data = flat.reshape(shape)
    if data.shape != tuple(shape):
        raise err(path, f"data has shape {data.shape}, header says {tuple(shape)}.",
                  "The file is corrupt.")
    if not np.isfinite(data).all():
        raise err(path, "holds NaN or Inf values.", "Regenerate the cube file.")
    return data


def cube_kind(cube: Cube) -> str:
    """``"potential"`` or ``"density"``: from the comment lines, else from the values.

    A cube without a telling comment whose values are all ≥ 0 and integrate to roughly the
    number of electrons is taken as a density; anything else as a potential.
    """
    if cube.kind != "unknown":
        return cube.kind
    if (cube.data >= -1e-8).all():
        n_el = cube.data.sum() * cube.voxel_volume
        if abs(n_el - cube.Z.sum()) < 0.25 * cube.Z.sum() + 2:
            return "density"
    return "potential"


def density_partner_ok(potential: Cube, density: Cube) -> bool:
    """True when two parsed cubes describe the same atoms (Z and positions within 1e-3 Å)."""
    return (potential.Z.shape == density.Z.shape and (potential.Z == density.Z).all()
            and np.abs(potential.R - density.R).max() <= 1e-3)


__all__ = ["Cube", "parse_cube", "cube_kind", "looks_like_cube", "kind_from_comment",
           "density_partner_ok"]
