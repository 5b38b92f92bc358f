"""Peak memory and step time of training from a memory-mapped .npy folder, by dataset size.

Writes synthetic datasets of small molecules (4–16 atoms, 300–900 ESP points; ≈ 10 KB per
conformer on disk) as ``dcmnet convert --format npy-dir`` folders, then, for each size, in a
fresh process, does what ``dcmnet train DATA`` does before and during its first epoch:
opens the folder (``load_dataset``), splits 90/10 and saves the split, takes the subsets,
computes the bucket shapes, builds the default model and optimizer, and then

* ``train``: runs ``--steps`` training steps on batches drawn (shuffled) from the whole
  training set, assembled by the background prefetcher (:mod:`dcmnet.data.prefetch`);
* ``compute only``: the same number of steps on batches already in memory (in blocks
  of 10 steps alternating with ``train``'s, so that changes of the machine load hit both);
* ``load only``: one full epoch of batches (every training molecule) through the
  prefetcher, without the model — this reads every molecule's data once;

and prints the peak resident memory (``ru_maxrss``) of the process after each phase. Not a
test: the numbers depend on the machine and its load.

    python benchmarks/bench_memory.py --sizes 1000 1000000 --steps 150
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 20000


def synthetic_chunk(rng, m: int, first: int):
    """A :class:`Dataset` of ``m`` random small molecules (values finite, not physical)."""
    from dcmnet.data.dataset import Dataset

    na = rng.integers(4, 17, m).astype(np.int32)
    ng = rng.integers(300, 901, m).astype(np.int32)
    A, G = int(na.sum()), int(ng.sum())
    steps = rng.normal(size=(A, 3))
    R = np.cumsum(1.5 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    mol_a = np.repeat(np.arange(m), na)
    R -= R[np.concatenate([[0], np.cumsum(na)[:-1]])][mol_a]        # each molecule near 0
    dirs = rng.normal(size=(G, 3)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    grid = (3.0 + 2.0 * rng.random((G, 1), dtype=np.float32)) * dirs
    names = np.array([f"syn{(first + i) // 10}" for i in range(m)])   # 10 conformers each
    return Dataset(n_atoms=na, n_grid=ng, Z=rng.choice(np.array([1, 6, 7, 8], np.int32), A),
                   R=R, grid=grid, esp=rng.normal(0, 0.01, G).astype(np.float32),
                   net_charge=np.zeros(m), mono=rng.normal(0, 0.3, A),
                   has_mono=np.ones(m, bool), dipole=rng.normal(size=(m, 3)),
                   has_dipole=np.ones(m, bool), name=names, source="synthetic")


def write_synthetic(path: Path, n: int) -> None:
    from dcmnet.data.ondisk_writer import NpyDirWriter

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with NpyDirWriter(path, {"synthetic": True, "n": n}) as w:
        for s in range(0, n, CHUNK):
            w.append(synthetic_chunk(rng, min(CHUNK, n - s), s))
    size = sum(f.stat().st_size for f in path.iterdir()) / 1e9
    print(f"wrote {n} synthetic conformers to {path} ({size:.2f} GB, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mb(key: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def child(path: str, steps: int, batch_size: int) -> dict:
    """One size, in this process: the trainer's setup, then the three phases."""
    import dataclasses
    import tempfile

    import jax

    from dcmnet.config import create_default_config
    from dcmnet.data.batching import BatchIterator, bucket_shapes
    from dcmnet.data.dataset import Dataset
    from dcmnet.data.loader import load_dataset
    from dcmnet.data.prefetch import prefetch_batches
    from dcmnet.data.split import save_split, split_indices
    from dcmnet.training.loss import weights_array
    from dcmnet.model import check_atomic_numbers, create_model
    from dcmnet.training.optim import make_optimizer
    from dcmnet.training.steps import build_steps
    from dcmnet.training.state import init_state

    out = {"n": 0, "phases": {}}
    t0 = time.perf_counter()
    data = load_dataset(path, verbose=False)
    tr, va = split_indices(len(data), seed=42)
    with tempfile.TemporaryDirectory() as tmp:
        save_split(Path(tmp) / "split.json", tr, va, 42)
    train, valid = data.subset(tr), data.subset(va)
    del tr, va
    cfg = create_default_config("bench", batch_size=batch_size)
    check_atomic_numbers(train.Z, cfg.model.max_atomic_number)
    shapes = bucket_shapes(Dataset.concatenate([train, valid]), batch_size=batch_size)
    it = BatchIterator(train, batch_size, shuffle=True, seed=42, shapes=shapes)
    model = create_model(**dataclasses.asdict(cfg.model))
    tx = make_optimizer(cfg.training, len(it))
    train_step, _ = build_steps(model, tx, cfg)
    weights = weights_array(cfg.training.esp_w, cfg.training.chg_w, cfg.training.dipole_w)
    state = init_state(model, tx, next(iter(it.epoch_batches(0))), 42)
    out.update(n=len(data), shapes=shapes, batches_per_epoch=len(it))
    out["phases"]["setup"] = {"peak_rss_mb": _peak_mb(), "s": time.perf_counter() - t0}

    # compile every padding shape first (compilation is not step time)
    warm = {}
    for k, chunk in it.batch_plan(0):
        if k not in warm:
            warm[k] = next(it._batches([(k, chunk)]))
        if len(warm) == len(shapes):
            break
    for b in warm.values():
        state, loss, _ = train_step(state, b, weights)
        jax.block_until_ready(loss)

    def epochs():                     # as many epochs as --steps needs (small datasets)
        for e in range(1, 10**6):
            yield from prefetch_batches(it, e)

    cached = [b for _, b in zip(range(16), it.epoch_batches(2))]
    loading, times = epochs(), {"train": 0.0, "compute only": 0.0}
    loading = itertools.chain([next(loading)], loading)   # epoch plan made before timing
    # alternate blocks of 10 steps with and without loading: a changing machine load
    # (other jobs) then affects both alike
    for s in range(0, steps, 10):
        for name, src in (("train", loading), ("compute only", itertools.cycle(cached))):
            t = time.perf_counter()
            for _ in range(min(10, steps - s)):
                state, loss, _ = train_step(state, next(src), weights)
                float(loss)
            times[name] += time.perf_counter() - t
    del loading                       # stops the prefetch thread
    for name, t in times.items():
        out["phases"][name] = {"peak_rss_mb": _peak_mb(), "ms_per_step": 1e3 * t / steps}
    t = time.perf_counter()
    n_b = sum(1 for _ in prefetch_batches(it, 0))
    dt = time.perf_counter() - t
    out["phases"]["load only"] = {"peak_rss_mb": _peak_mb(), "ms_per_batch": 1e3 * dt / n_b,
                                  "batches": n_b, "s": dt}
    out["rss_end_mb"] = {"anon": _status_mb("RssAnon"), "file": _status_mb("RssFile")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 1000000])
    ap.add_argument("--data-dir", default="scratch/bench_memory")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.batch_size)))
        return
    root = Path(args.data_dir)
    rows = []
    for n in args.sizes:
        path = root / f"synthetic_{n}.npyd"
        if not path.exists():
            write_synthetic(path, n)
        res = subprocess.run([sys.executable, __file__, "--child", str(path), "--steps",
                              str(args.steps), "--batch-size", str(args.batch_size)],
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if res.returncode:
            sys.exit(f"the run for {n} conformers failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"\n{r['n']:,} conformers, {r['batches_per_epoch']:,} batches of "
              f"{args.batch_size}/epoch, shapes {r['shapes']}", flush=True)
        for name, ph in r["phases"].items():
            extra = ", ".join(f"{k} {v:.1f}" for k, v in ph.items() if k != "peak_rss_mb")
            print(f"  {name:>13}: peak RSS {ph['peak_rss_mb']:8.1f} MB  {extra}", flush=True)
        print(f"  RSS at the end: anonymous {r['rss_end_mb']['anon']:.1f} MB, file-backed "
              f"{r['rss_end_mb']['file']:.1f} MB", flush=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        ratio = b["phases"]["load only"]["peak_rss_mb"] / a["phases"]["load only"]["peak_rss_mb"]
        print(f"\npeak RSS ratio {b['n']:,} / {a['n']:,} conformers: {ratio:.2f} "
              f"(target ≤ 1.5)")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
