"""Datasets larger than memory: a folder of uncompressed ``.npy`` arrays, memory-mapped.

``dcmnet convert FILE... --format npy-dir --out DIR`` (or :func:`dcmnet.data.ondisk_writer.write_npy_dir`) writes the
fields of the canonical :class:`~dcmnet.data.dataset.Dataset` as one ``.npy`` file each
(``DIR/Z.npy``, ``DIR/grid.npy``, ...; flat, concatenated over molecules exactly as in
memory) plus ``DIR/dcmnet_npydir.json`` (format tag, counts, dtypes and shapes).
:func:`open_npy_dir` opens them with ``np.load(mmap_mode="r")`` (never ``allow_pickle``):
nothing is read until a batch needs it, so opening a million conformers costs a few bytes
per molecule (the atom and grid counts and their offsets).

:class:`OnDiskDataset` is a :class:`Dataset` whose per-atom and per-point arrays stay on disk.
``subset`` and ``Dataset.concatenate`` give *views* (molecule indices into the same files,
:class:`Take` / :class:`RaggedTake`), never copies, so splits and the trainer's bucket
shapes cost O(molecules) small integers. Batches gather only their molecules' rows
(``make_batch`` indexes the arrays), bitwise the same as from the same data in memory.
Pages of the mapping that were read count in the process's resident memory until
:meth:`OnDiskDataset.release_pages` (``madvise(MADV_DONTNEED)``; the kernel's page cache keeps
them) — the prefetcher of :mod:`dcmnet.data.prefetch` calls it after every batch.

Values are checked (``Dataset.validate``: finite, atomic numbers, counts) chunk by chunk when
the folder is written; opening checks only the manifest, the files' headers and sizes.
The folder is written under a temporary name next to ``DIR`` and renamed when complete.
"""
from __future__ import annotations

import dataclasses
import json
import mmap
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dcmnet.data.dataset import Dataset, segment_offsets
from dcmnet.errors import DataError

#: Format tag of the manifest.
NPYDIR_TAG = "dcmnet-npydir-v1"
#: File name of the manifest inside the folder.
MANIFEST_NAME = "dcmnet_npydir.json"
#: dtype and trailing shape of every field as stored; "mol", "atom" or "grid" rows.
FIELDS: dict[str, tuple[str, tuple[int, ...], str]] = {
    "n_atoms": ("<i4", (), "mol"), "n_grid": ("<i4", (), "mol"),
    "net_charge": ("<f8", (), "mol"), "has_mono": ("|b1", (), "mol"),
    "dipole": ("<f8", (3,), "mol"), "has_dipole": ("|b1", (), "mol"),
    "name": (None, (), "mol"),            # fixed-width unicode, width from the data
    "Z": ("<i4", (), "atom"), "R": ("<f8", (3,), "atom"), "mono": ("<f8", (), "atom"),
    "grid": ("<f4", (3,), "grid"), "esp": ("<f4", (), "grid"),
}
_FIX = "re-create it with `dcmnet convert SOURCE... --format npy-dir --out {root}`"


def is_npy_dir(path) -> bool:
    """True when ``path`` is a folder holding a dcmnet ``.npy`` dataset manifest."""
    return Path(path).is_dir() and (Path(path) / MANIFEST_NAME).is_file()


# ---------------------------------------------------------------------------- lazy views
class _ArrayView:
    """Read-only array-like: ``view[key]`` gathers rows; ``np.asarray(view)`` reads all."""

    base: np.ndarray

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        out = self[np.arange(len(self), dtype=np.int64)]
        return out if dtype is None else out.astype(dtype)

    def __iter__(self):
        return iter(np.asarray(self))

    def _rows(self, key) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, slice):
            key = np.arange(*key.indices(len(self)), dtype=np.int64)
        idx = np.asarray(key, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} rows")
        out = self.base[self._rows(idx % max(len(self), 1))]
        return out[rest] if rest else out

    def astype(self, dtype):
        return np.asarray(self).astype(dtype)

    def sum(self, *a, **k):
        return np.asarray(self).sum(*a, **k)

    def min(self, *a, **k):
        return np.asarray(self).min(*a, **k)

    def max(self, *a, **k):
        return np.asarray(self).max(*a, **k)

    def tolist(self):
        return np.asarray(self).tolist()


class Take(_ArrayView):
    """Per-molecule rows ``base[index]`` of an on-disk array, gathered on access.

    Args:
        base: (M_file, ...) array (a memory map); index: (M,) int64 rows of ``base``.
    """

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)

    @property
    def shape(self):
        return (len(self.index),) + tuple(self.base.shape[1:])

    def _rows(self, idx):
        return self.index[idx]


class RaggedTake(_ArrayView):
    """Per-atom (or per-point) rows of chosen molecules of an on-disk flat array.

    Row ``j`` of the view is row ``starts[m] + j - offsets[m]`` of ``base``, where ``m`` is
    the molecule holding ``j`` (``offsets[m] <= j < offsets[m + 1]``): the molecules' rows
    laid end to end, as in an in-memory :class:`Dataset`, without copying them.

    Args:
        base: (N_file, ...) flat array; offsets: (M+1,) int64 logical segment offsets;
        starts: (M,) int64 first row of each molecule in ``base``.
    """

    def __init__(self, base: np.ndarray, offsets: np.ndarray, starts: np.ndarray):
        self.base, self.offsets, self.starts = base, offsets, starts

    @property
    def shape(self):
        return (int(self.offsets[-1]),) + tuple(self.base.shape[1:])

    def _rows(self, idx):
        mol = np.searchsorted(self.offsets, idx, side="right") - 1
        return self.starts[mol] + (idx - self.offsets[mol])

    def __array__(self, dtype=None, copy=None):
        # molecule by molecule chunks: no (N,) index array for the whole view
        out = np.empty(self.shape, dtype=self.dtype if dtype is None else dtype)
        M, step = len(self.starts), 65536
        for m0 in range(0, M, step):
            m1 = min(M, m0 + step)
            lo, hi = int(self.offsets[m0]), int(self.offsets[m1])
            out[lo:hi] = self[np.arange(lo, hi, dtype=np.int64)]
        return out


# ---------------------------------------------------------------------------- dataset
class _Store:
    """The open memory maps of one folder (shared by all views of it)."""

    def __init__(self, root: Path, arrays: dict[str, np.ndarray]):
        self.root, self.arrays = root, arrays
        self.atom_offsets = segment_offsets(arrays["n_atoms"])
        self.grid_offsets = segment_offsets(arrays["n_grid"])

    def release(self) -> None:
        """Drop the mapped pages from this process (they stay in the page cache)."""
        for a in self.arrays.values():
            mm = getattr(a, "_mmap", None)
            if mm is not None and hasattr(mm, "madvise"):
                try:
                    mm.madvise(mmap.MADV_DONTNEED)
                except (OSError, ValueError):  # closed or unsupported: harmless
                    pass


@dataclasses.dataclass(eq=False)
class OnDiskDataset(Dataset):
    """A :class:`Dataset` read from a ``.npy`` folder; molecules ``mol_index`` of the files.

    Fields have the shapes and units of :class:`Dataset`; the per-atom/per-point fields and
    the per-molecule fields other than ``n_atoms``/``n_grid`` are memory maps (the whole
    folder) or :class:`Take`/:class:`RaggedTake` views (a subset), read on access.
    ``np.asarray(ds.R)`` reads a whole field into memory — batches never need that.
    """

    store: _Store | None = None
    mol_index: np.ndarray | None = None      # (M,) rows of the files; None = all, in order

    def __post_init__(self):
        self._ao = segment_offsets(self.n_atoms)
        self._go = segment_offsets(self.n_grid)

    @property
    def atom_offsets(self) -> np.ndarray:
        return self._ao

    @property
    def grid_offsets(self) -> np.ndarray:
        return self._go

    def _rows(self) -> np.ndarray:
        return (np.arange(len(self), dtype=np.int64) if self.mol_index is None
                else self.mol_index)

    def subset(self, indices: Iterable[int]) -> "OnDiskDataset":
        """A view of the molecules ``indices`` (no data copied); see :meth:`Dataset.subset`."""
        idx = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices),
                         dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise DataError(f"{self.source}: empty subset requested.")
        if idx.min() < -len(self) or idx.max() >= len(self):
            raise DataError(f"{self.source}: molecule index out of range for {len(self)} "
                            "molecules.")
        return _view(self.store, self._rows()[idx % len(self)], self.source)

    @staticmethod
    def join_views(datasets) -> "OnDiskDataset":
        """``Dataset.concatenate`` of views of one folder (molecule indices joined)."""
        stores = {id(getattr(d, "store", None)) for d in datasets}
        if len(stores) != 1 or not all(isinstance(d, OnDiskDataset) for d in datasets):
            raise DataError(
                "an on-disk (.npy folder) dataset cannot be joined with other data; convert "
                "all files into one folder: `dcmnet convert A B ... --format npy-dir --out "
                "DIR`.")
        if len(datasets) == 1:
            return datasets[0]
        rows = np.concatenate([d._rows() for d in datasets])
        return _view(datasets[0].store, rows, " + ".join(dict.fromkeys(d.source
                                                                       for d in datasets)))

    def validate(self) -> None:
        """Cheap consistency checks (counts, lengths); the values were checked when written."""
        M = len(self)
        for f, kind in ((f, k) for f, (_, _, k) in FIELDS.items()):
            n = {"mol": M, "atom": int(self._ao[-1]), "grid": int(self._go[-1])}[kind]
            if len(getattr(self, f)) != n:
                raise DataError(f"{self.source}: field '{f}' has {len(getattr(self, f))} rows, "
                                f"expected {n}; " + _FIX.format(root=self.source) + ".")
        if M and (self.n_atoms.min() <= 0 or self.n_grid.min() <= 0):
            raise DataError(f"{self.source}: a molecule has no atoms or no grid points; "
                            + _FIX.format(root=self.source) + ".")

    def centre_of_mass(self) -> np.ndarray:
        """(M, 3) centre of mass in Å, computed in chunks of molecules."""
        out = np.empty((len(self), 3))
        for m0, chunk in self.iter_chunks():
            out[m0:m0 + len(chunk)] = Dataset.centre_of_mass(chunk)
        return out

    def iter_chunks(self, size: int = 65536) -> Iterator[tuple[int, Dataset]]:
        """``(first_molecule, in-memory Dataset)`` for consecutive chunks of ``size``."""
        for m0 in range(0, len(self), int(size)):
            part = self.subset(np.arange(m0, min(len(self), m0 + int(size))))
            yield m0, part.to_memory()

    def to_memory(self) -> Dataset:
        """The same molecules as an ordinary in-memory :class:`Dataset` (reads everything)."""
        kw = {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(Dataset)
              if f.name != "source"}
        return Dataset(**kw, source=self.source)

    def save(self, path, compressed: bool = True, metadata: dict | None = None) -> Path:
        """Write as a canonical NPZ (reads the whole dataset into memory first)."""
        return self.to_memory().save(path, compressed=compressed, metadata=metadata)

    def release_pages(self) -> None:
        """Drop the pages of the folder's files mapped so far from this process's memory."""
        self.store.release()


def _view(store: _Store, rows: np.ndarray | None, source: str) -> OnDiskDataset:
    a = store.arrays
    kw = {}
    if rows is None:
        kw = {f: a[f] for f in FIELDS}
        kw["n_atoms"], kw["n_grid"] = np.asarray(a["n_atoms"]), np.asarray(a["n_grid"])
    else:
        n_atoms, n_grid = np.asarray(a["n_atoms"][rows]), np.asarray(a["n_grid"][rows])
        ao, go = segment_offsets(n_atoms), segment_offsets(n_grid)
        a_start, g_start = store.atom_offsets[rows], store.grid_offsets[rows]
        for f, (_, _, kind) in FIELDS.items():
            kw[f] = {"mol": lambda: Take(a[f], rows),
                     "atom": lambda: RaggedTake(a[f], ao, a_start),
                     "grid": lambda: RaggedTake(a[f], go, g_start)}[kind]()
        kw["n_atoms"], kw["n_grid"] = n_atoms, n_grid
    return OnDiskDataset(**kw, source=source, store=store, mol_index=rows)


def open_npy_dir(path) -> OnDiskDataset:
    """Open a folder written by :func:`write_npy_dir` (memory-mapped, nothing read yet).

    Raises:
        DataError: no manifest, a missing, truncated or foreign ``.npy`` file, or counts
            that disagree with the manifest — naming the file and how to re-create it.
    """
    root = Path(path)
    fix = _FIX.format(root=root)
    man_path = root / MANIFEST_NAME
    try:
        man = json.loads(man_path.read_text())
    except FileNotFoundError:
        raise DataError(f"{man_path}: not found; {root} is not a complete dcmnet .npy "
                        f"dataset folder (an interrupted write?); {fix}.") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{man_path}: unreadable manifest ({exc}); {fix}.") from None
    if man.get("format") != NPYDIR_TAG:
        raise DataError(f"{man_path}: format {man.get('format')!r}, expected {NPYDIR_TAG!r}; "
                        f"{fix}.")
    try:
        counts = {"mol": int(man["n_molecules"]), "atom": int(man["n_atoms"]),
                  "grid": int(man["n_grid"])}
        specs = dict(man["fields"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{man_path}: manifest lacks {exc}; {fix}.") from None
    arrays = {f: _open_array(root / f"{f}.npy", specs.get(f), fix) for f in FIELDS}
    for f, (_, _, kind) in FIELDS.items():
        if arrays[f].shape[0] != counts[kind]:
            raise DataError(f"{root / (f + '.npy')}: {arrays[f].shape[0]} rows, the manifest "
                            f"says {counts[kind]}; {fix}.")
    store = _Store(root, arrays)
    if int(store.atom_offsets[-1]) != counts["atom"] or int(store.grid_offsets[-1]) != \
            counts["grid"]:
        raise DataError(f"{root}: the atom/grid counts (n_atoms.npy, n_grid.npy) disagree "
                        f"with Z.npy/grid.npy; {fix}.")
    ds = _view(store, None, str(root))
    ds.validate()
    return ds


def _open_array(file: Path, spec, fix: str) -> np.ndarray:
    if not file.is_file():
        raise DataError(f"{file}: missing from the dataset folder; {fix}.")
    try:
        arr = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{file}: unreadable or truncated .npy file ({exc}); {fix}.") from None
    if spec is None or str(arr.dtype.str) != spec["dtype"] or \
            list(arr.shape) != list(spec["shape"]):
        raise DataError(f"{file}: holds {arr.dtype.str} {tuple(arr.shape)}, the manifest says "
                        f"{spec}; {fix}.")
    if file.stat().st_size != arr.offset + arr.nbytes:
        raise DataError(f"{file}: {file.stat().st_size} bytes, expected {arr.offset + arr.nbytes}"
                        f" (truncated or padded); {fix}.")
    return arr
