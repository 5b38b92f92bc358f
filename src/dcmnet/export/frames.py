"""Predicted charge sites of one conformation and local axis frames for MD exports.

Both exports (:mod:`dcmnet.export.openmm`, :mod:`dcmnet.export.charmm`) store every charge
site in a local frame of three atoms of its molecule, so the sites follow the molecule's
rigid motion. The charges and local coordinates are those of the *given* conformation (a
fixed-geometry DCM, the way MDCM models are used in CHARMM); conformation-dependent charges
need :class:`dcmnet.md.calculator.DCMNetCalculator`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dcmnet.errors import DataError

__all__ = ["Prediction", "predict_structure", "frame_atoms", "COLLINEAR_SIN", "SITE_TOL"]

#: Two bonds span a frame only when the sine of their angle exceeds this (about 11.5°).
COLLINEAR_SIN = 0.2
#: Sites closer than this (Å) to a monatomic molecule's nucleus / a linear molecule's axis
#: count as on it.
SITE_TOL = 1e-4


@dataclasses.dataclass
class Prediction:
    """DCM-net sites of one structure.

    Attributes:
        symbols: (N,) element symbols; Z: (N,) atomic numbers; R: (N, 3) positions, Å.
        mol: (N,) molecule index 0 … M−1; mol_charges: (M,) e.
        charges: (N, n_dcm) e; positions: (N, n_dcm, 3) Å (absolute).
        name: a short name (file stem) for residue and file names.
    """

    symbols: list
    Z: np.ndarray
    R: np.ndarray
    mol: np.ndarray
    mol_charges: np.ndarray
    charges: np.ndarray
    positions: np.ndarray
    name: str = "MOL"


def _calculator(model, charge=None):
    from dcmnet.md.calculator import DCMNetCalculator

    if isinstance(model, DCMNetCalculator):
        return model
    if isinstance(model, tuple) and len(model) == 2:
        return DCMNetCalculator(model=model[0], params=model[1], charge=charge)
    return DCMNetCalculator(model, charge=charge)


def predict_structure(model, atoms, charge=None, name: str | None = None) -> Prediction:
    """Run DCM-net on ``atoms`` (non-periodic; one or several molecules).

    Args:
        model: an experiment folder or shipped model name, a
            :class:`~dcmnet.md.calculator.DCMNetCalculator`, or a ``(DCMNet, params)`` tuple.
        atoms: ``ase.Atoms`` (molecules from ``arrays["mol_id"]`` or connectivity).
        charge: net charge(s), see :func:`dcmnet.md.molecules.molecule_charges`.
    Raises:
        CheckpointError, DataError: as :class:`~dcmnet.md.calculator.DCMNetCalculator`.
    """
    calc = _calculator(model, charge)
    at = atoms.copy()
    at.pbc = False
    at.calc = calc
    q = calc.get_distributed_charges(at).copy()
    x = calc.get_charge_positions(at).copy()
    src = str(atoms.info.get("source", "")).split("@")[0]
    nm = name or (Path(src).stem if src else "") or at.get_chemical_formula()
    return Prediction(symbols=at.get_chemical_symbols(), Z=at.numbers.copy(),
                      R=at.positions.copy(), mol=calc.results["mol_id"].copy(),
                      mol_charges=calc.results["mol_charges"].copy(), charges=q,
                      positions=x, name=nm)


def _sin(u, v) -> float:
    return float(np.linalg.norm(np.cross(u / np.linalg.norm(u), v / np.linalg.norm(v))))


def frame_atoms(R: np.ndarray, atom: int, members: np.ndarray) -> tuple[int, int] | None:
    """Two further atoms ``(b, c)`` of the molecule spanning a frame at ``atom``.

    ``b`` is the atom nearest to ``atom``; ``c`` the next nearest atom whose bond from
    ``atom`` makes an angle with ``atom→b`` whose sine exceeds :data:`COLLINEAR_SIN`
    (sites then lie in a well-defined right-handed frame). Returns None for a molecule of
    fewer than three atoms or a linear one.
    """
    others = [int(j) for j in members if j != atom]
    if len(others) < 2:
        return None
    d = np.linalg.norm(R[others] - R[atom], axis=1)
    order = [others[k] for k in np.argsort(d, kind="stable")]
    b = order[0]
    for c in order[1:]:
        if _sin(R[b] - R[atom], R[c] - R[atom]) > COLLINEAR_SIN:
            return b, c
    return None


def check_linear_sites(pred: Prediction, m: int) -> tuple[int, int]:
    """For a molecule without a three-atom frame: the two atoms ``(a, b)`` defining its axis
    (the two farthest apart; a monatomic molecule gives ``(a, a)``).

    Raises:
        DataError: a site lies farther than :data:`SITE_TOL` from the axis (or, monatomic,
            from the nucleus), which no frame of the molecule's atoms can express.
    """
    at = np.flatnonzero(pred.mol == m)
    x = pred.positions[at].reshape(-1, 3)
    if len(at) == 1:
        off = float(np.abs(np.linalg.norm(x - pred.R[at[0]], axis=1)).max())
        if off > SITE_TOL:
            raise DataError(
                f"molecule {m} ({pred.symbols[at[0]]}, one atom): its charge sites lie "
                f"{off:.2e} Å from the nucleus; a single atom defines no axis frame, so "
                "they cannot be exported (only sites on the nucleus can).")
        return int(at[0]), int(at[0])
    dist = np.linalg.norm(pred.R[at][:, None] - pred.R[at][None], axis=-1)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    a, b = int(at[i]), int(at[j])
    u = (pred.R[b] - pred.R[a]) / np.linalg.norm(pred.R[b] - pred.R[a])
    rel = x - pred.R[a]
    off = float(np.linalg.norm(rel - np.outer(rel @ u, u), axis=1).max())
    if off > SITE_TOL:
        names = "".join(pred.symbols[k] for k in at)
        raise DataError(
            f"molecule {m} ({names}) is linear (or has fewer than three atoms): no frame of "
            f"three of its atoms exists, and its charge sites lie up to {off:.2e} Å off the "
            f"molecular axis (tolerance {SITE_TOL:g} Å), so their position around the axis "
            "cannot be expressed. Export a bent conformation, or use DCMNetCalculator.")
    return a, b
