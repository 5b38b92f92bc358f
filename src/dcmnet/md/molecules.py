"""Which atoms form which molecule, and each molecule's net charge.

DCM-net predicts the charges of one molecule at a time (its messages run between the atoms
of a molecule), and the electrostatic energy of :mod:`dcmnet.md.energy` excludes the pairs
inside a molecule. A system (an ``ase.Atoms`` with one or several molecules) therefore needs

* a molecule index per atom: ``atoms.arrays["mol_id"]`` when present (any integers, one
  value per molecule), else covalent connectivity (:func:`dcmnet.data.connectivity.find_molecules`,
  ASE's neighbour list on ``natural_cutoffs(atoms, mult)``; minimum image in periodic
  cells): a molecule is a connected component of the bond graph (``find_molecules``,
  ``molecule_ids`` and ``BOND_MULT`` live in :mod:`dcmnet.data.connectivity`; they are
  re-exported here);
* a net charge per molecule (e), see :func:`molecule_charges`.
"""
from __future__ import annotations

import numpy as np

from dcmnet.data.connectivity import BOND_MULT, find_molecules, molecule_ids
from dcmnet.errors import DataError

__all__ = ["find_molecules", "molecule_ids", "molecule_charges", "unwrap_molecules",
           "BOND_MULT"]


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
