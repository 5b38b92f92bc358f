"""A reproducible list of small molecules spanning organic chemical space (RDKit only).

Used to build the training data of the general DCM-net (``dcmnet molecules``). Sources, all
shipped with or made by installed packages (no downloaded data):

* ``nci``: whole molecules of RDKit's ``Data/NCI/first_5K.smi`` (largest fragment only);
* ``brics`` / ``recap``: BRICS and RECAP fragments of those molecules, open valences capped
  with hydrogen;
* ``enum``: systematic enumeration: ring cores carrying one or two substituents, and
  acyclic ``R-X-R'`` chains of small alkyl groups around one functional group;
* ``ion``: common charge states made from the neutral molecules above: carboxylates and
  phenolates (−1), protonated aliphatic amines (ammonium, +1), amidinium and
  guanidinium-like cations (+1).

Every molecule has 2–9 heavy atoms of H, C, N, O, F, S, Cl (all covered by def2-SVP and its
density-fitting basis), is closed shell and is kept once (canonical SMILES). The list is
shuffled with a fixed seed so any prefix of it is a fair sample, and every molecule gets a
scaffold-split label (``train``/``test``): molecules with rings are grouped by Bemis–Murcko
scaffold, acyclic ones by their own skeleton, and an ion always shares the group of its
neutral parent, so no test molecule has a training relative of the same scaffold.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable

from dcmnet.errors import DataError, OptionalDependencyError

#: Elements allowed in the molecule list (atomic numbers): H, C, N, O, F, S, Cl.
ELEMENTS = (1, 6, 7, 8, 9, 16, 17)
#: Heavy-atom range of the list (inclusive).
MIN_HEAVY, MAX_HEAVY = 2, 9

#: Ring cores of the enumeration; ``*`` marks nothing, substituents go on any C-H / N-H.
RING_CORES = (
    "c1ccccc1", "c1ccncc1", "c1cncnc1", "c1cnccn1", "c1ccnnc1", "c1ccoc1", "c1ccsc1",
    "c1cc[nH]c1", "c1c[nH]cn1", "c1cocn1", "c1cscn1", "c1cn[nH]c1", "c1conc1", "C1CC1",
    "C1CCC1", "C1CCCC1", "C1CCCCC1", "C1CCOC1", "C1CCNCC1", "C1COCCN1", "C1CNCCN1", "C1COC1",
    "C1CNC1", "C1CCSC1", "O=C1CCCN1", "O=C1CCCO1", "C1=CCCC1", "O=c1cccc[nH]1",
)
#: Substituents (SMILES written from the attaching atom).
SUBSTITUENTS = (
    "F", "Cl", "C", "CC", "O", "OC", "N", "NC", "N(C)C", "C#N", "C=O", "C(=O)O", "C(=O)N",
    "C(=O)C", "C(=O)OC", "NC(=O)C", "NC=O", "S", "SC", "C(F)(F)F", "[N+](=O)[O-]",
    "S(C)(=O)=O", "S(N)(=O)=O", "C=C", "C#C", "OC(=O)C", "CO", "CN", "CF", "OC(F)(F)F",
    "C(=N)N", "NC(N)=O",
)
#: Small substituents used for disubstituted rings.
SMALL_SUBSTITUENTS = ("F", "Cl", "C", "O", "N", "C#N", "C=O", "OC", "C(=O)O", "C(F)(F)F",
                      "C(=O)N", "S")
#: Alkyl and unsaturated end groups of the acyclic enumeration.
END_GROUPS = ("[H]", "C", "CC", "CCC", "C(C)C", "C(C)(C)C", "C=C", "C#C", "C1CC1", "CF",
              "C(F)(F)F", "CCl", "CO", "CCO", "CN", "CC#N", "CCF")
#: Functional groups joining two end groups in the acyclic enumeration.
LINKERS = ("O", "N", "N(C)", "S", "C(=O)", "C(=O)O", "OC(=O)", "C(=O)N", "NC(=O)", "NC(=O)N",
           "OC(=O)N", "S(=O)(=O)", "S(=O)", "C(=O)C(=O)", "C(=N)N", "NC(=N)N", "C=N",
           "OC(=O)O", "C(=O)S", "S(=O)(=O)N", "C(O)", "C#C", "C=C")


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OptionalDependencyError(
            "dcmnet molecules needs RDKit: pip install 'dcmnet[qm]'") from exc
    RDLogger.DisableLog("rdApp.*")
    return Chem


@dataclasses.dataclass(frozen=True)
class Entry:
    """One molecule of the list.

    Attributes:
        smiles: canonical RDKit SMILES (heavy atoms; hydrogens implicit).
        name: unique identifier (``g`` + 5 digits in list order).
        net_charge: total formal charge (e).
        origin: ``nci``, ``brics``, ``recap``, ``enum`` or ``ion:<kind>``.
        split: ``train`` or ``test`` (scaffold split).
        group: split group (scaffold or skeleton of the neutral parent).
    """

    smiles: str
    name: str
    net_charge: int
    origin: str
    split: str
    group: str


def canonical(smiles_or_mol) -> str | None:
    """Canonical SMILES if the molecule passes the list's filters, else None.

    Filters: parses and sanitises, one fragment, 2–9 heavy atoms, only :data:`ELEMENTS`,
    no radicals, no isotopes, an even electron count (closed shell).
    """
    Chem = _rdkit()
    m = Chem.MolFromSmiles(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
    if m is None:
        return None
    if len(Chem.GetMolFrags(m)) != 1:
        return None
    if not MIN_HEAVY <= m.GetNumHeavyAtoms() <= MAX_HEAVY:
        return None
    n_elec = -Chem.GetFormalCharge(m)
    for a in m.GetAtoms():
        if a.GetAtomicNum() not in ELEMENTS or a.GetNumRadicalElectrons() or a.GetIsotope():
            return None
        n_elec += a.GetAtomicNum() + a.GetTotalNumHs()
    if n_elec % 2:
        return None
    for a in m.GetAtoms():
        a.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    for b in m.GetBonds():
        b.SetStereo(Chem.BondStereo.STEREONONE)
    return Chem.MolToSmiles(m)


def nci_file() -> str:
    """Path of RDKit's ``Data/NCI/first_5K.smi``.

    Raises:
        DataError: the file is not part of this RDKit installation.
    """
    import rdkit

    path = os.path.join(os.path.dirname(rdkit.__file__), "Data", "NCI", "first_5K.smi")
    if not os.path.exists(path):
        raise DataError(f"{path}: RDKit's NCI sample is missing from this installation; "
                        "reinstall rdkit from the package index.")
    return path


def _cap_dummies(smiles: str):
    """A fragment SMILES with dummy atoms ``[n*]`` replaced by hydrogen (None if invalid)."""
    Chem = _rdkit()
    m = Chem.MolFromSmiles(smiles)
    if m is None:
        return None
    rw = Chem.RWMol(m)
    for a in rw.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetAtomicNum(1)
            a.SetIsotope(0)
    try:
        out = rw.GetMol()
        Chem.SanitizeMol(out)
        return Chem.RemoveHs(out)
    except Exception:  # noqa: BLE001 - RDKit raises several sanitisation errors
        return None


def nci_molecules(max_parent_heavy: int = 40) -> dict[str, str]:
    """Neutral molecules and capped BRICS/RECAP fragments of the NCI sample.

    Returns:
        {canonical SMILES: origin} with origin ``nci``, ``brics`` or ``recap`` (first seen).
    """
    Chem = _rdkit()
    from rdkit.Chem import BRICS, Recap
    from rdkit.Chem.MolStandardize import rdMolStandardize

    chooser = rdMolStandardize.LargestFragmentChooser()
    out: dict[str, str] = {}
    with open(nci_file()) as fh:
        lines = fh.read().splitlines()
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        m = Chem.MolFromSmiles(parts[0])
        if m is None:
            continue
        m = chooser.choose(m)
        s = canonical(m)
        if s and Chem.GetFormalCharge(m) == 0:
            out.setdefault(s, "nci")
        if m.GetNumHeavyAtoms() > max_parent_heavy:
            continue
        try:
            brics = sorted(BRICS.BRICSDecompose(m))
            recap = sorted(Recap.RecapDecompose(m).GetLeaves())
        except Exception:  # noqa: BLE001 - fragmentation fails on exotic valences
            continue
        for origin, frags in (("brics", brics), ("recap", recap)):
            for f in frags:
                c = _cap_dummies(f)
                s = canonical(c) if c is not None else None
                if s and Chem.GetFormalCharge(c) == 0:
                    out.setdefault(s, origin)
    return out


def _substitute(core: str, subs: Iterable[str]) -> set[str]:
    """All molecules made by replacing one H of ``core`` with each substituent."""
    Chem = _rdkit()
    core_mol = Chem.MolFromSmiles(core)
    out = set()
    ranks = list(Chem.CanonicalRankAtoms(core_mol, breakTies=False))
    sites = {}
    for a in core_mol.GetAtoms():
        if a.GetTotalNumHs() > 0 and a.GetAtomicNum() in (6, 7):
            sites.setdefault(ranks[a.GetIdx()], a.GetIdx())
    for idx in sites.values():
        for sub in subs:
            m = Chem.RWMol(core_mol)
            frag = Chem.MolFromSmiles(sub)
            if frag is None:
                continue
            combo = Chem.RWMol(Chem.CombineMols(m, frag))
            attach = m.GetNumAtoms()  # first atom of the substituent
            combo.AddBond(idx, attach, Chem.BondType.SINGLE)
            a = combo.GetAtomWithIdx(idx)
            a.SetNoImplicit(False)
            a.SetNumExplicitHs(max(0, a.GetNumExplicitHs() - 1))
            try:
                mol = combo.GetMol()
                Chem.SanitizeMol(mol)
            except Exception:  # noqa: BLE001
                continue
            s = canonical(mol)
            if s:
                out.add(s)
    return out


def enumerated_molecules() -> set[str]:
    """Systematically enumerated neutral molecules (ring cores × substituents, chains)."""
    Chem = _rdkit()
    out: set[str] = set()
    for core in RING_CORES:
        s = canonical(core)
        if s:
            out.add(s)
        mono = _substitute(core, SUBSTITUENTS)
        out |= mono
        if core in ("c1ccccc1", "c1ccncc1", "c1ccsc1"):
            for m in sorted(_substitute(core, SMALL_SUBSTITUENTS)):
                out |= _substitute(m, SMALL_SUBSTITUENTS)
    for a in END_GROUPS:
        for link in LINKERS:
            for b in END_GROUPS:
                smi = f"{a}{link}{b}".replace("[H]", "", 1) if a == "[H]" else f"{a}{link}{b}"
                if b == "[H]":
                    smi = f"{a}{link}" if a != "[H]" else link
                m = Chem.MolFromSmiles(smi)
                s = canonical(m) if m is not None else None
                if s:
                    out.add(s)
    return out


#: Reaction SMARTS that make the ions of the list from neutral parents: (kind, SMARTS).
ION_RULES = (
    ("carboxylate", "[CX3:1](=[O:2])[OX2H1:3]>>[C:1](=[O:2])[O-:3]"),
    ("phenolate", "[c:1][OX2H1:2]>>[c:1][O-:2]"),
    ("ammonium", "[NX3;H2,H1,H0;!$(N-[a]);!$(N-C=[O,N,S]);!$(N-[S,N,O]);!$(N-C#N);"
                 "!$(N=*);!$(N#*);!$(N-C=C);!$(N-C#C);!$(N-C-[N,O,S,F,Cl]):1]>>[N+:1]"),
    ("amidinium", "[NX3H2:1][CX3:2]=[NX2H1:3]>>[N:1][C:2]=[NH2+:3]"),
)


def ions_from(neutral: Iterable[str]) -> dict[str, str]:
    """Charged molecules made from neutral ones with :data:`ION_RULES` (one site each).

    Returns:
        {canonical SMILES of the ion: 'ion:<kind>|<parent canonical SMILES>'}.
    """
    Chem = _rdkit()
    from rdkit.Chem import AllChem

    rules = [(k, AllChem.ReactionFromSmarts(s)) for k, s in ION_RULES]
    out: dict[str, str] = {}
    for parent in sorted(neutral):
        m = Chem.MolFromSmiles(parent)
        for kind, rxn in rules:
            for prods in rxn.RunReactants((m,)):
                p = prods[0]
                try:
                    Chem.SanitizeMol(p)
                except Exception:  # noqa: BLE001
                    continue
                s = canonical(p)
                if s and s not in out:
                    out[s] = f"ion:{kind}|{parent}"
                break  # one site per rule and parent
    return out


def split_group(smiles: str) -> str:
    """The scaffold-split group of a neutral molecule: its Bemis–Murcko scaffold (with
    rings) or its generic heavy-atom skeleton (acyclic)."""
    Chem = _rdkit()
    from rdkit.Chem.Scaffolds import MurckoScaffold

    m = Chem.MolFromSmiles(smiles)
    if m.GetRingInfo().NumRings():
        return "ring:" + MurckoScaffold.MurckoScaffoldSmiles(mol=m)
    return "chain:" + smiles


def _hash01(text: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def _candidates(keep_train: Iterable[str]) -> tuple[dict, dict, set]:
    """Neutral candidates (NCI first, then enumerated: {SMILES: origin}), ions made from
    them ({SMILES: 'ion:<kind>|<parent>'}) and the canonical ``keep_train`` SMILES (left
    out of both)."""
    neutral = nci_molecules()
    for s in sorted(enumerated_molecules()):
        neutral.setdefault(s, "enum")
    ions = ions_from(neutral)
    keep = {canonical(s) for s in keep_train} - {None}
    for s in keep:  # molecules that already have data (the bundled set) are not listed
        neutral.pop(s, None)
        ions.pop(s, None)
    return neutral, ions, keep


def _draw_ions(ions: dict, n_ion: int, rng) -> list[str]:
    """``n_ion`` ions drawn evenly across the kinds (so the rare ones are present)."""
    by_kind: dict[str, list[str]] = {}
    for s in sorted(ions):
        by_kind.setdefault(ions[s].split("|")[0], []).append(s)
    chosen: list[str] = []
    kinds = sorted(by_kind)
    pools = {k: list(rng.permutation(by_kind[k])) for k in kinds}
    while len(chosen) < n_ion and any(pools.values()):
        for k in kinds:
            if pools[k] and len(chosen) < n_ion:
                chosen.append(str(pools[k].pop()))
    return chosen


def _test_groups(groups: dict, order: list[str], keep_groups: set, test_fraction: float,
                 seed: int) -> set:
    """Split groups for the test set, drawn by a seeded hash until ``test_fraction`` of the
    molecules is reached (never a group of ``keep_groups`` or one over 2 % of the list)."""
    uniq = sorted(set(groups.values()) - keep_groups, key=lambda g: _hash01(g, seed))
    count = {}
    for s in order:
        count[groups[s]] = count.get(groups[s], 0) + 1
    test_groups, n_test = set(), 0
    for g in uniq:
        if n_test >= test_fraction * len(order):
            break
        if count[g] > 0.02 * len(order):  # a huge scaffold family (benzene) stays in train
            continue
        test_groups.add(g)
        n_test += count[g]
    return test_groups


def build_list(n_molecules: int = 2400, ion_fraction: float = 0.12,
               test_fraction: float = 0.12, seed: int = 0,
               keep_train: Iterable[str] = ()) -> list[Entry]:
    """The molecule list of the general model.

    Args:
        n_molecules: molecules in the list (drawn with a fixed seed from the candidates).
        ion_fraction: fraction of ions in the list.
        test_fraction: target fraction of test molecules (whole split groups are drawn).
        seed: seed of the draw, the order and the split.
        keep_train: SMILES of molecules that have data already (the bundled set): left out
            of the list, and their split groups are always training.

    Returns:
        entries in list order (shuffled), names ``g00000`` …

    Raises:
        DataError: fewer candidates than ``n_molecules``.
    """
    import numpy as np

    Chem = _rdkit()
    neutral, ions, keep = _candidates(keep_train)
    rng = np.random.default_rng(seed)
    n_ion = int(round(n_molecules * ion_fraction))
    n_neu = n_molecules - n_ion
    if len(neutral) < n_neu or len(ions) < n_ion:
        raise DataError(f"only {len(neutral)} neutral and {len(ions)} ionic candidates; "
                        f"asked for {n_neu} and {n_ion}.")
    chosen_ions = _draw_ions(ions, n_ion, rng)
    # Neutral molecules: every NCI-derived one first (real chemistry), then enumerated ones.
    real = [s for s in sorted(neutral) if neutral[s] != "enum"]
    enum = [s for s in sorted(neutral) if neutral[s] == "enum"]
    chosen_neu = [str(s) for s in rng.permutation(real)[:n_neu]]
    chosen_neu += [str(s) for s in rng.permutation(enum)[:n_neu - len(chosen_neu)]]
    parent = {s: s for s in chosen_neu}
    origin = {s: neutral[s] for s in chosen_neu}
    for s in chosen_ions:
        kind, par = ions[s].split("|")
        parent[s], origin[s] = par, kind
    keep_groups = {split_group(k) for k in keep if _is_neutral(k)}
    groups = {s: split_group(parent[s]) for s in parent}
    order = [str(s) for s in rng.permutation(sorted(parent))]
    test_groups = _test_groups(groups, order, keep_groups, test_fraction, seed)
    entries = []
    for i, s in enumerate(order):
        q = int(Chem.GetFormalCharge(Chem.MolFromSmiles(s)))
        entries.append(Entry(smiles=s, name=f"g{i:05d}", net_charge=q, origin=origin[s],
                             split="test" if groups[s] in test_groups else "train",
                             group=groups[s]))
    return entries


def _is_neutral(smiles: str) -> bool:
    """True when the SMILES has zero total formal charge."""
    Chem = _rdkit()
    m = Chem.MolFromSmiles(smiles)
    return m is not None and Chem.GetFormalCharge(m) == 0


def write_list(entries: list[Entry], path) -> None:
    """Write the list in ``dcmnet generate --smiles`` format: ``SMILES name charge`` then a
    comment ``# origin=... split=...`` (atomically)."""
    from dcmnet.fileio import atomic_write_text

    lines = ["# dcmnet general-model molecule list: SMILES name net_charge  # origin split group",
             "# made by 'dcmnet molecules'; see the provenance file next to it"]
    for e in entries:
        lines.append(f"{e.smiles} {e.name} {e.net_charge}  # origin={e.origin} "
                     f"split={e.split} group={e.group}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_list_labels(path) -> dict[str, dict]:
    """Labels of a list written by :func:`write_list`: {name: {'origin', 'split', 'group',
    'smiles', 'net_charge'}}.

    Raises:
        DataError: a line without the ``split=`` label.
    """
    out = {}
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            head, _, tail = line.partition(" #")
            parts = head.split()
            labels = dict(kv.split("=", 1) for kv in tail.split() if "=" in kv)
            if "split" not in labels:
                raise DataError(f"{path}:{lineno}: no 'split=' label; write the list with "
                                "'dcmnet molecules'.")
            out[parts[1]] = {"smiles": parts[0], "net_charge": int(parts[2]), **labels}
    return out
