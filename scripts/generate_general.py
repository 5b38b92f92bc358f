"""Generate the general model's reference data in chunks of the molecule list.

Each chunk of ``--chunk-size`` molecules (in list order) is one ``dcmnet generate`` run
with its own work folder; when it finishes, its canonical dataset and provenance are
written to ``data/general/shards/chunk_NNN.npz`` / ``.provenance.json`` and the per-conformer
cost is appended to ``data/general/shards/timing.csv``. Finished chunks are skipped, an
interrupted chunk resumes from its work folder, so the script can be stopped and restarted
at any time. Before a session ends, copy unfinished work folders to
``data/general/partial/chunk_NNN/`` and commit them: the next run (on any machine) resumes
from there and removes them when the chunk is finished.

Usage (low priority, one worker, leaving the other core free)::

    nice -n 19 .venv/bin/python scripts/generate_general.py --workers 1
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def chunk_lines(list_path: Path, size: int) -> list[list[str]]:
    lines = [ln for ln in list_path.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return [lines[i:i + size] for i in range(0, len(lines), size)]


def append_timing(workdir: Path, timing: Path) -> None:
    new = not timing.exists()
    with open(timing, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["key", "n_atoms", "n_heavy", "n_grid", "net_charge", "seconds"])
        for f in sorted((workdir / "conformers").glob("*.npz")):
            with np.load(f, allow_pickle=False) as z:
                Z = z["Z"]
                w.writerow([f.stem, len(Z), int((Z > 1).sum()), len(z["esp"]),
                            int(z["net_charge"]), f"{float(z['seconds']):.2f}"])


def append_failures(workdir: Path, path: Path) -> None:
    import json

    rows = [json.loads(f.read_text()) for f in sorted((workdir / "failed").glob("*.json"))]
    if not rows:
        return
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["key", "reason"])
        for r in rows:
            w.writerow([r["key"], r["error"]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", default=str(ROOT / "data/general/molecules.smi"))
    ap.add_argument("--shards", default=str(ROOT / "data/general/shards"))
    ap.add_argument("--work", default=str(ROOT / "scratch/general.work"))
    ap.add_argument("--chunk-size", type=int, default=50)
    ap.add_argument("--n-conformers", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-chunks", type=int, default=None)
    ap.add_argument("--reverse", action="store_true",
                    help="take chunks from the end (a second instance beside a forward one)")
    args = ap.parse_args()
    shards, work = Path(args.shards), Path(args.work)
    shards.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    chunks = chunk_lines(Path(args.list), args.chunk_size)
    done_now = 0
    order = list(enumerate(chunks))
    for k, lines in (reversed(order) if args.reverse else order):
        out = shards / f"chunk_{k:03d}.npz"
        if out.exists():
            continue
        if args.max_chunks is not None and done_now >= args.max_chunks:
            break
        partial = shards.parent / "partial" / f"chunk_{k:03d}"
        if partial.is_dir() and not (work / f"chunk_{k:03d}").exists():
            # conformers of an unfinished chunk committed by an earlier session: resume them
            import shutil
            shutil.copytree(partial, work / f"chunk_{k:03d}")
        smi = work / f"chunk_{k:03d}.smi"
        smi.write_text("\n".join(lines) + "\n")
        cmd = [sys.executable, "-m", "dcmnet", "generate", "--smiles", str(smi),
               "--n-conformers", str(args.n_conformers), "--out", str(out),
               "--workdir", str(work / f"chunk_{k:03d}"), "--workers", str(args.workers),
               "--no-progress"]
        t0 = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] chunk {k + 1}/{len(chunks)}", flush=True)
        rc = subprocess.call(cmd)
        if not out.exists():
            print(f"chunk {k}: no dataset written (exit {rc}); stopping", flush=True)
            return 1
        if partial.is_dir():
            import shutil
            shutil.rmtree(partial)
        append_timing(work / f"chunk_{k:03d}", shards / "timing.csv")
        append_failures(work / f"chunk_{k:03d}", shards / "failures.csv")
        print(f"[{time.strftime('%H:%M:%S')}] chunk {k} done in {time.time() - t0:.0f} s "
              f"(exit {rc})", flush=True)
        done_now += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
