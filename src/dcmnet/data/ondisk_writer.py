"""Writing the memory-mapped ``.npy`` dataset folder of :mod:`dcmnet.data.ondisk`.

Each field is streamed into its own ``.npy`` file behind a fixed 128-byte header that is
rewritten with the final shape at the end, so inputs are appended one at a time and the
whole data never sits in memory. The folder is written under a temporary name next to the
destination and renamed when complete (an older folder of that name is replaced only then).
"""
from __future__ import annotations

import os
import shutil
import struct
import uuid
from pathlib import Path
from typing import Iterable

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.ondisk import FIELDS, MANIFEST_NAME, NPYDIR_TAG, OnDiskDataset, is_npy_dir
from dcmnet.errors import DataError
from dcmnet.fileio import atomic_write_json

_HEADER_BYTES = 128


def _npy_header(dtype: np.dtype, shape: tuple) -> bytes:
    """A version-1.0 ``.npy`` header padded to a fixed 128 bytes (rewritten at the end)."""
    d = (f"{{'descr': {np.lib.format.dtype_to_descr(np.dtype(dtype))!r}, "
         f"'fortran_order': False, 'shape': {tuple(int(s) for s in shape)!r}, }}")
    n = _HEADER_BYTES - 10
    if len(d) >= n:
        raise DataError(f"npy header too long for shape {shape}")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", n) + (d.ljust(n - 1) + "\n").encode()


class NpyDirWriter:
    """Stream datasets into a new ``.npy`` folder; atomic (temporary folder, then rename).

    ``with NpyDirWriter(out) as w: w.append(ds1); w.append(ds2)`` — each appended dataset is
    validated and written at once, so memory holds one input at a time (plus the names).
    On an exception the temporary folder is removed and ``out`` is untouched.
    """

    def __init__(self, path, metadata: dict | None = None):
        self.path = Path(path)
        if self.path.exists() and not is_npy_dir(self.path):
            raise DataError(f"{self.path}: exists and is not a dcmnet .npy dataset folder; "
                            "choose another --out (it is never overwritten).")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        self.metadata = metadata or {}
        self.rows = {f: 0 for f in FIELDS}
        self.names: list[np.ndarray] = []
        self.files = {}
        for f, (dt, _, _) in FIELDS.items():
            if dt is not None:
                fh = open(self.tmp / f"{f}.npy", "wb")
                fh.write(b"\0" * _HEADER_BYTES)
                self.files[f] = fh

    def append(self, ds: Dataset) -> None:
        """Validate ``ds`` (any :class:`Dataset`, in memory) and append its molecules."""
        if isinstance(ds, OnDiskDataset):
            for _, part in ds.iter_chunks():
                self.append(part)
            return
        ds.validate()
        for f, (dt, _, _) in FIELDS.items():
            arr = np.asarray(getattr(ds, f))
            self.rows[f] += arr.shape[0]
            if dt is None:
                self.names.append(arr.astype(str))
            else:
                np.ascontiguousarray(arr, dtype=np.dtype(dt)).tofile(self.files[f])

    def close(self) -> Path:
        """Finish the headers, write names and manifest, and rename into place."""
        specs = {}
        for f, (dt, trail, _) in FIELDS.items():
            shape = (self.rows[f],) + trail
            if dt is None:
                names = (np.concatenate(self.names) if self.names
                         else np.zeros(0, dtype="<U1"))
                np.save(self.tmp / f"{f}.npy", names, allow_pickle=False)
                dt = names.dtype.str
            else:
                fh = self.files.pop(f)
                fh.seek(0)
                fh.write(_npy_header(np.dtype(dt), shape))
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
            specs[f] = {"dtype": np.dtype(dt).str, "shape": list(shape)}
        man = {"format": NPYDIR_TAG, "n_molecules": self.rows["n_atoms"],
               "n_atoms": self.rows["Z"], "n_grid": self.rows["grid"], "fields": specs,
               "units": "lengths Å, charges e, ESP Hartree/e, dipoles e·Å about the centre "
                        "of mass", "metadata": self.metadata}
        atomic_write_json(self.tmp / MANIFEST_NAME, man, indent=1)
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(self.path, old)
        os.rename(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary folder."""
        for fh in self.files.values():
            fh.close()
        self.files = {}
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write_npy_dir(datasets: Dataset | Iterable[Dataset], path,
                  metadata: dict | None = None) -> Path:
    """Write one dataset, or a stream of them (joined in order), as a ``.npy`` folder.

    Args:
        datasets: a :class:`Dataset` or an iterable of them (e.g. a generator reading one
            file at a time, so the whole data never sits in memory).
        path: the folder to create (replaced only when the new one is complete).
        metadata: JSON-able dict stored in the manifest.
    Returns:
        The folder written.
    Raises:
        DataError: a dataset fails validation (nothing is left behind), or ``path`` is
            something other than a dcmnet ``.npy`` folder.
    """
    if isinstance(datasets, Dataset):
        datasets = [datasets]
    with NpyDirWriter(path, metadata) as w:
        n = 0
        for ds in datasets:
            w.append(ds)
            n += 1
        if n == 0:
            raise DataError(f"{path}: no molecules to write.")
    return Path(path)
