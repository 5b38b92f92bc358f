"""The general model's molecule list: filters, ions, scaffold split, the committed list."""
from pathlib import Path

import pytest

pytest.importorskip("rdkit")
from rdkit import Chem  # noqa: E402

from dcmnet.generate import chemspace as cs  # noqa: E402
from dcmnet.generate.molecules import read_smiles_file  # noqa: E402

LIST = Path(__file__).resolve().parents[1] / "data" / "general" / "molecules.smi"


def test_filters():
    assert cs.canonical("CCO") == "CCO"
    assert cs.canonical("C") is None                  # one heavy atom
    assert cs.canonical("CCCCCCCCCC") is None         # ten heavy atoms
    assert cs.canonical("CC[Br]") is None             # element outside the list
    assert cs.canonical("[CH3]") is None              # radical
    assert cs.canonical("CCO.O") is None              # two fragments
    assert cs.canonical("C[C@H](N)O") == "CC(N)O"     # stereo dropped


def test_ion_rules():
    ions = cs.ions_from(["CC(=O)O", "Oc1ccccc1", "CCN", "CC(=N)N", "CC(N)=O"])
    kinds = {s: v.split("|")[0] for s, v in ions.items()}
    assert kinds["CC(=O)[O-]"] == "ion:carboxylate"
    assert kinds["[O-]c1ccccc1"] == "ion:phenolate"
    assert kinds["CC[NH3+]"] == "ion:ammonium"
    assert kinds["CC(N)=[NH2+]"] == "ion:amidinium"
    assert not any(v.endswith("|CC(N)=O") for v in ions.values())  # amides stay neutral


def test_split_groups():
    assert cs.split_group("Cc1ccccc1") == cs.split_group("Oc1ccccc1") == "ring:c1ccccc1"
    assert cs.split_group("CCO").startswith("chain:")


def test_committed_list():
    """The committed list meets the issue: >= 2000 distinct molecules, 2-9 heavy atoms of
    H C N O F S Cl, mostly neutral plus ions, >= 10 % held out by scaffold group."""
    specs = read_smiles_file(LIST)          # also checks charges against formal charges
    labels = cs.read_list_labels(LIST)
    assert len(specs) >= 2000
    smiles = [Chem.CanonSmiles(s.smiles) for s in specs]
    assert len(set(smiles)) == len(smiles)
    for s in specs:
        m = Chem.MolFromSmiles(s.smiles)
        assert 2 <= m.GetNumHeavyAtoms() <= 9
        assert {a.GetAtomicNum() for a in m.GetAtoms()} <= set(cs.ELEMENTS)
    charges = [s.net_charge for s in specs]
    assert charges.count(0) > 0.8 * len(charges) and charges.count(-1) and charges.count(1)
    test = {n for n, v in labels.items() if v["split"] == "test"}
    assert len(test) >= 0.10 * len(specs)
    train_groups = {v["group"] for v in labels.values() if v["split"] == "train"}
    test_groups = {v["group"] for v in labels.values() if v["split"] == "test"}
    assert not train_groups & test_groups
    bundled = {Chem.CanonSmiles(s.smiles) for s in read_smiles_file(
        Path(cs.__file__).parents[1] / "data" / "bundled" / "molecules.smi")}
    assert not bundled & set(smiles)       # bundled molecules have data already
    assert not {cs.split_group(b) for b in bundled if "+" not in b and "-" not in b} \
        & test_groups
