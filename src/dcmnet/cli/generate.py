"""Command-line front end of ``dcmnet generate`` and ``dcmnet merge``."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from dcmnet.errors import DCMNetError


def add_parsers(sub) -> None:
    """Register the ``generate`` and ``merge`` subcommands on an argparse subparsers object."""
    p = sub.add_parser(
        "generate", help="compute reference ESP data with PySCF (needs dcmnet[qm])",
        description="Conformers (RDKit) -> SCF (PySCF) -> ESP on vdW shells, dipole and "
                    "ESP-fitted charges -> canonical dataset. Resumable: rerun the same command "
                    "after an interruption.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--smiles", metavar="FILE",
                     help="molecule list: 'SMILES [name] [net_charge]' per line")
    src.add_argument("--structures", nargs="+", metavar="FILE",
                     help="xyz/extxyz/sdf/pdb files (read with ASE); each file one molecule, "
                          "each frame one conformer")
    p.add_argument("--charge", type=int, default=None,
                   help="net charge (e) of --structures molecules (default: file info or 0)")
    p.add_argument("--out", required=True, help="canonical dataset to write (.npz)")
    p.add_argument("--workdir", default=None,
                   help="folder for per-conformer results (default: OUT without .npz + '.work')")
    p.add_argument("--n-conformers", type=int, default=10, help="conformers per SMILES")
    p.add_argument("--seed", type=int, default=0, help="seed of embedding and displacements")
    p.add_argument("--optimize", action=argparse.BooleanOptionalAction, default=True,
                   help="MMFF94-optimise embedded conformers")
    p.add_argument("--displacement", type=float, default=0.05,
                   help="std. dev. of random atomic displacements, Å")
    p.add_argument("--method", default="b3lyp", help="'hf' or a PySCF XC functional")
    p.add_argument("--basis", default="def2-svp", help="basis set (e.g. def2-svp, 6-31g*)")
    p.add_argument("--density-fit", action=argparse.BooleanOptionalAction, default=True,
                   help="density fitting for the Coulomb term")
    p.add_argument("--grid-level", type=int, default=1, help="PySCF DFT grid level")
    p.add_argument("--shells", type=float, nargs="+", default=[1.4, 1.6, 1.8, 2.0],
                   help="vdW radius scale factors of the ESP shells")
    p.add_argument("--density", type=float, default=1.0, help="ESP points per Å² per shell")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (one thread each)")
    p.add_argument("--shard", default="0/1", metavar="I/N",
                   help="compute only every N-th conformer starting at I (cluster array jobs); "
                        "then run 'dcmnet merge'")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar")
    p.set_defaults(func=run_generate)

    mo = sub.add_parser(
        "molecules", help="write a reproducible list of small molecules (RDKit) for generate",
        description="Builds the molecule list of the general model from data RDKit ships "
                    "(NCI sample: whole molecules, BRICS and RECAP fragments capped with H) "
                    "and systematic enumeration, plus common ions; 2-9 heavy atoms of "
                    "H C N O F S Cl; shuffled with a seed; scaffold split labels. Writes "
                    "OUT (input of 'dcmnet generate --smiles') and OUT's provenance.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mo.add_argument("--out", required=True, help="molecule list to write (.smi)")
    mo.add_argument("--n-molecules", type=int, default=2400, help="molecules in the list")
    mo.add_argument("--ion-fraction", type=float, default=0.12, help="fraction of ions")
    mo.add_argument("--test-fraction", type=float, default=0.12,
                    help="target fraction of test molecules (scaffold split)")
    mo.add_argument("--seed", type=int, default=0, help="seed of draw, order and split")
    mo.add_argument("--exclude", default="bundled", metavar="FILE",
                    help="molecule list whose molecules already have data: left out, their "
                         "scaffolds kept in training ('bundled' = the bundled dataset's list)")
    mo.set_defaults(func=run_molecules)

    m = sub.add_parser("merge", help="merge generate work folders (shards) into one dataset")
    m.add_argument("workdirs", nargs="+", help="work folders of 'dcmnet generate'")
    m.add_argument("--out", required=True, help="canonical dataset to write (.npz)")
    m.set_defaults(func=run_merge)


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise DCMNetError(f"--shard {text!r}: expected I/N such as 0/4.")
    if not (n >= 1 and 0 <= i < n):
        raise DCMNetError(f"--shard {text!r}: need 0 <= I < N.")
    return i, n


def run_generate(args) -> int:
    from rich.console import Console

    from dcmnet.generate.molecules import read_smiles_file, read_structure_file
    from dcmnet.generate.runner import GenerateSettings, merge, plan_jobs, run_jobs

    console = Console(stderr=True)
    shard = _parse_shard(args.shard)
    settings = GenerateSettings(
        method=args.method, basis=args.basis, density_fit=args.density_fit,
        grid_level=args.grid_level, shells=tuple(args.shells), density=args.density,
        n_conformers=args.n_conformers, seed=args.seed, optimize=args.optimize,
        displacement=args.displacement)
    if args.smiles:
        specs = read_smiles_file(args.smiles)
    else:
        specs = [read_structure_file(f, args.charge) for f in args.structures]
    out = Path(args.out)
    workdir = Path(args.workdir) if args.workdir else out.with_suffix("").with_name(
        out.with_suffix("").name + ".work")
    embed_failed: dict[str, str] = {}
    jobs = plan_jobs(specs, settings, failures=embed_failed)
    from dcmnet.generate.molecules import check_geometry
    from dcmnet.generate.qm import check_basis
    ok_jobs = []
    for j in jobs:
        try:
            check_geometry(j.Z, j.R, j.key)
            ok_jobs.append(j)
        except DCMNetError as exc:
            embed_failed[j.key] = str(exc)
    jobs = ok_jobs
    check_basis([j.Z for j in jobs], settings.method, settings.basis, settings.density_fit)
    if embed_failed:
        from dcmnet.fileio import atomic_write_json

        (workdir / "failed").mkdir(parents=True, exist_ok=True)
        for name, why in embed_failed.items():
            atomic_write_json(workdir / "failed" / f"{name}__embedding.json",
                              {"key": name, "error": why}, indent=None)
            console.print(f"[yellow]skipped[/] {name}: {why}")
    console.print(f"{len(specs)} molecules, {len(jobs)} conformers; "
                  f"{settings.method}/{settings.basis}; work folder {workdir}; "
                  f"shard {shard[0]}/{shard[1]}; {args.workers} workers")
    stats = run_jobs(jobs, workdir, settings, workers=args.workers, shard=shard,
                     progress=args.progress)
    console.print(f"conformers of this shard: {stats['pending']}, already done "
                  f"{stats['done']}, computed now {stats['computed']}, failed "
                  f"{len(stats['failed'])}")
    if shard[1] > 1:
        console.print(f"shard finished; when all shards are done: dcmnet merge {workdir} "
                      f"--out {out}")
        return 1 if stats["failed"] else 0
    done = [j.key for j in jobs if (workdir / "conformers" / f"{j.key}.npz").exists()]
    ds, prov = merge([workdir], out, command=getattr(args, "command_line", None),
                     expected_keys=done)
    console.print(f"wrote {out}: {len(ds)} conformers of {prov['n_molecules']} molecules, "
                  f"{int(ds.n_grid.sum())} ESP points; provenance next to it")
    if stats["failed"] or embed_failed:
        console.print(f"[yellow]{len(stats['failed'])} conformers failed and "
                      f"{len(embed_failed)} molecules could not be embedded; they are missing "
                      f"(reasons in {workdir / 'failed'}); rerun the same command to retry.[/]")
        return 1
    return 0


def run_merge(args) -> int:
    from rich.console import Console

    from dcmnet.generate.runner import merge

    ds, prov = merge(args.workdirs, args.out, command=getattr(args, "command_line", None))
    Console(stderr=True).print(f"wrote {args.out}: {len(ds)} conformers of "
                               f"{prov['n_molecules']} molecules")
    return 0


def run_molecules(args) -> int:
    """``dcmnet molecules``: write the molecule list and its provenance."""
    import collections
    import datetime
    from importlib import resources

    from rich.console import Console

    from dcmnet.fileio import atomic_write_json
    from dcmnet.generate import chemspace
    from dcmnet.generate.molecules import read_smiles_file
    from dcmnet.generate.runner import package_versions

    console = Console(stderr=True)
    exclude = args.exclude
    if exclude == "bundled":
        exclude = str(resources.files("dcmnet.data") / "bundled" / "molecules.smi")
    keep = [s.smiles for s in read_smiles_file(exclude)] if exclude else []
    console.print(f"building the molecule list ({args.n_molecules} molecules; RDKit "
                  "fragmentation of the NCI sample takes about a minute) ...")
    entries = chemspace.build_list(args.n_molecules, args.ion_fraction, args.test_fraction,
                                   args.seed, keep_train=keep)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    chemspace.write_list(entries, out)
    from rdkit import Chem

    heavy = collections.Counter(Chem.MolFromSmiles(e.smiles).GetNumHeavyAtoms()
                                for e in entries)
    elements = collections.Counter(a.GetSymbol() for e in entries
                                   for a in Chem.AddHs(Chem.MolFromSmiles(e.smiles)).GetAtoms())
    prov = {
        "generator": "dcmnet molecules",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": getattr(args, "command_line", None),
        "sources": {
            "nci": "RDKit Data/NCI/first_5K.smi, largest fragment, neutral",
            "brics": "BRICS fragments (rdkit.Chem.BRICS) of the NCI molecules, capped with H",
            "recap": "RECAP fragments (rdkit.Chem.Recap) of the NCI molecules, capped with H",
            "enum": "ring cores x substituents and R-X-R' chains (dcmnet.generate.chemspace)",
            "ion:*": "deprotonated acids / protonated bases of listed neutral molecules "
                     "(dcmnet.generate.chemspace.ION_RULES)",
        },
        "filters": {"heavy_atoms": [chemspace.MIN_HEAVY, chemspace.MAX_HEAVY],
                    "elements": "H C N O F S Cl", "closed_shell": True, "one_fragment": True},
        "split": "scaffold split: Bemis-Murcko scaffold (rings) or skeleton (acyclic) of the "
                 "neutral parent; groups drawn by seeded hash; excluded molecules' groups "
                 "always train",
        "excluded_list": exclude,
        "seed": args.seed,
        "versions": package_versions(),
        "n_molecules": len(entries),
        "by_origin": dict(sorted(collections.Counter(e.origin for e in entries).items())),
        "by_split": dict(collections.Counter(e.split for e in entries)),
        "by_net_charge": {str(k): v for k, v in
                          sorted(collections.Counter(e.net_charge for e in entries).items())},
        "by_heavy_atoms": {str(k): v for k, v in sorted(heavy.items())},
        "atoms_by_element": dict(elements.most_common()),
    }
    prov_path = out.with_suffix(".provenance.json")
    atomic_write_json(prov_path, prov)
    console.print(f"wrote {out} ({len(entries)} molecules: {prov['by_split']}, "
                  f"net charges {prov['by_net_charge']}) and {prov_path}")
    return 0
