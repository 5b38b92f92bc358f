"""Which atoms form which molecule, and each molecule's net charge.

DCM-net predicts the charges of one molecule at a time (its messages run between the atoms
of a molecule), and the electrostatic energy of :mod:`dcmnet.md.energy` excludes the pairs
inside a molecule. A system (an ``ase.Atoms`` with one or several molecules) therefore needs

* a molecule index per atom: ``atoms.arrays["mol_id"]`` when present (any integers, one
  value per molecule), else covalent connectivity: two atoms are bonded when their distance
  is below ``mult`` × the sum of their covalent radii (ASE's ``natural_cutoffs``; minimum
  image in periodic cells), and a molecule is a connected component of the bond graph;
* a net charge per molecule (e), see :func:`molecule_charges`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from dcmnet.errors import DataError

__all__ = ["find_molecules", "molecule_ids", "molecule_charges", "unwrap_molecules",
           "BOND_MULT"]

#: Bond criterion of :func:`find_molecules`: distance < BOND_MULT × (r_cov,i + r_cov,j).
BOND_MULT = 1.2


def find_molecules(atoms, mult: float = BOND_MULT) -> np.ndarray:
    """Molecule index of every atom from covalent connectivity.

    Args:
        atoms: ``ase.Atoms`` (its ``pbc`` and ``cell`` are honoured: bonds across the
            periodic boundary count).
        mult: factor on the sum of the covalent radii (ASE ``natural_cutoffs``).
    Returns:
        (N,) int64 molecule indices 0 … M−1, numbered in order of each molecule's first atom.
    """
    from ase.neighborlist import build_neighbor_list, natural_cutoffs
    from scipy.sparse.csgraph import connected_components

    if len(atoms) == 1:
        return np.zeros(1, np.int64)
    nl = build_neighbor_list(atoms, cutoffs=natural_cutoffs(atoms, mult=mult),
                             self_interaction=False, bothways=True)
    _, labels = connected_components(nl.get_connectivity_matrix(sparse=True), directed=False)
    return _relabel(labels)


def _relabel(labels) -> np.ndarray:
    """Labels renumbered 0 … M−1 in order of first appearance."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv.reshape(-1)].astype(np.int64)


def molecule_ids(atoms, mult: float = BOND_MULT) -> np.ndarray:
    """Molecule index per atom: ``atoms.arrays["mol_id"]`` if present, else
    :func:`find_molecules`.

    Returns:
        (N,) int64, values 0 … M−1 in order of each molecule's first atom.
    Raises:
        DataError: ``mol_id`` not one integer per atom.
    """
    if "mol_id" in atoms.arrays:
        raw = np.asarray(atoms.arrays["mol_id"])
        if raw.shape != (len(atoms),) or not np.all(np.isfinite(raw.astype(float))) \
                or not np.all(raw == np.round(raw.astype(float))):
            raise DataError(f"atoms.arrays['mol_id'] must hold one integer per atom "
                            f"(shape ({len(atoms)},)), got shape {raw.shape} dtype {raw.dtype}; "
                            "set it with atoms.new_array('mol_id', ids) or delete it to find "
                            "molecules by connectivity.")
        return _relabel(raw.astype(np.int64))
    return find_molecules(atoms, mult=mult)


def molecule_charges(atoms, mol: np.ndarray, charge=None) -> np.ndarray:
    """Net charge of every molecule, e.

    Order of precedence:

    1. ``charge``: a sequence of M values (one per molecule), or one number when the
       system holds one molecule (or is 0: every molecule neutral);
    2. ``atoms.info["mol_charges"]`` (M values);
    3. one molecule: :func:`dcmnet.inference.structures.structure_charge`
       (``atoms.info["charge"]`` ...);
    4. several molecules: the rounded sum of ASE's initial charges of each molecule
       (formal charges), 0 without them; a total in ``atoms.info["charge"]`` must agree.

    Args:
        atoms: the system; mol: (N,) molecule indices 0 … M−1 (:func:`molecule_ids`).
    Returns:
        (M,) float64.
    Raises:
        DataError: the wrong number of charges, or a total that does not match.
    """
    from dcmnet.inference.structures import structure_charge

    mol = np.asarray(mol)
    M = int(mol.max()) + 1 if mol.size else 0
    given = charge if charge is not None else atoms.info.get("mol_charges")
    if given is not None:
        arr = np.atleast_1d(np.asarray(given, np.float64))
        if arr.size == 1 and M > 1:
            if arr[0] != 0.0:
                raise DataError(
                    f"a single net charge ({arr[0]:g} e) for a system of {M} molecules is "
                    "ambiguous; give one charge per molecule (charge=[...] or "
                    "atoms.info['mol_charges']) in the order of the molecules' first atoms.")
            arr = np.zeros(M)
        if arr.shape != (M,):
            raise DataError(f"{arr.size} net charges given for {M} molecules (found from "
                            f"{'mol_id' if 'mol_id' in atoms.arrays else 'connectivity'}); "
                            "give one per molecule, in the order of their first atoms.")
        return arr
    if M == 1:
        return np.array([structure_charge(atoms)])
    q0 = atoms.get_initial_charges()
    per = np.round(np.bincount(mol, weights=q0, minlength=M)) if q0.size else np.zeros(M)
    for key in ("charge", "net_charge", "total_charge"):
        if key in atoms.info and not np.isclose(float(atoms.info[key]), per.sum()):
            raise DataError(
                f"atoms.info['{key}'] = {atoms.info[key]} but the {M} molecules' charges "
                f"(rounded initial charges per molecule) sum to {per.sum():g}; give "
                "atoms.info['mol_charges'] (one value per molecule).")
    return per


def unwrap_molecules(positions, cell, pbc, mol: np.ndarray) -> np.ndarray:
    """Integer cell shifts that make every molecule whole in a periodic cell.

    Each atom is moved to the periodic image nearest to the first atom of its molecule, so a
    molecule must be smaller than half the cell width (true for any molecule in a cell that
    respects the minimum-image cutoff).

    Args:
        positions: (N, 3) Å; cell: (3, 3) Å (rows are the cell vectors); pbc: (3,) bool;
        mol: (N,) molecule indices.
    Returns:
        (N, 3) integer shifts ``n``; the whole molecule sits at ``positions + n @ cell``.
    """
    positions = np.asarray(positions, np.float64)
    pbc = np.asarray(pbc, bool)
    if not pbc.any():
        return np.zeros((len(positions), 3), np.int64)
    cell = np.asarray(cell, np.float64)
    _, first = np.unique(mol, return_index=True)
    anchor = positions[first][mol]
    frac = (positions - anchor) @ np.linalg.inv(cell)
    return np.where(pbc, -np.round(frac), 0).astype(np.int64)


def check_ids(mol: Sequence[int], n_atoms: int) -> np.ndarray:
    """``mol`` as (N,) int64 indices 0 … M−1 (relabelled); raises DataError on a bad shape."""
    mol = np.asarray(mol)
    if mol.shape != (n_atoms,):
        raise DataError(f"molecule indices must have shape ({n_atoms},), got {mol.shape}")
    return _relabel(mol.astype(np.int64))
