"""The canonical, ragged ESP dataset.

A :class:`Dataset` holds ``M`` molecules (conformers) as flat arrays plus per-molecule
counts, so that molecules of any size and any number of grid points live together without
padding:

===================  ==================  ==========  =========================================
field                shape               unit        meaning
===================  ==================  ==========  =========================================
``n_atoms``          (M,) int32                      atoms per molecule
``n_grid``           (M,) int32                      ESP grid points per molecule
``Z``                (sum n_atoms,)                  atomic numbers (1..118; never 0)
``R``                (sum n_atoms, 3)    Å           atomic positions
``grid``             (sum n_grid, 3)     Å           ESP points (usually on vdW shells)
``esp``              (sum n_grid,)       Hartree/e   reference ESP (nuclear + electronic)
``net_charge``       (M,) float64        e           total charge of each molecule (integer)
``mono``             (sum n_atoms,)      e           reference atomic charges (0 where absent)
``has_mono``         (M,) bool                       ``mono`` really present for the molecule
``dipole``           (M, 3)              e·Å         reference dipole about the centre of mass
``has_dipole``       (M,) bool                       ``dipole`` really present
``name``             (M,) str                        molecule name (conformers share it)
===================  ==================  ==========  =========================================

Files are uncompressed or compressed NPZ written with plain numeric/unicode arrays only; they
are always read with ``allow_pickle=False`` and written atomically (temporary file + rename).
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dcmnet.errors import DataError
from dcmnet.fileio import atomic_path
from dcmnet.units import MAX_ATOMIC_NUMBER

#: Format tag stored in every canonical file (``format`` key).
FORMAT_TAG = "dcmnet-canonical-v1"

_PER_MOL = ("n_atoms", "n_grid", "net_charge", "has_mono", "dipole", "has_dipole", "name")
_PER_ATOM = ("Z", "R", "mono")
_PER_GRID = ("grid", "esp")

#: Atomic masses (u) are taken from ASE for centre-of-mass computations.
from ase.data import atomic_masses as _ATOMIC_MASSES  # noqa: E402


def segment_offsets(counts: np.ndarray) -> np.ndarray:
    """(M+1,) int64 start offsets of M ragged segments with the given (M,) counts."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])



def centre_of_mass(Z, R, counts=None) -> np.ndarray:
    """Mass-weighted centre (Å) of atoms, with ASE's atomic masses (u); the one implementation.

    Layouts: one molecule ``Z`` (N,), ``R`` (N, 3) → (3,); padded ``Z`` (..., A) with 0 for
    padding, ``R`` (..., A, 3) → (..., 3); ragged ``Z`` (ΣN,), ``R`` (ΣN, 3) with
    ``counts`` (M,) atoms per molecule → (M, 3).
    """
    Z = np.asarray(Z, dtype=np.int64)
    R = np.asarray(R, dtype=np.float64)
    m = np.where(Z > 0, _ATOMIC_MASSES[np.clip(Z, 0, None)], 0.0)
    if counts is not None:
        n = len(counts)
        seg = np.repeat(np.arange(n), counts)
        tot = np.bincount(seg, weights=m, minlength=n)
        return np.stack([np.bincount(seg, weights=m * R[:, k], minlength=n)
                         for k in range(3)], axis=1) / tot[:, None]
    return (m[..., None] * R).sum(-2) / np.maximum(m.sum(-1), 1e-12)[..., None]


@dataclasses.dataclass
class Dataset:
    """Ragged ESP dataset; see the module docstring for fields, shapes and units.

    Raises:
        DataError: from :meth:`validate` when counts and array lengths disagree, values are
            not finite, atomic numbers are out of range or a molecule has no atoms/grid.
    """

    n_atoms: np.ndarray
    n_grid: np.ndarray
    Z: np.ndarray
    R: np.ndarray
    grid: np.ndarray
    esp: np.ndarray
    net_charge: np.ndarray
    mono: np.ndarray
    has_mono: np.ndarray
    dipole: np.ndarray
    has_dipole: np.ndarray
    name: np.ndarray
    source: str = "<memory>"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_molecules(cls, molecules: Sequence[dict], source: str = "<memory>") -> "Dataset":
        """Build a dataset from a list of per-molecule dicts.

        Each dict needs ``Z`` (N,), ``R`` (N, 3) Å, ``grid`` (G, 3) Å, ``esp`` (G,) Hartree/e
        and may have ``net_charge`` (default 0), ``mono`` (N,) e, ``dipole`` (3,) e·Å about
        the centre of mass, and ``name``.
        """
        if len(molecules) == 0:
            raise DataError(f"{source}: no molecules to build a dataset from.")
        n_atoms = np.array([len(m["Z"]) for m in molecules], dtype=np.int32)
        n_grid = np.array([len(m["esp"]) for m in molecules], dtype=np.int32)
        has_mono = np.array([m.get("mono") is not None for m in molecules], dtype=bool)
        has_dip = np.array([m.get("dipole") is not None for m in molecules], dtype=bool)
        mono = np.concatenate([
            np.asarray(m["mono"], np.float64) if m.get("mono") is not None
            else np.zeros(len(m["Z"])) for m in molecules])
        dip = np.stack([
            np.asarray(m["dipole"], np.float64) if m.get("dipole") is not None
            else np.zeros(3) for m in molecules])
        ds = cls(
            n_atoms=n_atoms,
            n_grid=n_grid,
            Z=np.concatenate([np.asarray(m["Z"], np.int32) for m in molecules]),
            R=np.concatenate([np.asarray(m["R"], np.float64).reshape(-1, 3) for m in molecules]),
            grid=np.concatenate([np.asarray(m["grid"], np.float32).reshape(-1, 3) for m in molecules]),
            esp=np.concatenate([np.asarray(m["esp"], np.float32).reshape(-1) for m in molecules]),
            net_charge=np.array([float(m.get("net_charge", 0.0)) for m in molecules]),
            mono=mono,
            has_mono=has_mono,
            dipole=dip,
            has_dipole=has_dip,
            name=np.array([str(m.get("name", f"mol{i}")) for i, m in enumerate(molecules)]),
            source=source,
        )
        ds.validate()
        return ds

    # ------------------------------------------------------------------ basic access
    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def atom_offsets(self) -> np.ndarray:
        """(M+1,) start offsets of each molecule in the per-atom arrays."""
        return segment_offsets(self.n_atoms)

    @property
    def grid_offsets(self) -> np.ndarray:
        """(M+1,) start offsets of each molecule in the per-grid-point arrays."""
        return segment_offsets(self.n_grid)

    def molecule(self, i: int) -> dict:
        """Molecule ``i`` as a dict of per-molecule arrays (shapes as in the table, un-flattened)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"molecule index {i} out of range for {len(self)} molecules")
        i = i % len(self)
        a0, a1 = self.atom_offsets[i], self.atom_offsets[i + 1]
        g0, g1 = self.grid_offsets[i], self.grid_offsets[i + 1]
        return {
            "Z": self.Z[a0:a1], "R": self.R[a0:a1], "grid": self.grid[g0:g1],
            "esp": self.esp[g0:g1], "net_charge": float(self.net_charge[i]),
            "mono": self.mono[a0:a1] if self.has_mono[i] else None,
            "dipole": self.dipole[i] if self.has_dipole[i] else None,
            "name": str(self.name[i]), "index": i,
        }

    def subset(self, indices: Iterable[int]) -> "Dataset":
        """A new dataset with the molecules ``indices`` in that order."""
        idx = np.asarray(list(indices), dtype=np.int64)
        if idx.size == 0:
            raise DataError(f"{self.source}: empty subset requested.")
        ao, go = self.atom_offsets, self.grid_offsets
        aidx = np.concatenate([np.arange(ao[i], ao[i + 1]) for i in idx])
        gidx = np.concatenate([np.arange(go[i], go[i + 1]) for i in idx])
        return Dataset(
            n_atoms=self.n_atoms[idx], n_grid=self.n_grid[idx], Z=self.Z[aidx], R=self.R[aidx],
            grid=self.grid[gidx], esp=self.esp[gidx], net_charge=self.net_charge[idx],
            mono=self.mono[aidx], has_mono=self.has_mono[idx], dipole=self.dipole[idx],
            has_dipole=self.has_dipole[idx], name=self.name[idx], source=self.source)

    @staticmethod
    def concatenate(datasets: Sequence["Dataset"]) -> "Dataset":
        """Join datasets (for example several files) into one, in order.

        Views of an on-disk folder (:mod:`dcmnet.data.ondisk`) are joined as a view."""
        join = next((d.join_views for d in datasets if hasattr(d, "join_views")), None)
        if join is not None:
            return join(datasets)
        if len(datasets) == 1:
            return datasets[0]
        cat = {f.name: np.concatenate([getattr(d, f.name) for d in datasets])
               for f in dataclasses.fields(Dataset) if f.name != "source"}
        return Dataset(**cat, source=" + ".join(d.source for d in datasets))

    def centre_of_mass(self) -> np.ndarray:
        """(M, 3) centre of mass of each molecule in Å (ASE atomic masses)."""
        return centre_of_mass(self.Z, self.R, counts=self.n_atoms)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check internal consistency; raise :class:`DataError` naming the molecule and field."""
        src = self.source
        M = len(self)
        for f in _PER_MOL:
            if getattr(self, f).shape[0] != M:
                raise DataError(f"{src}: field '{f}' has {getattr(self, f).shape[0]} entries, "
                                f"expected one per molecule ({M}).")
        na, ng = int(self.n_atoms.sum()), int(self.n_grid.sum())
        for f in _PER_ATOM:
            if getattr(self, f).shape[0] != na:
                raise DataError(f"{src}: field '{f}' has {getattr(self, f).shape[0]} rows but "
                                f"the molecules hold {na} atoms in total.")
        for f in _PER_GRID:
            if getattr(self, f).shape[0] != ng:
                raise DataError(f"{src}: field '{f}' has {getattr(self, f).shape[0]} rows but "
                                f"the molecules hold {ng} grid points in total.")
        bad = np.flatnonzero(self.n_atoms <= 0)
        if bad.size:
            raise DataError(f"{src}: molecule {bad[0]} has no atoms; remove it from the file.")
        bad = np.flatnonzero(self.n_grid <= 0)
        if bad.size:
            raise DataError(f"{src}: molecule {bad[0]} has no ESP grid points; remove it or "
                            "regenerate its ESP.")
        seg_a = np.repeat(np.arange(M), self.n_atoms)
        seg_g = np.repeat(np.arange(M), self.n_grid)
        badz = np.flatnonzero((self.Z < 1) | (self.Z > MAX_ATOMIC_NUMBER))
        if badz.size:
            raise DataError(f"{src}: field 'Z' of molecule {seg_a[badz[0]]} holds atomic number "
                            f"{self.Z[badz[0]]}; atomic numbers must be 1..118.")
        for f, seg in (("R", seg_a), ("mono", seg_a), ("grid", seg_g), ("esp", seg_g)):
            arr = getattr(self, f)
            finite = np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
            if not finite.all():
                i = seg[np.flatnonzero(~finite)[0]]
                raise DataError(f"{src}: field '{f}' of molecule {i} contains NaN or Inf; fix "
                                "or drop that molecule.")
        for f in ("net_charge", "dipole"):
            if not np.isfinite(getattr(self, f)).all():
                i = np.flatnonzero(~np.isfinite(getattr(self, f)).reshape(M, -1).all(axis=1))[0]
                raise DataError(f"{src}: field '{f}' of molecule {i} contains NaN or Inf.")
        frac = np.abs(self.net_charge - np.round(self.net_charge))
        if (frac > 1e-3).any():
            i = int(np.argmax(frac))
            raise DataError(f"{src}: net charge of molecule {i} is {self.net_charge[i]}, not an "
                            "integer; give the total charge in e.")

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike, compressed: bool = True,
             metadata: dict | None = None) -> Path:
        """Write the dataset atomically as a canonical NPZ (no pickled objects).

        Args:
            path: destination ``.npz`` file; its folder is created.
            compressed: use zip deflate (smaller; the bundled data uses it).
            metadata: optional JSON-able dict stored as a JSON string under ``metadata``.
        Returns:
            The path written.
        """
        import json
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "source"}
        arrays["R"] = arrays["R"].astype(np.float64)
        arrays["grid"] = arrays["grid"].astype(np.float32)
        arrays["esp"] = arrays["esp"].astype(np.float32)
        arrays["name"] = np.asarray(arrays["name"]).astype(str)
        arrays["format"] = np.array(FORMAT_TAG)
        arrays["metadata"] = np.array(json.dumps(metadata or {}))
        with atomic_path(path) as tmp:
            (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dataset":
        """Read a canonical NPZ written by :meth:`save` (never unpickles anything).

        Raises:
            DataError: the file is missing, not an NPZ, holds pickled objects, or is not a
                canonical dataset (use :func:`dcmnet.data.load_dataset` for other layouts).
        """
        path = Path(path)
        with open_npz(path) as z:
            if "format" not in z.files or str(z["format"]) != FORMAT_TAG:
                raise DataError(f"{path}: not a dcmnet canonical dataset (no 'format' key).")
            kw = {}
            for f in dataclasses.fields(cls):
                if f.name == "source":
                    continue
                if f.name not in z.files:
                    raise DataError(f"{path}: canonical dataset lacks field '{f.name}'.")
                kw[f.name] = read_array(z, f.name, path)
        ds = cls(**kw, source=str(path))
        ds.validate()
        return ds


def read_array(z, key: str, path) -> np.ndarray:
    """Read ``key`` from an open NPZ, turning a pickled (object) array into a clear error."""
    try:
        return z[key]
    except ValueError as exc:  # numpy refuses object arrays when allow_pickle=False
        raise DataError(
            f"{path}: field '{key}' is stored as pickled Python objects (ragged or object "
            "array); dcmnet never unpickles files. Re-save it as a numeric array (pad ragged "
            "data with zeros and give the counts in 'N'/'n_grid').") from exc


class open_npz:
    """Context manager: ``np.load(path, allow_pickle=False)`` with a clear :class:`DataError`."""

    def __init__(self, path):
        self.path = Path(path)
        self._z = None

    def __enter__(self):
        if not self.path.exists():
            raise DataError(f"{self.path}: file not found.")
        try:
            self._z = np.load(self.path, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(f"{self.path}: not a readable NPZ file ({exc}).") from exc
        if not hasattr(self._z, "files"):
            raise DataError(f"{self.path}: a single .npy array, expected an NPZ archive.")
        return self._z

    def __exit__(self, *exc):
        if self._z is not None:
            self._z.close()
        return False
