"""Per-fragment net charges: a structure made of several disconnected fragments.

DCM-net constrains the charges of each *molecule record* to its net charge
(:mod:`dcmnet.model`). When one record holds several fragments (a molecule and a distant
ion, a dimer, an ion pair), that single constraint lets charge move between the fragments
at any distance. :func:`constrain_fragment_charges` applies the same projection per
fragment, ``q_ik ← q_ik − (Σ_{j∈f} Σ_k q_jk − Q_f) / (n_f · n_dcm)`` for every atom ``i`` of
fragment ``f`` (``n_f`` real atoms), so each fragment sums to its own charge ``Q_f``
exactly. Applied to the model's output it equals projecting the raw charges per fragment
directly (the per-molecule shift cancels), so it needs no change to the network.

Fragments are found by covalent connectivity (:func:`dcmnet.data.connectivity.fragments`).
Their charges come from the caller (``--fragment-charges`` of ``dcmnet predict``), from
``atoms.info["fragment_charges"]`` or from per-atom formal charges
(``atoms.arrays["formal_charges"]``, filled from SDF/MOL files by
:func:`dcmnet.inference.predict.read_structures`): see :func:`fragment_charges_for`.
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from dcmnet.errors import DataError

__all__ = ["constrain_fragment_charges", "fragment_charges_for"]


def constrain_fragment_charges(charges, atom_mask, fragment, fragment_charge):
    """Shift the site charges of every fragment so that it sums to its own net charge.

    Args:
        charges: (B, A, n_dcm) site charges, e (e.g. the model's output).
        atom_mask: (B, A) 1 for real atoms, 0 for padding (padded atoms keep 0 charge).
        fragment: (B, A) int fragment index of each atom, in ``[0, A)``.
        fragment_charge: (B, A) net charge of fragment ``f`` at index ``f``, e (entries of
            fragments without real atoms are ignored).
    Returns:
        (B, A, n_dcm) charges with ``Σ_{i∈f, k} q_ik = Q_f`` for every fragment holding at
        least one real atom.
    """
    B, A, K = charges.shape
    mask = jnp.asarray(atom_mask, charges.dtype)
    onehot = (jnp.asarray(fragment)[..., None] == jnp.arange(A)).astype(charges.dtype)
    onehot = onehot * mask[..., None]                                    # (B, A, F=A)
    total = jnp.einsum("baf,ba->bf", onehot, charges.sum(-1))            # (B, F)
    count = onehot.sum(1) * K                                            # (B, F)
    shift = (total - jnp.asarray(fragment_charge, charges.dtype)) / jnp.maximum(count, 1.0)
    per_atom = jnp.einsum("baf,bf->ba", onehot, shift)                   # (B, A)
    return (charges - per_atom[..., None]) * mask[..., None]


def fragment_charges_for(atoms, labels: np.ndarray, net_charge: float,
                         given: Sequence[float] | None = None,
                         where: str = "structure") -> np.ndarray | None:
    """Net charge of each fragment of a structure, or None when it is not known.

    Sources, first found wins: ``given`` (one value per fragment, in order of the
    fragments' first atoms), ``atoms.info["fragment_charges"]``, the per-atom formal
    charges ``atoms.arrays["formal_charges"]`` summed per fragment.

    Args:
        atoms: an ``ase.Atoms``.
        labels: (N,) fragment label of every atom (0, 1, ... in order of first atoms).
        net_charge: the structure's net charge, e (the fragment charges must sum to it).
        where: names the structure in error messages.
    Returns:
        (n_fragments,) float64 charges, e, or None.
    Raises:
        DataError: the number of values differs from the number of fragments, or they do
            not sum to the net charge.
    """
    n_frag = int(labels.max()) + 1 if len(labels) else 0
    source = None
    if given is not None:
        q, source = np.asarray(given, float).reshape(-1), "--fragment-charges"
    elif "fragment_charges" in atoms.info:
        q = np.asarray(atoms.info["fragment_charges"], float).reshape(-1)
        source = "atoms.info['fragment_charges']"
    elif "formal_charges" in atoms.arrays:
        fc = np.asarray(atoms.arrays["formal_charges"], float)
        q, source = np.bincount(labels, weights=fc, minlength=n_frag), "formal charges"
    else:
        return None
    if len(q) != n_frag:
        raise DataError(f"{where}: {source} gives {len(q)} fragment charges but the structure "
                        f"has {n_frag} fragments by covalent connectivity (numbered by their "
                        "first atom); give one charge per fragment.")
    if abs(q.sum() - net_charge) > 1e-6:
        raise DataError(f"{where}: the fragment charges {q.tolist()} ({source}) sum to "
                        f"{q.sum():g} e but the net charge is {net_charge:g} e; make them "
                        "agree (or leave out --charge).")
    return q
