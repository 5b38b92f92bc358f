"""Format detection by content and pairing of companion files.

:func:`sniff` looks at a file's bytes (magic numbers, header lines, column counts), never
only at its name, and returns one of the kinds in :data:`KINDS`. :func:`plan` turns a list
of paths (files or folders, searched recursively) into *jobs*: one data file plus the
companions it needs (a density cube for a potential cube, a geometry for espot/psi4/ORCA
files, ``grid.dat`` for ``grid_esp.dat``). Companions are matched in the same folder by
name (the geometry whose stem is the longest common prefix of the data file's stem) or,
failing that, as the only candidate in the folder. :func:`read_job` runs the reader.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable

from dcmnet.data.readers.options import ReadOptions
from dcmnet.data.readers.report import err
from dcmnet.errors import DataError

#: kind → (description, role); role "data" is read on its own, "companion" only with data.
KINDS: dict[str, tuple[str, str]] = {
    "npz": ("NumPy NPZ archive (canonical dcmnet or mmml-style/harmonized)", "data"),
    "hdf5": ("HDF5, SPICE-like layout with ESP datasets", "data"),
    "gaussian_esp": ("Gaussian ESP file (pop=MK iop(6/50=1))", "data"),
    "cube": ("Gaussian cube file (potential)", "data"),
    "cube_density": ("Gaussian cube file (electron density)", "companion"),
    "espot": ("AmberTools espot file", "data"),
    "orca_vpot": ("ORCA orca_vpot output", "data"),
    "psi4_esp": ("psi4 grid_esp.dat (ESP values)", "data"),
    "psi4_grid": ("psi4 grid.dat (points)", "companion"),
    "extxyz": ("extended XYZ with ESP points ('X' rows) and charges", "data"),
    "xyz": ("xyz geometry", "companion"),
    "psi4_output": ("psi4 output (geometry, charge, multiplicity)", "companion"),
    "orca_input": ("ORCA input (geometry, charge, multiplicity)", "companion"),
    "orca_points": ("orca_vpot points input (no ESP values)", "ignored"),
}

_GEOMETRY_KINDS = ("xyz", "psi4_output", "orca_input")
#: geometry kinds each data kind accepts, in order of preference
_GEOMETRY_FOR = {"espot": ("xyz",), "orca_vpot": ("orca_input", "xyz"),
                 "psi4_esp": ("psi4_output", "xyz")}

SUPPORTED = ("canonical/mmml NPZ, SPICE-like HDF5, Gaussian .esp (iop(6/50=1)), Gaussian "
             "cube, AmberTools espot (+xyz), psi4 grid.dat + grid_esp.dat (+geometry), ORCA "
             "orca_vpot output (+input/xyz), extxyz with ESP points")


def _numeric_cols(lines: list[str]) -> int | None:
    """Number of columns when every non-blank line is all numbers with the same count."""
    cols = None
    for ln in lines:
        t = ln.split()
        if not t:
            continue
        try:
            [float(x) for x in t]
        except ValueError:
            return None
        if cols is None:
            cols = len(t)
        elif cols != len(t):
            return None
    return cols


def sniff(path) -> str:
    """The kind of a file (a key of :data:`KINDS`), judged by content.

    Raises:
        DataError: missing file, a single ``.npy`` array, or an unrecognised format (the
            message lists the supported formats).
    """
    from dcmnet.data.readers.cube_file import looks_like_cube
    from dcmnet.data.readers.espot import looks_like_espot
    from dcmnet.data.readers.extxyz import is_extxyz_with_esp, looks_like_xyz
    from dcmnet.data.readers.gaussian_esp import looks_like_gaussian_esp
    from dcmnet.data.readers.hdf5 import HDF5_MAGIC
    from dcmnet.data.readers.orca import (
        looks_like_orca_input,
        looks_like_orca_points,
        looks_like_orca_vpot,
    )
    from dcmnet.data.readers.psi4 import looks_like_psi4_output

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "npz"
    if head[:8] == HDF5_MAGIC:
        return "hdf5"
    if head[:6] == b"\x93NUMPY":
        raise err(path, "is a single .npy array, not a dataset.",
                  "Save all fields together with numpy.savez (an .npz archive).")
    if b"\x00" in head:
        raise err(path, "is a binary file of an unknown format.", f"dcmnet reads {SUPPORTED}.")
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if len(head) == 65536 and lines:
        lines = lines[:-1]  # the last line may be cut
    if not any(ln.strip() for ln in lines):
        raise err(path, "is empty.", "Give a file with data.")
    if looks_like_gaussian_esp(lines):
        return "gaussian_esp"
    if looks_like_cube(lines):
        from dcmnet.data.readers.cube_file import kind_from_comment
        k = kind_from_comment(lines[0] + " " + lines[1])
        if k == "density":
            return "cube_density"
        if k == "unknown":
            from dcmnet.data.readers.cube_file import cube_kind, parse_cube
            return "cube_density" if cube_kind(parse_cube(path)) == "density" else "cube"
        return "cube"
    if looks_like_psi4_output(text) or "psi4: an open-source" in text[:4000].lower():
        return "psi4_output"
    if looks_like_orca_input(text):
        return "orca_input"
    if looks_like_espot(lines):
        return "espot"
    if looks_like_orca_vpot(lines):
        return "orca_vpot"
    if looks_like_orca_points(lines):
        return "orca_points"
    if looks_like_xyz(lines):
        return "extxyz" if is_extxyz_with_esp(lines) else "xyz"
    cols = _numeric_cols(lines)
    if cols == 3:
        return "psi4_grid"
    if cols == 1:
        return "psi4_esp"
    raise err(path, "is in a format dcmnet does not recognise.",
              f"dcmnet reads {SUPPORTED}; see docs/data.md.")


@dataclasses.dataclass
class Job:
    """One dataset to read: the main file, its kind and its companions."""

    kind: str
    path: Path
    companions: dict = dataclasses.field(default_factory=dict)

    def files(self) -> list[Path]:
        """All files the job reads (main first)."""
        return [self.path] + [p for p in self.companions.values() if p is not None]


def expand(paths: Iterable) -> list[tuple[Path, bool]]:
    """``(file, explicit)`` pairs: files as given, folders searched recursively (sorted,
    hidden files skipped)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith("."):
                        out.append((Path(root) / f, False))
        else:
            out.append((p, True))
    return out


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.lower(), b.lower()):
        if x != y:
            break
        n += 1
    return n


def _pick_geometry(data: Path, candidates: list[tuple[Path, str]], prefer: tuple[str, ...]
                   ) -> Path | None:
    same_dir = [(p, k) for p, k in candidates if p.parent == data.parent and k in prefer]
    if not same_dir:
        return None
    def exact(p):  # 'mol' for 'mol.espot' / 'mol_vpot.out' / 'mol-esp.dat'
        return p.stem == data.stem or (data.stem.startswith(p.stem) and
                                       data.stem[len(p.stem):][:1] in "_-.")
    scored = sorted(((exact(p), _common_prefix(p.stem, data.stem), -prefer.index(k), str(p), p)
                     for p, k in same_dir), reverse=True)
    best = scored[0]
    if (best[0] or best[1] >= 2) and (len(scored) == 1 or scored[1][:3] != best[:3]):
        return best[4]
    if len(same_dir) == 1:
        return same_dir[0][0]
    by_pref = [p for p, k in same_dir if k == prefer[0]]
    if len(by_pref) == 1 and not best[0] and best[1] < 2:
        return by_pref[0]
    return None


_SIBLING_SUFFIXES = {".xyz", ".inp", ".out", ".dat", ".log", ".txt", ".cube", ".cub", ""}


def _sibling_kinds(folder: Path, known: dict, cache: dict) -> list[tuple[Path, str]]:
    """Kinds of the files next to a data file that were not given (companion candidates)."""
    if folder not in cache:
        found = []
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            entries = []
        for p in entries:
            if p in known or not p.is_file() or p.name.startswith(".") or \
                    p.suffix.lower() not in _SIBLING_SUFFIXES or p.stat().st_size > 50e6:
                continue
            try:
                found.append((p, sniff(p)))
            except DataError:
                continue
        cache[folder] = found
    return cache[folder]


def plan(paths: Iterable) -> tuple[list[Job], list[tuple[Path, str]], list[str]]:
    """Detect every file and group companions into jobs.

    Returns:
        ``(jobs, errors, notes)``: jobs in the order of their main files; ``errors`` as
        ``(path, message)`` for files that cannot be used (all of them, not only the
        first); ``notes`` for files that were skipped or used as companions.
    """
    kinds, explicit, errors, notes = _sniff_all(expand(paths))
    geoms = [(p, k) for p, k in kinds.items() if k in _GEOMETRY_KINDS]
    used: set[Path] = set()
    dens_for, potentials = _pair_densities(kinds, errors, used)
    grids = [p for p, k in kinds.items() if k == "psi4_grid"]
    sibling = _siblings(kinds, geoms, grids, dens_for)
    jobs: list[Job] = []
    for p, k in list(kinds.items()):
        if KINDS[k][1] != "data" or (k == "cube" and p not in potentials):
            continue
        job = _job(p, k, kinds, sibling, grids, geoms, dens_for, used, errors)
        if job is not None:
            jobs.append(job)
    _leftover_notes(kinds, explicit, grids, used, sibling, jobs, errors, notes)
    return jobs, errors, notes


def _sniff_all(entries):
    """``(kinds, explicit, errors, notes)``: the format of every file (an unrecognised file
    is an error when given by name, a note when found in a folder)."""
    kinds: dict[Path, str] = {}
    errors: list[tuple[Path, str]] = []
    notes: list[str] = []
    explicit = {}
    for p, ex in entries:
        if p in kinds:
            continue
        explicit[p] = ex
        try:
            kinds[p] = sniff(p)
        except DataError as exc:
            if ex:
                errors.append((p, str(exc)))
            else:
                notes.append(f"{p}: skipped (not a recognised ESP file).")
    return kinds, explicit, errors, notes


def _pair_densities(kinds, errors, used):
    """``(dens_for, potentials)``: each electron-density cube paired with the potential cube
    of the same molecule (same grid and atoms; nearest folder, longest common name)."""
    densities = [p for p, k in kinds.items() if k == "cube_density"]
    potentials = [p for p, k in kinds.items() if k == "cube"]
    dens_for: dict[Path, Path] = {}
    if densities:
        from dcmnet.data.readers.cube_file import density_partner_ok, parse_cube
        parsed = {}
        for p in densities + potentials:
            try:
                parsed[p] = parse_cube(p)
            except DataError as exc:
                errors.append((p, str(exc)))
        for d in densities:
            if d not in parsed:
                continue
            match = [c for c in potentials if c in parsed and c not in dens_for and
                     density_partner_ok(parsed[c], parsed[d])]
            match.sort(key=lambda c: (c.parent != d.parent, -_common_prefix(c.stem, d.stem)))
            if match:
                dens_for[match[0]] = d
                used.add(d)
            else:
                errors.append((d, f"{d}: an electron-density cube without a potential cube of "
                               "the same molecule. Give the potential cube too (the density "
                               "only serves to check the net charge)."))
        potentials = [c for c in potentials if c in parsed]
    return dens_for, potentials


def _siblings(kinds, geoms, grids, dens_for) -> dict:
    """Companions found next to data files but not given (geometries, psi4 grids, density
    cubes); ``geoms``, ``grids`` and ``dens_for`` are extended in place."""
    sib_cache: dict = {}
    sibling: dict[Path, str] = {}  # companions found next to data files, not given
    for p, k in list(kinds.items()):
        if KINDS[k][1] != "data":
            continue
        if k == "psi4_esp" or k in _GEOMETRY_FOR or (k == "cube" and p not in dens_for):
            for q, kq in _sibling_kinds(p.parent, kinds, sib_cache):
                if kq in _GEOMETRY_KINDS and (q, kq) not in geoms:
                    geoms.append((q, kq))
                elif kq == "psi4_grid" and q not in grids:
                    grids.append(q)
                    sibling[q] = kq
                elif kq == "cube_density" and k == "cube" and q not in dens_for.values() \
                        and _common_prefix(q.stem, p.stem) >= 3:
                    from dcmnet.data.readers.cube_file import density_partner_ok, parse_cube
                    try:
                        if density_partner_ok(parse_cube(p), parse_cube(q)):
                            dens_for[p] = q
                    except DataError:
                        pass
                if kq in _GEOMETRY_KINDS or kq == "cube_density":
                    sibling.setdefault(q, kq)
    return sibling


def _job(p, k, kinds, sibling, grids, geoms, dens_for, used, errors):
    """The :class:`Job` of data file ``p`` with its companions; ``None`` (and an error) for
    psi4 values without their grid."""
    job = Job(k, p)
    if k == "cube":
        job.companions["density"] = dens_for.get(p)
    if k == "psi4_esp":
        name = p.name
        cand = None
        if name.endswith("_esp" + p.suffix):
            cand = p.with_name(name[: -len("_esp" + p.suffix)] + p.suffix)
        gm = cand if (kinds.get(cand) or sibling.get(cand)) == "psi4_grid" else None
        if gm is None:
            same = [g for g in grids if g.parent == p.parent and g not in used]
            gm = same[0] if len(same) == 1 else None
        if gm is None:
            errors.append((p, f"{p}: ESP values without their points: psi4's "
                           "grid_esp.dat needs the grid.dat it was computed on (same "
                           "folder)."))
            return None
        job.companions["grid"] = gm
        used.add(gm)
    if k in _GEOMETRY_FOR:
        g = _pick_geometry(p, geoms, _GEOMETRY_FOR[k])
        job.companions["geometry"] = g
        if g is not None:
            used.add(g)
    return job


def _leftover_notes(kinds, explicit, grids, used, sibling, jobs, errors, notes) -> None:
    """Errors and notes for files that were not used, and how companions were used."""
    for g in grids:
        if g not in used and g not in sibling:
            (errors.append((g, f"{g}: ESP points without ESP values: psi4 writes the values "
                            "to grid_esp.dat next to grid.dat; give both."))
             if explicit.get(g) else notes.append(f"{g}: skipped (points without values)."))
    for p, k in kinds.items():
        if k == "orca_points":
            notes.append(f"{p}: orca_vpot points input (no ESP values), skipped.")
        elif k in _GEOMETRY_KINDS and p not in used:
            notes.append(f"{p}: {KINDS[k][0]}, not paired with any ESP file; skipped.")
    for j in jobs:
        for c in j.companions.values():
            if c is not None:
                how = " (found next to it)" if c in sibling and c not in kinds else ""
                notes.append(f"{c}: {KINDS[kinds.get(c) or sibling[c]][0]}, used with "
                             f"{j.path.name}{how}.")


def read_job(job: Job, options: ReadOptions | None = None):
    """Run the reader of a job; returns ``(dataset, report)`` (a :class:`.report.ReadReport`).

    Raises:
        DataError: from the reader.
    """
    options = options or ReadOptions()
    k = job.kind
    if k == "npz":
        from dcmnet.data.readers.npz import read_npz
        return read_npz(job.path, options)
    if k == "hdf5":
        from dcmnet.data.readers.hdf5 import read_hdf5
        return read_hdf5(job.path, options)
    if k == "gaussian_esp":
        from dcmnet.data.readers.gaussian_esp import read_gaussian_esp
        return read_gaussian_esp(job.path, options)
    if k == "cube":
        from dcmnet.data.readers.cube import read_cube
        return read_cube(job.path, job.companions.get("density"), options)
    if k == "extxyz":
        from dcmnet.data.readers.extxyz import read_extxyz
        return read_extxyz(job.path, options)
    geometry = _geometry(job.companions.get("geometry"))
    if k == "espot":
        from dcmnet.data.readers.espot import read_espot
        return read_espot(job.path, geometry, options)
    if k == "orca_vpot":
        from dcmnet.data.readers.orca import read_orca_vpot
        return read_orca_vpot(job.path, geometry, options)
    if k == "psi4_esp":
        from dcmnet.data.readers.psi4 import read_psi4_grid
        return read_psi4_grid(job.companions["grid"], job.path, geometry, options)
    raise DataError(f"{job.path}: no reader for kind {k!r}.")


def read_geometry(path):
    """A :class:`~dcmnet.data.readers.geometry.Geometry` from an xyz, psi4 output or ORCA input.

    Raises:
        DataError: the file is none of these, or is malformed.
    """
    k = sniff(path)
    if k == "xyz":
        from dcmnet.data.readers.extxyz import read_xyz_geometry
        return read_xyz_geometry(path)
    if k == "psi4_output":
        from dcmnet.data.readers.psi4 import parse_psi4_output_geometry
        return parse_psi4_output_geometry(path)
    if k == "orca_input":
        from dcmnet.data.readers.orca import parse_orca_input_geometry
        return parse_orca_input_geometry(path)
    raise err(path, f"is a {KINDS[k][0]}, not a geometry.",
              "Give an xyz file, a psi4 output or an ORCA input.")


def _geometry(path):
    return None if path is None else read_geometry(path)
