"""Molecules made of several disconnected fragments: covalent-radius connectivity.

:func:`fragments` labels the atoms of one molecule by fragment; :func:`check_fragments` is
the loader's warning for records with more than one (the net charge is constrained per
record only).
"""
from __future__ import annotations

import numpy as np
from ase.data import covalent_radii

from dcmnet.data.dataset import Dataset
from dcmnet.data.sanity import Finding, _radii

#: Bond criterion of :func:`fragments`: bonded when closer than this × the covalent radii sum.
#: 1.5 keeps randomly displaced conformers whole (the bundled data needs more than 1.3: a
#: stretched N-H) while fragments that are really apart (≥ 3 Å, see
#: ``generate.molecules.MIN_FRAGMENT_SEPARATION``) stay separate.
FRAGMENT_BOND_SCALE = 1.5


def fragments(Z, R, mult: float = FRAGMENT_BOND_SCALE) -> np.ndarray:
    """Fragment label (0, 1, ...) of every atom: covalent-radius connectivity, atoms i, j
    bonded when ``|R_i − R_j| < c_i + c_j`` with ``c`` the cutoffs of
    ``ase.neighborlist.natural_cutoffs`` (``ase.data.covalent_radii``, Cordero et al. 2008,
    × ``mult``; taken from the table directly, which is what that function returns, to
    avoid building an ``Atoms`` per molecule).

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
    c = _radii(covalent_radii, Z) * mult
    d = np.linalg.norm(R[:, None] - R[None], axis=-1)
    _, lab = connected_components(d < c[:, None] + c[None, :], directed=False)
    _, first = np.unique(lab, return_index=True)
    order = np.argsort(np.argsort(first))
    return order[lab]


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


__all__ = ["FRAGMENT_BOND_SCALE", "fragments", "check_fragments"]
