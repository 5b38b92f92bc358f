"""Copy a trained experiment into the package as a shipped model with a model card.

Writes ``src/dcmnet/models/NAME/``: ``config.json`` (the experiment's), an orbax checkpoint
``checkpoints/best/<step>/`` with only the (EMA) parameters, ``card.json`` and ``card.md``.
The card's domain (elements, net charges, largest molecule) is read from the training
molecules of the experiment's split; its accuracy table is added by
``benchmarks/bench_general.py --write-card``.

Usage::

    .venv/bin/python scripts/ship_model.py experiments/general --name dcmnet-general \
        --summary "..." --level "B3LYP/def2-SVP (PySCF, density fitting)"
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from dcmnet.training.checkpoint import CheckpointStore
    from dcmnet.config import ExperimentConfig
    from dcmnet.data.loader import load_dataset
    from dcmnet.data.split import load_split
    from dcmnet.training.experiment import CONFIG_NAME, SPLIT_NAME, find_experiment_dir, load_experiment
    from dcmnet.fileio import atomic_write_text
    from dcmnet.models import MODELS_DIR, ModelCard, render_card_markdown

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment")
    ap.add_argument("--name", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--level", default="B3LYP/def2-SVP")
    ap.add_argument("--level-note", default="PySCF 'b3lyp' (VWN-RPA variant, as in Gaussian), "
                                            "density fitting, DFT grid level 1; ESP on 1.4-2.0 "
                                            "x vdW shells")
    ap.add_argument("--command", action="append", default=[],
                    help="a command that reproduces the data/training (repeatable)")
    args = ap.parse_args()

    exp = find_experiment_dir(args.experiment)
    cfg = ExperimentConfig.load(exp / CONFIG_NAME)
    _, _, params, meta = load_experiment(exp, kind="best")
    full = load_dataset(cfg.data_files or None)
    split = load_split(exp / SPLIT_NAME, len(full))
    train = full.subset(split.train)
    heavy = [int((train.molecule(i)["Z"] > 1).sum()) for i in range(len(train))]
    dst = MODELS_DIR / args.name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    shutil.copy(exp / CONFIG_NAME, dst / CONFIG_NAME)
    params = {"params": {k: v for k, v in params.items()}} if isinstance(params, dict) else \
        {"params": params}
    step = int(meta.get("epoch", 0)) if isinstance(meta, dict) else 0
    with CheckpointStore(dst) as store:
        store.save("best", step, params, {"epoch": step, "source": exp.name,
                                          "best_valid_loss": (meta or {}).get("best_valid_loss")})
    card = ModelCard(
        name=args.name, summary=args.summary, n_dcm=cfg.model.n_dcm,
        level_of_theory=args.level,
        elements=sorted(int(z) for z in np.unique(train.Z)),
        net_charges=sorted({int(round(q)) for q in train.net_charge}),
        max_heavy_atoms=max(heavy),
        data={"training molecules": len(set(train.name)), "training conformers": len(train),
              "validation conformers (early stopping)": len(split.valid),
              "files": ", ".join(Path(f).name for f in cfg.data_files) or "bundled",
              "level of theory": args.level_note},
        split={"held-out set": "test molecules of data/general/molecules.smi (scaffold split); "
                               "no conformer of a test molecule in training"},
        commands=args.command)
    atomic_write_text(dst / "card.json", json.dumps(card.to_dict(), indent=2))
    atomic_write_text(dst / "card.md", render_card_markdown(card))
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"shipped {exp} as {dst} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
