"""Input molecules and conformers for ``dcmnet generate`` (RDKit and ASE).

Molecule list file (``.smi``/``.txt``): one molecule per line, ``SMILES [name] [net_charge]``;
``#`` at the start of a line or after white space starts a comment (a ``#`` inside a SMILES
is a triple bond). The net charge defaults to the sum of the SMILES formal charges; if
given, it must agree with them. Structure files (``.xyz``, ``.extxyz``, ``.sdf``, ``.pdb`` …)
are read with ASE, every frame a conformer; their net charge comes from ``--charge``, the
SDF/MOL formal charges (``M  CHG``, read with RDKit), or the file's ``charge`` info key
(extxyz), else 0 (refused when 0 leaves an odd electron count).

A SMILES with several components (``A.B``) is embedded per fragment by RDKit and the
fragments are then placed :data:`MIN_FRAGMENT_SEPARATION` Å apart (:func:`separate_fragments`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dcmnet.errors import DataError, OptionalDependencyError


@dataclasses.dataclass
class MoleculeSpec:
    """One input molecule: a SMILES with a name and net charge, or fixed conformers.

    Attributes:
        name: identifier used in file names and the dataset's ``name`` field.
        net_charge: total charge in e.
        smiles: SMILES string (conformers are embedded with RDKit), or None.
        frames: list of (Z (N,), R (N, 3) Å) given conformers, or None.
    """

    name: str
    net_charge: int
    smiles: str | None = None
    frames: list | None = None


def _rdkit():
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError as exc:  # pragma: no cover
        raise OptionalDependencyError(
            "dcmnet generate needs RDKit and PySCF: pip install 'dcmnet[qm]'") from exc
    return Chem, AllChem


def _safe_name(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_+" else "_" for c in s)


def _strip_comment(line: str) -> str:
    """Remove a comment: a line starting with '#', or ' #' after the fields ('#' inside a
    SMILES is a triple bond and is kept)."""
    s = line.strip()
    if s.startswith("#"):
        return ""
    for i in range(1, len(s)):
        if s[i] == "#" and s[i - 1].isspace():
            return s[:i].strip()
    return s


def read_smiles_file(path: str | Path) -> list[MoleculeSpec]:
    """Parse a molecule list file (see module docstring).

    Raises:
        DataError: an unparsable SMILES, a non-integer charge, a charge that contradicts the
            formal charges, or duplicate names (each error names the file and line).
    """
    Chem, _ = _rdkit()
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    specs, seen = [], set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = _strip_comment(line)
        if not line:
            continue
        parts = line.split()
        smi = parts[0]
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            raise DataError(f"{path}:{lineno}: RDKit cannot parse SMILES '{smi}'.")
        formal = int(Chem.GetFormalCharge(mol))
        name = _safe_name(parts[1]) if len(parts) > 1 else f"mol{len(specs)}"
        charge = formal
        if len(parts) > 2:
            try:
                charge = int(parts[2])
            except ValueError:
                raise DataError(f"{path}:{lineno}: net charge '{parts[2]}' is not an integer.")
            if charge != formal:
                raise DataError(f"{path}:{lineno}: net charge {charge} disagrees with the formal "
                                f"charges of '{smi}' ({formal}); fix the SMILES or the charge.")
        if name in seen:
            raise DataError(f"{path}:{lineno}: duplicate molecule name '{name}'.")
        seen.add(name)
        specs.append(MoleculeSpec(name=name, net_charge=charge, smiles=smi))
    if not specs:
        raise DataError(f"{path}: no molecules found (one 'SMILES [name] [charge]' per line).")
    return specs


def read_structure_file(path: str | Path, net_charge: int | None = None) -> MoleculeSpec:
    """Read all frames of a structure file with ASE as the conformers of one molecule."""
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    try:
        frames = read(path, index=":")
    except Exception as exc:  # ASE raises many types for bad files
        raise DataError(f"{path}: ASE could not read this structure file ({exc}).") from exc
    if not frames:
        raise DataError(f"{path}: no structures in file.")
    z0 = frames[0].numbers
    for k, a in enumerate(frames):
        if not np.array_equal(a.numbers, z0):
            raise DataError(f"{path}: frame {k} has different atoms than frame 0; put each "
                            "molecule in its own file.")
    if net_charge is None:
        from dcmnet.data.readers.chemistry import mol_formal_charges
        formal = mol_formal_charges(path)
        if formal:
            if len(set(formal)) > 1:
                raise DataError(f"{path}: records have different formal charges {formal}; "
                                "put each molecule in its own file.")
            net_charge = formal[0]
        elif "charge" in frames[0].info:
            net_charge = int(round(float(frames[0].info["charge"])))
        else:
            net_charge = 0
            if int(z0.sum()) % 2:
                raise DataError(f"{path}: no net charge is given and charge 0 leaves "
                                f"{int(z0.sum())} electrons (odd: a radical; only closed shells "
                                "are computed). Give --charge Q, 'charge=Q' in the extxyz "
                                "comment line, or M  CHG formal charges in an SDF/MOL file.")
    return MoleculeSpec(name=_safe_name(path.stem), net_charge=int(net_charge),
                        frames=[(a.numbers.copy(), a.positions.copy()) for a in frames])


#: Smallest distance (Å) between atoms of different fragments of a multi-fragment SMILES
#: (``A.B``) after :func:`separate_fragments`; beyond typical hydrogen-bond (1.8-2.0 Å) and
#: ion-pair contact (2.2-2.8 Å) distances, so fragments neither overlap nor bond.
MIN_FRAGMENT_SEPARATION = 3.0


def separate_fragments(R: np.ndarray, fragments, min_sep: float = MIN_FRAGMENT_SEPARATION
                       ) -> np.ndarray:
    """Place the fragments of one structure apart along x (deterministic).

    RDKit embeds the components of ``A.B`` independently, all around the origin (atoms of
    different fragments 0.05-0.3 Å apart). Fragment k (in RDKit's order) is centred, then
    shifted along +x so that its smallest x is ``min_sep`` beyond the largest x of the
    fragments before it; the x gap alone guarantees every inter-fragment distance ≥
    ``min_sep``. Fragment 0 is not moved.

    Args:
        R: (N, 3) positions, Å; fragments: tuples of atom indices (``Chem.GetMolFrags``).
    Returns:
        (N, 3) new positions, Å.
    """
    R = np.array(R, dtype=np.float64, copy=True)
    if len(fragments) < 2:
        return R
    placed = list(fragments[0])
    for frag in fragments[1:]:
        f = list(frag)
        P = R[f] - R[f].mean(0) + R[placed].mean(0) * np.array([0.0, 1.0, 1.0])
        P[:, 0] += R[placed, 0].max() - P[:, 0].min() + min_sep
        R[f] = P
        placed += f
    return R


def check_geometry(Z, R, name: str) -> None:
    """Refuse a conformer with two atoms closer than
    :data:`dcmnet.data.sanity.MIN_ATOM_DISTANCE` (before any QM is spent on it).

    Raises:
        DataError: names the molecule, the atoms and their distance.
    """
    from dcmnet.data.sanity import MIN_ATOM_DISTANCE
    R = np.asarray(R, float)
    if len(R) < 2:
        return
    d = np.linalg.norm(R[:, None] - R[None], axis=-1)
    d[np.diag_indices(len(R))] = np.inf
    if d.min() < MIN_ATOM_DISTANCE:
        a, b = sorted(np.unravel_index(np.argmin(d), d.shape))
        raise DataError(f"{name}: atoms {a} and {b} are {d.min():.3f} Å apart (closer than "
                        f"{MIN_ATOM_DISTANCE} Å: overlapping atoms); no QM was run for it. Fix "
                        "the geometry (for structure files) or the SMILES.")


def embed_conformers(spec: MoleculeSpec, n_conformers: int, seed: int = 0,
                     optimize: bool = True, displacement: float = 0.0) -> list[tuple]:
    """Conformers of a SMILES molecule with hydrogens: list of (Z (N,), R (N, 3) Å).

    RDKit ETKDG embedding (``randomSeed=seed``), optional MMFF94 optimisation, then optional
    Gaussian random displacements of every atom (standard deviation ``displacement`` Å,
    seeded), so that even rigid molecules give distinct geometries. Deterministic for a
    given seed and RDKit version.

    A SMILES with several components (``A.B``: an ion pair, a dimer) has its fragments
    placed apart by :func:`separate_fragments` (at least :data:`MIN_FRAGMENT_SEPARATION`
    Å between atoms of different fragments); single-fragment molecules are unchanged.

    Raises:
        DataError: RDKit cannot embed the molecule.
    """
    if spec.frames is not None:
        return list(spec.frames)[:n_conformers] if n_conformers else list(spec.frames)
    Chem, AllChem = _rdkit()
    mol = Chem.AddHs(Chem.MolFromSmiles(spec.smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    cids = list(AllChem.EmbedMultipleConfs(mol, numConfs=int(n_conformers), params=params))
    if not cids:
        raise DataError(f"RDKit could not embed '{spec.smiles}' ({spec.name}).")
    if optimize:
        try:
            AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=500)
        except Exception:  # no MMFF parameters: keep the ETKDG geometry
            pass
    rng = np.random.default_rng(seed)
    Z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int32)
    frags = Chem.GetMolFrags(mol)
    out = []
    for k in range(n_conformers):
        cid = cids[k % len(cids)]
        R = np.array(mol.GetConformer(cid).GetPositions(), dtype=np.float64)
        if len(frags) > 1:
            R = separate_fragments(R, frags)
        if displacement > 0 or k >= len(cids):
            R = R + rng.normal(scale=max(displacement, 0.02), size=R.shape)
        out.append((Z.copy(), R))
    return out
