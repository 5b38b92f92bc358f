"""Structures to predict for: any file ASE reads, and the net charge of each structure.

Net charge of a structure: the ``charge`` argument if given, else ``atoms.info`` keys
``charge``, ``net_charge`` or ``total_charge``, else the rounded sum of ASE's initial
charges (formal charges from an SDF file), else 0.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dcmnet.errors import DataError


def read_structures(paths, index: str = ":") -> list:
    """Read structures from files with ASE (format from the file name, as ``ase.io.read``).

    Args:
        paths: one path or a list of paths (xyz, extxyz, sdf, pdb, any ASE format).
        index: ASE frame selection applied to every file (default all frames).
    Returns:
        list of ``ase.Atoms`` (in file order, each tagged ``info["source"]``).
    Raises:
        DataError: a missing or unreadable file, or a file with no atoms.
    """
    from ase.io import read

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise DataError(f"{p}: no such structure file.")
        try:
            got = read(str(p), index=index)
        except Exception as exc:  # ASE raises many types
            raise DataError(f"{p}: ASE could not read it ({type(exc).__name__}: {exc}); give "
                            "a file ASE reads (xyz, extxyz, sdf, pdb, ...).") from exc
        got = got if isinstance(got, list) else [got]
        if not got or any(len(a) == 0 for a in got):
            raise DataError(f"{p}: a structure without atoms.")
        from dcmnet.data.readers.chemistry import mol_formal_charges
        formal = mol_formal_charges(p)
        per_atom = _sdf_atom_formal_charges(p) if formal is not None else None
        for k, a in enumerate(got):
            a.info.setdefault("source", f"{p}@{k}")
            if formal is not None and k < len(formal) and "charge" not in a.info:
                a.info["charge"] = float(formal[k])
                a.info["charge_source"] = "formal charges (M  CHG)"
            if per_atom is not None and k < len(per_atom) and len(per_atom[k]) == len(a):
                a.arrays["formal_charges"] = per_atom[k]
        frames.extend(got)
    if not frames:
        raise DataError("no structures given.")
    return frames


def _sdf_atom_formal_charges(path) -> list[np.ndarray] | None:
    """Per-atom formal charges (e) of every record of an SDF/MOL file (RDKit, file atom
    order, hydrogens kept); None without RDKit. Records RDKit cannot read give an empty
    array (:func:`dcmnet.data.readers.base.mol_formal_charges` has already refused them)."""
    try:
        from rdkit import Chem
    except ImportError:  # pragma: no cover - optional extra
        return None
    return [np.zeros(0) if m is None else
            np.array([a.GetFormalCharge() for a in m.GetAtoms()], float)
            for m in Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)]


def structure_charge(atoms, charge: float | None = None, strict: bool = False) -> float:
    """Net charge (e) of a structure: ``charge``, else ``atoms.info`` ``charge`` /
    ``net_charge`` / ``total_charge`` (SDF/MOL files read by :func:`read_structures` carry
    the sum of their ``M  CHG`` formal charges there), else the rounded sum of the initial
    charges, else 0.

    Args:
        strict: when no charge is known and charge 0 gives an odd electron count (a
            radical, almost always a missing charge), raise instead of returning 0.
    Raises:
        DataError: (``strict``) odd electron count with no known net charge.
    """
    if charge is not None:
        return float(charge)
    for key in ("charge", "net_charge", "total_charge"):
        if key in atoms.info:
            return float(atoms.info[key])
    q = atoms.get_initial_charges()
    if q.size and np.any(q != 0):
        return float(np.round(q.sum()))
    n_elec = int(np.sum(atoms.get_atomic_numbers()))
    if strict and n_elec % 2:
        src = atoms.info.get("source", "a structure")
        raise DataError(f"{src} ({atoms.get_chemical_formula()}): no net charge is given and "
                        f"charge 0 leaves {n_elec} electrons (odd: a radical). Give the net "
                        "charge: --charge Q, 'charge=Q' in the extxyz comment line, or M  CHG "
                        "formal charges in an SDF/MOL file.")
    return 0.0


__all__ = ["read_structures", "structure_charge"]
