"""The predictions of :class:`~dcmnet.inference.predict.Predictor` and their files.

:class:`PredictionResult` holds the ragged per-frame charges, sites, dipoles and ESPs;
:func:`write_predictions` writes them atomically (extended XYZ, JSON, CSV of sites, the
``dcmnet-charges-v1`` text file).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from dcmnet.data.dataset import segment_offsets
from dcmnet.units import EANGSTROM_TO_DEBYE

#: Output files of :func:`write_predictions`.
OUTPUT_FORMATS = ("extxyz", "json", "csv", "dcm")


@dataclasses.dataclass
class PredictionResult:
    """Predictions for F structures, stored ragged (flat per-atom arrays + counts).

    Attributes:
        n_atoms: (F,) atoms per frame.
        Z: (sum N,) atomic numbers; ``R``: (sum N, 3) positions, Å.
        net_charge: (F,) e.
        charges: (sum N, n_dcm) e; ``positions``: (sum N, n_dcm, 3) absolute, Å.
        dipole: (F, 3) e·Å about the centre of mass; ``com``: (F, 3) Å.
        n_grid: (F,) ESP points per frame (0 without ESP); ``grid``: (sum G, 3) Å;
            ``esp``: (sum G,) Hartree/e.
        seconds: wall time of prediction (with compilation and grid generation), s.
        source: the model's experiment folder (or a description).
    """

    n_atoms: np.ndarray
    Z: np.ndarray
    R: np.ndarray
    net_charge: np.ndarray
    charges: np.ndarray
    positions: np.ndarray
    dipole: np.ndarray
    com: np.ndarray
    n_grid: np.ndarray
    grid: np.ndarray
    esp: np.ndarray
    seconds: float = float("nan")
    source: str = ""

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def atom_offsets(self) -> np.ndarray:
        """(M+1,) start offsets of each frame in the per-atom arrays."""
        return segment_offsets(self.n_atoms)

    @property
    def grid_offsets(self) -> np.ndarray:
        """(M+1,) start offsets of each frame in the per-grid-point arrays."""
        return segment_offsets(self.n_grid)

    @property
    def atom_charges(self) -> np.ndarray:
        """(sum N,) charge of each atom, e (sum over its sites)."""
        return self.charges.sum(axis=1)

    @property
    def dipole_debye(self) -> np.ndarray:
        """(F, 3) dipole in Debye."""
        return self.dipole * EANGSTROM_TO_DEBYE

    def frame(self, k: int) -> dict:
        """Frame ``k`` as a dict: ``symbols``, ``Z``, ``R``, ``net_charge``, ``charges``,
        ``positions``, ``atom_charges``, ``dipole`` (e·Å), ``dipole_debye``, ``grid``,
        ``esp`` (Hartree/e; empty without ESP)."""
        from ase.data import chemical_symbols

        ao, go = self.atom_offsets, self.grid_offsets
        a = slice(ao[k], ao[k + 1])
        g = slice(go[k], go[k + 1])
        return {"symbols": [chemical_symbols[z] for z in self.Z[a]], "Z": self.Z[a],
                "R": self.R[a], "net_charge": float(self.net_charge[k]),
                "charges": self.charges[a], "positions": self.positions[a],
                "atom_charges": self.charges[a].sum(axis=1), "dipole": self.dipole[k],
                "dipole_debye": self.dipole[k] * EANGSTROM_TO_DEBYE, "grid": self.grid[g],
                "esp": self.esp[g]}

    def frames(self):
        """Iterate over :meth:`frame` dicts."""
        for k in range(len(self)):
            yield self.frame(k)


def write_predictions(result: PredictionResult, out_dir, formats: Sequence[str] = OUTPUT_FORMATS,
                      stem: str = "predictions") -> list[Path]:
    """Write predictions under ``out_dir`` (atomically, one file per format).

    Files (``stem`` = ``predictions`` by default):

    * ``extxyz``: ``stem.extxyz``, atoms plus charge sites (``X``), see
      :func:`dcmnet.export.write_extxyz`;
    * ``json``: ``stem.json``, per frame symbols, charges, site positions, atom charges,
      dipole (e·Å and D), net charge; units in the header;
    * ``csv``: ``stem_sites.csv`` (one row per site) and ``stem_frames.csv`` (per frame
      net charge and dipole in D);
    * ``dcm``: ``stem.dcm``, the plain-text charges file for MD codes
      (:func:`dcmnet.export.write_charges_file`);
    * with ESP: ``stem_esp.npz`` (``n_grid`` (F,), ``grid`` (sum G, 3) Å, ``esp``
      (sum G,) Hartree/e, ``esp_kcal_mol_e``), no pickles.
    Raises:
        ValueError: an unknown format.
    """
    from dcmnet.fileio.tables import (
        atomic_path,
        write_charges_file,
        write_csv,
        write_extxyz,
        write_json,
        write_sites_csv,
    )
    from dcmnet.units import HARTREE_TO_KCAL_MOL

    bad = [f for f in formats if f not in OUTPUT_FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad}; choose from {', '.join(OUTPUT_FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    if "extxyz" in formats:
        files.append(write_extxyz(out / f"{stem}.extxyz", result.frames()))
    if "json" in formats:
        frames = [{"frame": k, "symbols": f["symbols"], "net_charge": f["net_charge"],
                   "atom_charges": f["atom_charges"], "charges": f["charges"],
                   "positions": f["positions"], "dipole_eA": f["dipole"],
                   "dipole_debye": f["dipole_debye"]}
                  for k, f in enumerate(result.frames())]
        files.append(write_json({
            "model": result.source, "n_frames": len(result), "n_dcm": int(result.charges.shape[1]),
            "units": {"charges": "e", "positions": "Angstrom", "dipole_eA": "e*Angstrom",
                      "dipole_debye": "Debye", "dipole_origin": "centre of mass"},
            "frames": frames}, out / f"{stem}.json", indent=None))
    if "csv" in formats:
        files.append(write_sites_csv(out / f"{stem}_sites.csv", result.frames()))
        d = result.dipole_debye
        files.append(write_csv([{"frame": k, "n_atoms": int(result.n_atoms[k]),
                                 "net_charge_e": float(result.net_charge[k]),
                                 "dipole_x_D": d[k, 0], "dipole_y_D": d[k, 1],
                                 "dipole_z_D": d[k, 2], "dipole_norm_D": float(np.linalg.norm(d[k]))}
                                for k in range(len(result))], out / f"{stem}_frames.csv"))
    if "dcm" in formats:
        files.append(write_charges_file(out / f"{stem}.dcm", result.frames()))
    if result.n_grid.sum() > 0:
        path = out / f"{stem}_esp.npz"
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, n_grid=result.n_grid, grid=result.grid, esp=result.esp,
                     esp_kcal_mol_e=result.esp * HARTREE_TO_KCAL_MOL)
        files.append(path)
    return files


__all__ = ["PredictionResult", "write_predictions", "OUTPUT_FORMATS"]
