"""Per-point and per-molecule helpers of the analysis: closest atom, vdW-scaled distance,
dipoles and ESP of atom-centred charges, labels of the distance shells.

Units: distances in Å, charges in e, ESP in Hartree/e, dipoles in e·Å about the centre of
mass.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from dcmnet.data.dataset import Dataset


def _closest_atoms(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(sum n_grid,) global index of each point's closest atom and vdW-scaled distance."""
    from ase.data import vdw_radii

    ao, go = data.atom_offsets, data.grid_offsets
    nearest = np.zeros(int(go[-1]), dtype=np.int64)
    ratio = np.zeros(int(go[-1]))
    radii = np.asarray(vdw_radii, dtype=np.float64)[data.Z]
    for i in range(len(data)):
        R = data.R[ao[i]:ao[i + 1]]
        g = np.asarray(data.grid[go[i]:go[i + 1]], np.float64)
        d = np.linalg.norm(g[:, None, :] - R[None, :, :], axis=-1)
        nearest[go[i]:go[i + 1]] = ao[i] + np.argmin(d, axis=1)
        r = radii[ao[i]:ao[i + 1]]
        with np.errstate(invalid="ignore"):
            scaled = np.where(np.isfinite(r)[None, :], d / r[None, :], np.inf)
        ratio[go[i]:go[i + 1]] = scaled.min(axis=1)
    return nearest, ratio


def _dipoles(data: Dataset, q_atoms: np.ndarray) -> np.ndarray:
    """(M, 3) dipole (e·Å, about the centre of mass) of atom-centred charges (sum n_atoms,)."""
    com = data.centre_of_mass()
    seg = np.repeat(np.arange(len(data)), data.n_atoms)
    rel = data.R - com[seg]
    return np.stack([np.bincount(seg, weights=q_atoms * rel[:, k], minlength=len(data))
                     for k in range(3)], axis=1)


def _atom_esp(data: Dataset, q_atoms: np.ndarray) -> np.ndarray:
    """(sum n_grid,) ESP in Hartree/e of atom-centred charges."""
    from dcmnet.fitting import monopole_esp

    ao, go = data.atom_offsets, data.grid_offsets
    out = np.zeros(int(go[-1]))
    for i in range(len(data)):
        out[go[i]:go[i + 1]] = monopole_esp(data.R[ao[i]:ao[i + 1]], q_atoms[ao[i]:ao[i + 1]],
                                            data.grid[go[i]:go[i + 1]])
    return out


def _shell_labels(edges: Sequence[float]) -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= 0:
            labels.append(f"<{hi:g}")
        elif not math.isfinite(hi):
            labels.append(f">={lo:g}")
        else:
            labels.append(f"{lo:g}-{hi:g}")
    return labels
