"""Assemble the general model's training and test datasets from the generated shards.

Reads every finished ``data/general/shards/chunk_*.npz`` and the scaffold-split labels of
``data/general/molecules.smi``; writes (derived files, not committed)::

    scratch/general/train.npz   training molecules of the split + the bundled dataset
    scratch/general/test.npz    held-out (test) molecules of the split

Names in the shards are the list's names (``g00042``); a molecule never appears in both.

Usage: .venv/bin/python scripts/build_general_datasets.py [--no-bundled]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from dcmnet.data.dataset import Dataset
    from dcmnet.data.loader import bundled_dataset_path
    from dcmnet.generate.chemspace import read_list_labels

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", default=str(ROOT / "data/general/molecules.smi"))
    ap.add_argument("--shards", default=str(ROOT / "data/general/shards"))
    ap.add_argument("--out", default=str(ROOT / "scratch/general"))
    ap.add_argument("--bundled", action=argparse.BooleanOptionalAction, default=True,
                    help="add the bundled dataset (same level of theory) to training")
    args = ap.parse_args()
    labels = read_list_labels(args.list)
    files = sorted(Path(args.shards).glob("chunk_*.npz"))
    if not files:
        print(f"no shards in {args.shards}", file=sys.stderr)
        return 1
    full = Dataset.concatenate([Dataset.load(f) for f in files])
    split = np.array([labels[str(n)]["split"] for n in full.name])
    train = full.subset(np.flatnonzero(split == "train"))
    test = full.subset(np.flatnonzero(split == "test"))
    if args.bundled:
        train = Dataset.concatenate([train, Dataset.load(bundled_dataset_path())])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train.save(out / "train.npz")
    test.save(out / "test.npz")
    for tag, ds in (("train", train), ("test", test)):
        print(f"{out / (tag + '.npz')}: {len(ds)} conformers of {len(set(ds.name))} molecules "
              f"(net charges {sorted(set(int(q) for q in ds.net_charge))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
