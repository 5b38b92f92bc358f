"""Covalent connectivity: which atoms are bonded, which form one molecule or fragment.

Two criteria, both on ASE's covalent radii (``ase.data.covalent_radii``, Cordero et al.
2008) scaled by ``mult``:

* arrays (:func:`bond_matrix`, :func:`bond_pairs`, :func:`fragments`): atoms i, j bonded
  when ``|R_i − R_j| < mult (r_i + r_j)``, no periodic images; :func:`fragments` labels the
  atoms of one molecule record by fragment and :func:`check_fragments` is the loader's
  warning for records with more than one (the net charge is constrained per record only);
* ``ase.Atoms`` (:func:`neighbour_list`, :func:`find_molecules`, :func:`molecule_ids`): ASE's
  neighbour list with ``natural_cutoffs(atoms, mult)``, which honours the cell (minimum
  image in periodic cells) and adds its default skin (0.3 Å per atom) to each cutoff. A
  system's molecules are the connected components of that bond graph, unless
  ``atoms.arrays["mol_id"]`` gives them; :mod:`dcmnet.md.molecules` adds their net charges.
"""
from __future__ import annotations

import numpy as np
from ase.data import covalent_radii

from dcmnet.data.dataset import Dataset
from dcmnet.data.sanity import Finding, _radii
from dcmnet.errors import DataError

#: Bond criterion of :func:`fragments`: bonded when closer than this × the covalent radii sum.
#: 1.5 keeps randomly displaced conformers whole (the bundled data needs more than 1.3: a
#: stretched N-H) while fragments that are really apart (≥ 3 Å, see
#: ``generate.molecules.MIN_FRAGMENT_SEPARATION``) stay separate.
FRAGMENT_BOND_SCALE = 1.5
#: Bond criterion of :func:`find_molecules`: ``natural_cutoffs(atoms, mult=BOND_MULT)``.
BOND_MULT = 1.2


def relabel(labels) -> np.ndarray:
    """Labels renumbered 0 … M−1 in order of first appearance; (N,) int64."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv.reshape(-1)].astype(np.int64)


def bond_matrix(Z, R, mult: float) -> np.ndarray:
    """(N, N) bool: ``|R_i − R_j| < mult (r_i + r_j)`` (covalent radii; the diagonal is
    True). Z: (N,) atomic numbers; R: (N, 3) Å."""
    c = _radii(covalent_radii, Z) * mult
    d = np.linalg.norm(R[:, None] - R[None], axis=-1)
    return d < c[:, None] + c[None, :]


def bond_pairs(Z, R, mult: float = BOND_MULT) -> list[tuple[int, int]]:
    """Bonded pairs ``(i, j)``, ``i < j``, of :func:`bond_matrix` (in row order)."""
    Z = np.asarray(Z, int)
    R = np.asarray(R, float)
    i, j = np.nonzero(np.triu(bond_matrix(Z, R, mult), 1))
    return list(zip(i, j))


def fragments(Z, R, mult: float = FRAGMENT_BOND_SCALE) -> np.ndarray:
    """Fragment label (0, 1, ...) of every atom: the connected components of
    :func:`bond_matrix` (no ``Atoms`` built per molecule).

    Args:
        Z: (N,) atomic numbers; R: (N, 3) Å.
    Returns:
        (N,) int labels, fragments numbered in order of their first atom.
    """
    from scipy.sparse.csgraph import connected_components

    Z = np.asarray(Z, int)
    R = np.asarray(R, float)
    if len(Z) < 2:
        return np.zeros(len(Z), int)
    _, lab = connected_components(bond_matrix(Z, R, mult), directed=False)
    return relabel(lab).astype(int)


def check_fragments(ds: Dataset) -> list[Finding]:
    """Warning for molecules made of several disconnected fragments (:func:`fragments`).

    The net charge is constrained per molecule (record), so the model can move charge
    between fragments at any distance (a water far from an ion can carry part of its
    charge). dcmnet does not yet constrain each fragment: split such records or check the
    per-fragment charge sums of the predictions.
    """
    ao = ds.atom_offsets
    multi = [i for i in range(len(ds))
             if len(np.unique(fragments(ds.Z[ao[i]:ao[i + 1]], ds.R[ao[i]:ao[i + 1]]))) > 1]
    if not multi:
        return []
    i = multi[0]
    n = len(np.unique(fragments(ds.Z[ao[i]:ao[i + 1]], ds.R[ao[i]:ao[i + 1]])))
    return [Finding("warning", "fragments",
                    f"{len(multi)} of {len(ds)} molecules consist of disconnected fragments "
                    f"(e.g. molecule {i} ({ds.name[i]}): {n} fragments by covalent radii). "
                    "The net charge is constrained per molecule only, so charge can move "
                    "between fragments at any distance; the per-fragment net charges are not "
                    "constrained (see docs/troubleshooting.md, 'Several fragments in one "
                    "structure').")]


def neighbour_list(atoms, mult: float = BOND_MULT, bothways: bool = True):
    """ASE's neighbour list of ``atoms`` with ``natural_cutoffs(atoms, mult)`` (no self
    pairs; ``bothways`` False: each pair once)."""
    from ase.neighborlist import build_neighbor_list, natural_cutoffs

    return build_neighbor_list(atoms, cutoffs=natural_cutoffs(atoms, mult=mult),
                               self_interaction=False, bothways=bothways)


def find_molecules(atoms, mult: float = BOND_MULT) -> np.ndarray:
    """Molecule index of every atom from covalent connectivity.

    Args:
        atoms: ``ase.Atoms`` (its ``pbc`` and ``cell`` are honoured: bonds across the
            periodic boundary count).
        mult: factor on the covalent radii (ASE ``natural_cutoffs``).
    Returns:
        (N,) int64 molecule indices 0 … M−1, numbered in order of each molecule's first atom.
    """
    from scipy.sparse.csgraph import connected_components

    if len(atoms) == 1:
        return np.zeros(1, np.int64)
    nl = neighbour_list(atoms, mult)
    _, labels = connected_components(nl.get_connectivity_matrix(sparse=True), directed=False)
    return relabel(labels)


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
        return relabel(raw.astype(np.int64))
    return find_molecules(atoms, mult=mult)


__all__ = ["FRAGMENT_BOND_SCALE", "BOND_MULT", "relabel", "bond_matrix", "bond_pairs",
           "fragments", "check_fragments", "neighbour_list", "find_molecules", "molecule_ids"]
