"""Gaussian cube files: ESP on a regular grid (+ optional electron-density cube).

The file layout and its parser are in :mod:`.cube_file` (Bohr, or Å for negative voxel
counts; values of a potential cube in Hartree/e, of a density cube in e/Bohr³).

Point selection (a cube holds ~10⁵ points, most of them far from or inside the molecule):

* ``cube_mode="shells"`` (default): points within half a voxel of the vdW shells
  ``min_j(|p − R_j| − s·r_j) = 0`` for each scale ``s`` of ``cube_shells`` (the
  Merz–Kollman shells 1.4–2.0, Singh & Kollman, J. Comput. Chem. 5, 129 (1984));
* ``cube_mode="outside"``: all points with ``min_j |p − R_j| / r_j ≥ cube_min_scale``.

Radii are ASE's ``vdw_radii`` (Bondi for the common elements), as in :mod:`dcmnet.surface`.

Net charge: ``options.net_charge`` when given, otherwise estimated from the ESP
(:func:`~dcmnet.data.readers.chemistry.net_charge_from_esp`: the monopole of the ESP is well
determined). A matching density cube gives the electron count ``∫ρ`` as a check: a user's
charge that both the density and the ESP contradict is refused. The density integral on a
typical cube (0.2 Bohr voxels) misses a few tenths of an electron at the nuclear cusps, so
it only checks, it never sets the charge.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.data import vdw_radii

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.assemble import build_dataset
from dcmnet.data.readers.chemistry import (
    check_electron_count,
    estimate_net_charge,
    formula,
    net_charge_from_esp,
    symbol,
)
from dcmnet.data.readers.cube_file import (
    Cube,
    cube_kind,
    density_partner_ok,
    looks_like_cube,
    parse_cube,
)
from dcmnet.data.readers.file_units import LENGTH_UNITS, UNIT_LABEL
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.report import ReadReport, err


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
    grid, esp = _kept_points(cube, R, lf, ef, options, path, rep)
    if (cube.nuclear_charge != 0).any() and (cube.nuclear_charge != cube.Z).any():
        rep.note("nuclear charges in the cube differ from the atomic numbers (effective "
                 "core potentials?); atomic numbers are used.")
    n_el = (None if density_path is None else
            _density_electrons(density_path, cube, R, lf, path, rep))
    q = _cube_net_charge(cube.Z, R, grid, esp, n_el, options, path, rep)
    mol = {"Z": cube.Z, "R": R, "grid": grid, "esp": esp, "net_charge": q,
           "name": path.stem}
    rep.note("no reference atomic charges ('mono') or dipole in a cube file: charge and "
             "dipole losses are off for this molecule.")
    return build_dataset([mol], path, rep), rep


def _kept_points(cube: Cube, R, lf: float, ef: float, options: ReadOptions, path,
                 rep: ReadReport) -> tuple[np.ndarray, np.ndarray]:
    """``(grid (P, 3) Å, esp (P,) Hartree/e)``: the cube points kept (frame checked, vdW
    shells or outside region, at most ``cube_max_points``), each decision reported.

    Raises:
        DataError: a grid frame that does not match the atoms, or no point kept.
    """
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
    return pts[idx], vals[idx]


def _density_electrons(density_path, cube: Cube, R, lf: float, path,
                       rep: ReadReport) -> float:
    """The number of electrons of the density cube paired with potential ``cube``.

    Raises:
        DataError: the density cube looks like a potential, or describes other atoms.
    """
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
    return n_el


def _cube_net_charge(Z, R, grid, esp, n_el: float | None, options: ReadOptions, path,
                     rep: ReadReport) -> float:
    """The net charge of a cube's molecule: the user's, else estimated from the ESP; checked
    against the density cube's electron count ``n_el`` when there is one.

    Raises:
        DataError: an ambiguous ESP estimate, or a given charge that the density and the ESP
            both contradict.
    """
    zsum = int(Z.sum())
    if options.net_charge is not None:
        q = float(options.net_charge)
        rep.note(f"net charge {q:+g} e given by the user.")
        if n_el is not None and abs((zsum - q) - n_el) > 0.5:
            q_esp = round(estimate_net_charge(Z, R, grid, esp))
            if abs((zsum - q_esp) - n_el) < abs((zsum - q) - n_el) and q_esp != q:
                check_electron_count(Z, q, path, 0, n_electrons=n_el)
            rep.warn(f"the density integrates to {n_el:.2f} electrons, not the {zsum - q:g} "
                     "the given charge implies (the cube may be too coarse to integrate the "
                     "core density).", field="net_charge", molecule=0, stacklevel=4)
        return q
    q = net_charge_from_esp(Z, R, grid, esp, path, rep, None, "a cube file")
    if n_el is not None:
        if abs((zsum - q) - n_el) > 0.5:
            rep.warn(f"the density integrates to {n_el:.2f} electrons but the net charge "
                     f"{q:+g} e implies {zsum - q:g}: the density cube is too coarse to "
                     "integrate the core density, or it belongs to another calculation.",
                     field="net_charge", molecule=0, stacklevel=4)
        else:
            rep.note(f"electron count consistent with the density cube ({n_el:.2f} vs "
                     f"{zsum - q:g}).")
    return q


__all__ = ["Cube", "parse_cube", "cube_kind", "select_points", "read_cube",
           "looks_like_cube", "density_partner_ok"]
