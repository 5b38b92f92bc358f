"""Reader and writer for the group's "mmml-style" padded NPZ files.

Layout (``n`` molecules, ``N`` padded atom slots, ``G`` padded grid slots):

=================  ===============  ==============  ============================================
key                shape            unit            meaning
=================  ===============  ==============  ============================================
``R``              (n, N, 3)        Å               positions, zero-padded
``Z``              (n, N)                           atomic numbers, **0 marks a padded slot**
``N``              (n,)                             real atoms per molecule (optional)
``esp``            (n, G)           Hartree/e       reference ESP, zero-padded
``vdw_surface``    (n, G, 3)        Å               ESP points (alias ``esp_grid``)
``n_grid``         (n,)                             real grid points per molecule (optional)
``mono``           (n, N)           e               reference atomic charges (optional)
``Dxyz``           (n, 3)           e·Bohr          QM dipole, atomic units (optional)
``com``            (n, 3)           Å               origin of ``Dxyz`` (optional)
``Q``              (n,)             e               net charge (optional)
``name``           (n,)             str             molecule names (optional, dcmnet extension)
=================  ===============  ==============  ============================================

Rules applied by :func:`read_mmml_npz` (each decision is written to the returned report):

* Padded atoms are recognised by ``Z == 0`` only, never by position: a real atom may sit
  at the origin. ``N`` must equal the number of ``Z > 0`` entries of each molecule; when
  ``N`` is missing it is computed from ``Z > 0``.
* The first ``n_grid[i]`` rows of ``esp``/``vdw_surface`` are real. When ``n_grid`` is
  missing it is computed as the number of rows up to the last row that is non-zero in
  ``vdw_surface`` or ``esp`` (trailing all-zero rows are padding).
* Net charge: from ``Q`` when present, else the rounded sum of ``mono`` over real atoms,
  else 0 (neutral).
* ``mono`` absent -> ``has_mono`` False (never zero-filled and trained on). A molecule
  whose real-atom ``mono`` entries are all NaN has no reference charges (this is how
  :func:`write_mmml_npz` stores a partly-labelled dataset); a partial NaN is an error.
* ``Dxyz`` is in e·Bohr and converted with :data:`dcmnet.units.EBOHR_TO_EANGSTROM`. Its
  origin is taken to be ``com`` when that key is present, otherwise it is *assumed* to be
  the centre of mass. dcmnet stores dipoles about the mass-weighted centre of mass ``c``
  (ASE masses); when ``com`` differs from ``c`` the dipole is moved,
  ``mu_c = mu_com - Q (c - com)`` — a no-op for neutral molecules, whose dipole does not
  depend on the origin. For charged molecules without ``com`` the origin is unknown and a
  warning is issued. An all-NaN ``Dxyz`` row means "no reference dipole".
* Other keys are ignored with a note, never an error. Nothing is ever unpickled.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset, open_npz, read_array
from dcmnet.data.mmml_build import _build
from dcmnet.errors import DataError
from dcmnet.fileio import atomic_path
from dcmnet.units import EBOHR_TO_EANGSTROM

#: Keys this reader understands (``esp_grid`` is an alias of ``vdw_surface``).
KNOWN_KEYS = ("R", "Z", "N", "esp", "vdw_surface", "esp_grid", "n_grid", "mono", "Dxyz",
              "com", "Q", "name")
#: Keys an mmml-style file must have (besides one of ``vdw_surface``/``esp_grid``).
REQUIRED_KEYS = ("R", "Z", "esp")


def read_mmml_npz(path: str | os.PathLike) -> tuple[Dataset, list[str]]:
    """Read an mmml-style padded NPZ into a canonical :class:`Dataset`.

    Args:
        path: the ``.npz`` file (read with ``allow_pickle=False``).

    Returns:
        ``(dataset, report)``: the ragged dataset (``source`` = the path) and a list of
        human-readable lines saying what was detected and decided (net-charge source,
        computed counts, dipole origin, ignored keys, warnings).

    Raises:
        DataError: missing/pickled/inconsistent fields, NaN/Inf in real entries, ``N`` not
            matching ``Z > 0``; the message names the file, field, molecule and the fix.
    """
    path = Path(path)
    tag = path.name
    report: list[str] = []

    def note(line: str) -> None:
        report.append(f"{tag}: {line}")

    def warn(line: str) -> None:
        report.append(f"{tag}: WARNING: {line}")
        warnings.warn(f"{path}: {line}", UserWarning, stacklevel=4)

    with open_npz(path) as z:
        files = list(z.files)
        missing = [k for k in REQUIRED_KEYS if k not in files]
        grid_key = "vdw_surface" if "vdw_surface" in files else (
            "esp_grid" if "esp_grid" in files else None)
        if grid_key is None:
            missing.append("vdw_surface")
        if missing:
            raise DataError(
                f"{path}: not an mmml-style ESP file: missing key(s) {missing} (found "
                f"{sorted(files)}). An mmml file needs 'R' (n, N, 3) Å, 'Z' (n, N), "
                "'esp' (n, G) Hartree/e and 'vdw_surface' (n, G, 3) Å.")
        if grid_key == "esp_grid":
            note("ESP points read from 'esp_grid' (alias of 'vdw_surface').")
        elif "esp_grid" in files:
            note("both 'vdw_surface' and 'esp_grid' present; used 'vdw_surface', ignored "
                 "'esp_grid'.")
        extra = [k for k in files if k not in KNOWN_KEYS]
        if extra:
            note(f"ignored extra key(s) {sorted(extra)} (not used by dcmnet).")
        raw = {k: read_array(z, k, path) for k in KNOWN_KEYS
               if k in files and k != "esp_grid"}
        if grid_key == "esp_grid":
            raw["vdw_surface"] = read_array(z, "esp_grid", path)
    ds = _build(path, raw, note, warn)
    report.insert(0, report.pop())  # the summary line (written last) goes first
    return ds, report


def write_mmml_npz(dataset: Dataset, path: str | os.PathLike, compressed: bool = False) -> Path:
    """Write ``dataset`` atomically in the mmml-style padded layout.

    Keys written: ``R``, ``Z`` (0 = padding), ``N``, ``esp``, ``vdw_surface``, ``n_grid``,
    ``Q`` (net charge), ``com`` (mass-weighted centre of mass, Å), ``name``, and when any
    molecule has them ``mono`` (e; all-NaN rows for molecules without reference charges) and
    ``Dxyz`` (e·Bohr about ``com``; all-NaN rows for molecules without a dipole).

    Returns:
        The path written (temporary file + :func:`os.replace`).
    """
    path = Path(path)
    M = len(dataset)
    A = int(dataset.n_atoms.max())
    G = int(dataset.n_grid.max())
    amask = np.arange(A)[None, :] < dataset.n_atoms[:, None]
    gmask = np.arange(G)[None, :] < dataset.n_grid[:, None]
    R = np.zeros((M, A, 3))
    R[amask] = dataset.R
    Z = np.zeros((M, A), np.int32)
    Z[amask] = dataset.Z
    esp = np.zeros((M, G), np.float32)
    esp[gmask] = dataset.esp
    vdw = np.zeros((M, G, 3), np.float32)
    vdw[gmask] = dataset.grid
    com = dataset.centre_of_mass()
    arrays = {"R": R, "Z": Z, "N": dataset.n_atoms.astype(np.int32), "esp": esp,
              "vdw_surface": vdw, "n_grid": dataset.n_grid.astype(np.int32),
              "Q": np.asarray(dataset.net_charge, np.float64), "com": com,
              "name": np.asarray(dataset.name).astype(str)}
    if dataset.has_mono.any():
        mono = np.zeros((M, A))
        mono[amask] = dataset.mono
        mono[~dataset.has_mono] = np.where(amask[~dataset.has_mono], np.nan, 0.0)
        arrays["mono"] = mono
    if dataset.has_dipole.any():
        D = np.asarray(dataset.dipole, np.float64) / EBOHR_TO_EANGSTROM
        D[~dataset.has_dipole] = np.nan
        arrays["Dxyz"] = D
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
    return path
