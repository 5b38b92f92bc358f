"""Gaussian cube files: ESP on a regular grid (+ optional electron-density cube).

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

Point selection (a cube holds ~10⁵ points, most of them far from or inside the molecule):

* ``cube_mode="shells"`` (default): points within half a voxel of the vdW shells
  ``min_j(|p − R_j| − s·r_j) = 0`` for each scale ``s`` of ``cube_shells`` (the
  Merz–Kollman shells 1.4–2.0, Singh & Kollman, J. Comput. Chem. 5, 129 (1984));
* ``cube_mode="outside"``: all points with ``min_j |p − R_j| / r_j ≥ cube_min_scale``.

Radii are ASE's ``vdw_radii`` (Bondi for the common elements), as in :mod:`dcmnet.surface`.

Net charge: ``options.net_charge`` when given, otherwise estimated from the ESP
(:func:`~dcmnet.data.readers.base.net_charge_from_esp`: the monopole of the ESP is well
determined). A matching density cube gives the electron count ``∫ρ`` as a check: a user's
charge that both the density and the ESP contradict is refused. The density integral on a
typical cube (0.2 Bohr voxels) misses a few tenths of an electron at the nuclear cusps, so
it only checks, it never sets the charge.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
from ase.data import vdw_radii

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.assemble import build_dataset
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.text import parse_floats, read_text
from dcmnet.data.readers.chemistry import (
    check_electron_count,
    estimate_net_charge,
    formula,
    net_charge_from_esp,
    symbol,
)
from dcmnet.data.readers.file_units import LENGTH_UNITS, UNIT_LABEL
from dcmnet.data.readers.report import ReadReport, err
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


def _kind_from_comment(comment: str) -> str:
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
    t = lines[2].split()
    n_at_signed = int(t[0])
    n_at = abs(n_at_signed)
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
    unit = "bohr" if signs[0] > 0 else "angstrom"
    f = LENGTH_UNITS[unit]
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
    data_start = 6 + n_at
    if n_at_signed < 0:
        data_start += 1  # orbital-label line (simple case: one line)
    Z = np.array(Z, int)
    if ((Z < 1) | (Z > MAX_ATOMIC_NUMBER)).any():
        a = int(np.flatnonzero((Z < 1) | (Z > MAX_ATOMIC_NUMBER))[0])
        raise err(path, f"atom {a + 1} has atomic number {Z[a]}.",
                  "Atomic numbers must be 1..118.", line=7 + a)
    data = None
    if unit == "bohr" and n_at_signed > 0:
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
    return Cube(path=path, comment=comment, Z=Z, nuclear_charge=np.array(qn),
                R=np.array(R, float) * f, origin=origin * f, axes=np.array(axes) * f,
                data=data, length_unit=unit, kind=_kind_from_comment(comment))


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


def _radii(Z, path) -> np.ndarray:
    r = np.array([vdw_radii[z] if z < len(vdw_radii) else np.nan for z in Z], float)
    if not np.isfinite(r).all():
        z = int(np.asarray(Z)[~np.isfinite(r)][0])
        raise err(path, f"no van der Waals radius is known for element {symbol(z)}, so the "
                  "cube points cannot be selected on vdW shells.",
                  "Convert the cube with points you choose (e.g. an .npz).")
    return r


def select_points(Z, R, points, options: ReadOptions, spacing: float, path) -> np.ndarray:
    """Boolean mask of the cube points kept (see the module docstring for the rules).

    Args:
        Z: (N,) atomic numbers; R: (N, 3) Å; points: (P, 3) Å; spacing: voxel edge, Å.
    """
    radii = _radii(Z, path)
    keep = np.zeros(len(points), bool)
    R = np.asarray(R, float)
    for s0 in range(0, len(points), 65536):
        p = points[s0:s0 + 65536]
        d = np.linalg.norm(p[:, None, :] - R[None, :, :], axis=-1)
        if options.cube_mode == "outside":
            keep[s0:s0 + len(p)] = (d / radii[None, :]).min(axis=1) >= options.cube_min_scale
        else:
            k = np.zeros(len(p), bool)
            for s in options.cube_shells:
                t = (d - s * radii[None, :]).min(axis=1)
                k |= np.abs(t) <= 0.5 * spacing
            keep[s0:s0 + len(p)] = k
    return keep


def check_frame(Z, R, points, values, spacing: float, path) -> None:
    """Refuse a potential cube whose grid frame does not match its atoms.

    The ESP is largest (the nuclear cusp, ~Z/r) at the voxel closest to a nucleus, so the
    voxel holding the largest value must lie within one voxel diagonal of an atom. A shifted
    origin (or atoms from another geometry) moves the cusp away from every listed atom; the
    ESP "on the vdW shells" would then be read near real nuclei (values of Hartree/e or
    more, read as valid data). Only checked when the cube contains the atoms.

    Args:
        Z: (N,); R: (N, 3) Å; points: (P, 3) Å; values: (P,) Hartree/e; spacing: largest voxel
        step, Å.
    Raises:
        DataError: the largest value lies far from every atom (names the file and the fix).
    """
    lo, hi = points.min(0), points.max(0)
    if not ((R >= lo).all() and (R <= hi).all()) or len(values) == 0:
        return
    k = int(np.argmax(values))
    d = np.linalg.norm(R - points[k], axis=1)
    tol = max(np.sqrt(3.0) * spacing, 0.3)
    if float(d.min()) > tol:
        raise err(path, f"the grid frame does not match the atoms: the largest ESP value "
                  f"({values[k]:.3g} Hartree/e, the nuclear cusp) lies at "
                  f"({', '.join(f'{x:.2f}' for x in points[k])}) Å, {d.min():.2f} Å from the "
                  f"nearest atom (allowed: one voxel diagonal, {tol:.2f} Å); the origin or "
                  "the atoms are shifted.",
                  "Write the cube with the origin and atoms of one frame (regenerate it, or "
                  "fix line 3, the origin); do not edit either alone.")


def read_cube(path, density_path=None, options: ReadOptions | None = None
              ) -> tuple[Dataset, ReadReport]:
    """Read a Gaussian ESP cube (and optionally its density cube) as a one-molecule dataset.

    Args:
        path: the potential cube.
        density_path: a density cube of the same molecule (same atoms), used for the net
            charge and the electron-count check.
        options: :class:`ReadOptions` (units, net charge, point selection).
    Returns:
        ``(dataset, report)``; grid in Å, ESP in Hartree/e.
    Raises:
        DataError: malformed files, a density cube given as the potential, cubes of
            different molecules, no point selected, an inconsistent net charge.
    """
    options = options or ReadOptions()
    path = Path(path)
    rep = ReadReport(path, "cube")
    cube = parse_cube(path)
    kind = cube_kind(cube)
    if kind == "density":
        raise err(path, "is an electron-density cube, not an ESP cube.",
                  "Give the potential cube (cubegen 'potential' / pyscf cubegen.mep); a "
                  "density cube is only used next to its potential cube.")
    how = "comment lines" if cube.kind != "unknown" else "values (no telling comment)"
    rep.note(f"Gaussian cube file, electrostatic potential (from the {how}): "
             f"{'×'.join(map(str, cube.data.shape))} points, atoms {formula(cube.Z)}, "
             f"lengths in {UNIT_LABEL[cube.length_unit]} (sign of the voxel counts).")
    lf = resolve_length(cube.length_unit, options, rep) / LENGTH_UNITS[cube.length_unit]
    ef = resolve_esp("hartree", options, rep)
    R = cube.R * lf
    pts = cube.points() * lf
    spacing = float(np.linalg.norm(cube.axes, axis=1).max() * lf)
    vals = cube.data.reshape(-1) * ef
    check_frame(cube.Z, R, pts, vals, spacing, path)
    keep = select_points(cube.Z, R, pts, options, spacing, path)
    if options.cube_mode == "shells":
        rep.note(f"kept {int(keep.sum())} of {keep.size} points lying on the vdW shells "
                 f"{', '.join(f'{s:g}' for s in options.cube_shells)} × r_vdW (± half a "
                 f"voxel, {0.5 * spacing:.3f} Å).")
    else:
        rep.note(f"kept {int(keep.sum())} of {keep.size} points at least "
                 f"{options.cube_min_scale:g} × r_vdW from every atom.")
    if not keep.any():
        raise err(path, "no cube point lies on the requested vdW shells/region.",
                  "Use a finer or larger cube, or cube_mode='outside'.")
    idx = np.flatnonzero(keep)
    if options.cube_max_points and idx.size > options.cube_max_points:
        idx = idx[np.linspace(0, idx.size - 1, options.cube_max_points).astype(int)]
        rep.note(f"subsampled to {idx.size} points (cube_max_points).")
    grid, esp = pts[idx], vals[idx]
    if (cube.nuclear_charge != 0).any() and (cube.nuclear_charge != cube.Z).any():
        rep.note("nuclear charges in the cube differ from the atomic numbers (effective "
                 "core potentials?); atomic numbers are used.")

    n_el = None
    if density_path is not None:
        dens = parse_cube(density_path)
        if cube_kind(dens) != "density":
            raise err(density_path, "was given as the density cube but looks like a "
                      "potential cube.", "Pass the electron-density cube.")
        dR = dens.R * lf
        if dens.Z.shape != cube.Z.shape or (dens.Z != cube.Z).any() or \
                np.abs(dR - R).max() > 1e-3:
            raise err(density_path, f"describes other atoms than the potential cube {path.name}.",
                      "Pair each potential cube with the density cube of the same molecule.")
        vol_bohr = dens.voxel_volume
        if dens.length_unit != "bohr":
            rep.note("density cube in Å: its values are taken as e/Å³.")
        n_el = float(dens.data.sum() * vol_bohr)
        rep.note(f"density cube {Path(density_path).name}: integrates to {n_el:.2f} "
                 f"electrons (sum of Z = {int(cube.Z.sum())}).")

    zsum = int(cube.Z.sum())
    if options.net_charge is not None:
        q = float(options.net_charge)
        rep.note(f"net charge {q:+g} e given by the user.")
        if n_el is not None and abs((zsum - q) - n_el) > 0.5:
            q_esp = round(estimate_net_charge(cube.Z, R, grid, esp))
            if abs((zsum - q_esp) - n_el) < abs((zsum - q) - n_el) and q_esp != q:
                check_electron_count(cube.Z, q, path, 0, n_electrons=n_el)
            rep.warn(f"the density integrates to {n_el:.2f} electrons, not the {zsum - q:g} "
                     "the given charge implies (the cube may be too coarse to integrate the "
                     "core density).")
    else:
        q = net_charge_from_esp(cube.Z, R, grid, esp, path, rep, None, "a cube file")
        if n_el is not None:
            if abs((zsum - q) - n_el) > 0.5:
                rep.warn(f"the density integrates to {n_el:.2f} electrons but the net charge "
                         f"{q:+g} e implies {zsum - q:g}: the density cube is too coarse to "
                         "integrate the core density, or it belongs to another calculation.")
            else:
                rep.note(f"electron count consistent with the density cube ({n_el:.2f} vs "
                         f"{zsum - q:g}).")
    mol = {"Z": cube.Z, "R": R, "grid": grid, "esp": esp, "net_charge": q,
           "name": path.stem}
    rep.note("no reference atomic charges ('mono') or dipole in a cube file: charge and "
             "dipole losses are off for this molecule.")
    ds = build_dataset([mol], path, rep)
    return ds, rep


def density_partner_ok(potential: Cube, density: Cube) -> bool:
    """True when two parsed cubes describe the same atoms (Z and positions within 1e-3 Å)."""
    return (potential.Z.shape == density.Z.shape and (potential.Z == density.Z).all()
            and np.abs(potential.R - density.R).max() <= 1e-3)


__all__ = ["Cube", "parse_cube", "cube_kind", "select_points", "read_cube",
           "looks_like_cube", "density_partner_ok"]
