"""The general model against what a user would pick instead, on held-out molecules.

For every held-out conformer (same geometry, same ESP points) this prints the median and
mean per-conformer ESP RMSE [kcal/(mol·e)] and the dipole MAE [D] of

* the DCM-net model(s) given with ``--model`` (shipped name or experiment folder);
* ESP-fitted monopoles (net-charge-constrained least squares to that conformer's own QM
  ESP: the QM oracle, which needs the QM of that very conformer);
* AM1-BCC charges from OpenFF NAGL (``pip install -e '.[bench]'``; skipped with a note
  when it is not installed);
* MMFF94 and Gasteiger charges (RDKit),

overall and by net charge, element and functional group. The point-charge methods need
the molecule's bonding: it comes from the SMILES of the molecule list (``--list``), whose
hydrogen-added atom order is the order ``dcmnet generate`` wrote the atoms in (checked).

Usage::

    .venv/bin/python scripts/build_general_datasets.py
    .venv/bin/python benchmarks/bench_general.py --model dcmnet-general \\
        --data scratch/general/test.npz --json scratch/general/bench.json --write-card
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Functional groups reported separately (SMARTS on the molecule with hydrogens implicit).
GROUPS = {
    "carboxylic acid": "C(=O)[OX2H1]", "carboxylate": "C(=O)[O-]", "ester": "C(=O)O[#6]",
    "amide": "C(=O)[NX3]", "amine (neutral)": "[NX3;!$(N-C=[O,N,S]);!$(N-a);!$(N-S)]",
    "ammonium": "[NX4+,$([NX3+;H1,H2,H3])]", "amidinium/guanidinium": "[NX3]C=[NH2+]",
    "alcohol": "[CX4][OX2H1]", "phenol": "c[OX2H1]", "phenolate": "c[O-]",
    "ether": "[#6][OX2][#6]", "carbonyl (ketone/aldehyde)": "[#6][CX3](=O)[#1,#6]",
    "nitrile": "C#N", "nitro": "[N+](=O)[O-]", "aromatic ring": "a",
    "heteroaromatic N": "n", "halogen": "[F,Cl]", "sulfur": "[S,s]",
}


def point_charge_methods(smiles: str, Z: np.ndarray, R: np.ndarray, nagl) -> dict:
    """Charges (N,) of the baseline methods that need only the molecule: name -> charges."""
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from rdkit.Geometry import Point3D

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    z_mol = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    if not np.array_equal(z_mol, Z):
        raise ValueError(f"atom order of {smiles} does not match the data")
    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, r in enumerate(R):
        conf.SetAtomPosition(i, Point3D(*map(float, r)))
    mol.AddConformer(conf, assignId=True)
    out = {}
    m2 = Chem.Mol(mol)
    AllChem.ComputeGasteigerCharges(m2)
    g = np.array([float(a.GetProp("_GasteigerCharge")) for a in m2.GetAtoms()])
    if np.all(np.isfinite(g)):
        out["Gasteiger (RDKit)"] = g
    props = AllChem.MMFFGetMoleculeProperties(mol)
    if props is not None:
        out["MMFF94 (RDKit)"] = np.array([props.GetMMFFPartialCharge(i)
                                          for i in range(mol.GetNumAtoms())])
    if nagl is not None:
        try:
            out["AM1-BCC (OpenFF NAGL)"] = nagl(mol)
        except Exception as exc:  # noqa: BLE001 - outside NAGL's domain: reported as missing
            warnings.warn(f"NAGL failed for {smiles}: {exc}", stacklevel=2)
    return out


def load_nagl():
    """A function RDKit Mol -> AM1-BCC charges (N,) from OpenFF NAGL, or None if absent."""
    try:
        from openff.nagl import GNNModel
        from openff.nagl_models import list_available_nagl_models
        from openff.toolkit import Molecule
    except Exception:  # noqa: BLE001 - optional 'bench' extra
        return None, None
    names = [str(p) for p in list_available_nagl_models() if "am1bcc" in str(p)]
    if not names:
        return None, None
    path = sorted(names)[-1]
    model = GNNModel.load(path, eval_mode=True)

    def charges(rdmol):
        off = Molecule.from_rdkit(rdmol, allow_undefined_stereo=True, hydrogens_are_explicit=True)
        return np.asarray(model.compute_property(off, check_domains=True,
                                                 error_if_unsupported=True), float)

    return charges, Path(path).name


def summarise(rows: list[dict], methods: list[str]) -> dict:
    out = {}
    for m in methods:
        esp = np.array([r["esp"][m] for r in rows if m in r["esp"]])
        dip = np.array([r["dip"][m] for r in rows if m in r["dip"]])
        if len(esp) == 0:
            continue
        out[m] = {"esp_rmse_median": float(np.median(esp)), "esp_rmse_mean": float(esp.mean()),
                  "dipole_mae_D": float(dip.mean()) if len(dip) else float("nan"),
                  "n_conformers": int(len(esp))}
    return out


def main() -> int:
    from rdkit import Chem

    from dcmnet.data.dataset import Dataset
    from dcmnet.training.evaluate import model_errors
    from dcmnet.training.experiment import find_experiment_dir, load_experiment
    from dcmnet.fileio import atomic_write_text
    from dcmnet.fitting import fit_monopoles, monopole_esp
    from dcmnet.generate.chemspace import read_list_labels
    from dcmnet.models import card_of, render_card_markdown
    from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["dcmnet-general"])
    ap.add_argument("--data", default=str(ROOT / "scratch/general/test.npz"))
    ap.add_argument("--list", default=str(ROOT / "data/general/molecules.smi"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-nagl", action="store_true")
    ap.add_argument("--write-card", action="store_true",
                    help="store the tables in the (first) model's card.json / card.md")
    args = ap.parse_args()

    ds = Dataset.load(args.data)
    labels = read_list_labels(args.list)
    nagl, nagl_name = (None, None) if args.no_nagl else load_nagl()
    com = ds.centre_of_mass()
    rows = [{"esp": {}, "dip": {}} for _ in range(len(ds))]
    model_names = []
    for spec in args.model:
        cfg, model, params, _ = load_experiment(spec)
        name = Path(spec).name
        model_names.append(name)
        err = model_errors(model, params, ds)
        for i in range(len(ds)):
            rows[i]["esp"][name] = float(err["esp_rmse"][i])
            if np.isfinite(err["dipole_error"][i]):
                rows[i]["dip"][name] = float(err["dipole_error"][i])
    baselines = set()
    for i in range(len(ds)):
        m = ds.molecule(i)
        Z, R, grid, esp = m["Z"], m["R"], m["grid"], m["esp"].astype(np.float64)
        lab = labels[str(ds.name[i])]
        rows[i]["charge"] = int(round(float(ds.net_charge[i])))
        rows[i]["elements"] = sorted({int(z) for z in Z})
        mol = Chem.MolFromSmiles(lab["smiles"])
        rows[i]["groups"] = [g for g, sm in GROUPS.items()
                             if mol.HasSubstructMatch(Chem.MolFromSmarts(sm))]
        charges = {"ESP-fitted monopoles (QM oracle)": fit_monopoles(R, grid, esp,
                                                                    float(ds.net_charge[i]))}
        charges.update(point_charge_methods(lab["smiles"], Z, R, nagl))
        for meth, q in charges.items():
            baselines.add(meth)
            e = (monopole_esp(R, q, grid) - esp) * HARTREE_TO_KCAL_MOL
            rows[i]["esp"][meth] = math.sqrt(float(np.mean(e ** 2)))
            if ds.has_dipole[i]:
                mu = (q[:, None] * (R - com[i])).sum(0)
                rows[i]["dip"][meth] = float(np.linalg.norm(mu - ds.dipole[i])) * \
                    EANGSTROM_TO_DEBYE
    methods = model_names + sorted(baselines)
    result = {"command": "python benchmarks/bench_general.py " + " ".join(sys.argv[1:]),
              "date": datetime.date.today().isoformat(),
              "units": "ESP RMSE per conformer in kcal/(mol·e); dipole MAE in Debye",
              "data": f"{args.data}: {len(ds)} conformers of {len(set(ds.name))} held-out "
                      "molecules",
              "nagl_model": nagl_name or "not installed (pip install -e '.[bench]')",
              "overall": summarise(rows, methods)}
    for q in sorted({r["charge"] for r in rows}):
        result[f"net charge {q:+d}" if q else "net charge 0"] = summarise(
            [r for r in rows if r["charge"] == q], methods)
    from ase.data import chemical_symbols
    for z in sorted({z for r in rows for z in r["elements"]}):
        if z > 1:
            result[f"contains {chemical_symbols[z]}"] = summarise(
                [r for r in rows if z in r["elements"]], methods)
    for g in GROUPS:
        sel = [r for r in rows if g in r["groups"]]
        if sel:
            result[f"group: {g}"] = summarise(sel, methods)

    print(result["data"])
    print(f"AM1-BCC: {result['nagl_model']}")
    for group, table in result.items():
        if not isinstance(table, dict):
            continue
        print(f"\n{group}")
        print(f"  {'method':40s} {'median':>8s} {'mean':>8s} {'dipole':>8s} {'n':>5s}")
        for meth, r in table.items():
            print(f"  {meth:40s} {r['esp_rmse_median']:8.3f} {r['esp_rmse_mean']:8.3f} "
                  f"{r['dipole_mae_D']:8.3f} {r['n_conformers']:5d}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
    if args.write_card:
        exp = find_experiment_dir(args.model[0])
        card = card_of(exp)
        if card is None:
            print(f"{exp} has no card.json (not a shipped model)", file=sys.stderr)
            return 1
        card.accuracy = result
        atomic_write_text(Path(exp) / "card.json", json.dumps(card.to_dict(), indent=2))
        atomic_write_text(Path(exp) / "card.md", render_card_markdown(card))
        print(f"wrote the accuracy tables into {exp}/card.json and card.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
