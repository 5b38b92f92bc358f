"""Training and inference throughput, compile time and peak memory of DCM-net.

Default model (ModelConfig defaults) on the bundled dataset, batch sizes 1, 8 and 32.
Prints one table; numbers go to BENCHMARKS.md together with this command:

    .venv/bin/python benchmarks/bench_training.py [--batch-sizes 1 8 32] [--steps 20]

Throughput is steady state (after compilation), in molecules per second. Peak memory is
the device's ``peak_bytes_in_use`` when the backend reports it (GPU), else the process's
peak resident set size (CPU; includes Python, JAX and the dataset).
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import jax

from dcmnet.config import create_default_config
from dcmnet.data.batching import BatchIterator, bucket_shapes
from dcmnet.data.loader import load_dataset
from dcmnet.training.loss import predict, weights_array
from dcmnet.model import create_model
from dcmnet.training.optim import make_optimizer
from dcmnet.training.loop import _build_steps
from dcmnet.training.state import init_state


def peak_memory_mb() -> tuple[float, str]:
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20, "device peak"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def bench(data, batch_size: int, steps: int) -> dict:
    cfg = create_default_config("bench", batch_size=batch_size)
    model = create_model(**dataclasses.asdict(cfg.model))
    shapes = bucket_shapes(data, batch_size=batch_size)
    it = BatchIterator(data, batch_size, shuffle=True, seed=0, shapes=shapes)
    batches = list(it.epoch_batches(0))
    tx = make_optimizer(cfg.training, len(batches))
    train_step, _ = _build_steps(model, tx, cfg)
    w = weights_array(1.0, 0.0, 0.0)
    state = init_state(model, tx, batches[0], 0)
    # compile every padding shape once
    t0 = time.perf_counter()
    seen = set()
    for b in batches:
        key = b["Z"].shape + b["grid"].shape
        if key not in seen:
            seen.add(key)
            state, loss, _ = train_step(state, b, w)
            jax.block_until_ready(loss)
    compile_s = time.perf_counter() - t0
    n = min(steps, len(batches))
    t0 = time.perf_counter()
    for b in batches[:n]:
        state, loss, _ = train_step(state, b, w)
    jax.block_until_ready(loss)
    train_s = time.perf_counter() - t0
    fwd = jax.jit(lambda p, b: predict(model, p, b)["esp"])
    for b in batches:
        jax.block_until_ready(fwd(state["params"], b))
    t0 = time.perf_counter()
    for b in batches[:n]:
        out = fwd(state["params"], b)
    jax.block_until_ready(out)
    infer_s = time.perf_counter() - t0
    mem, kind = peak_memory_mb()
    return {"batch": batch_size, "shapes": len(seen), "compile_s": compile_s,
            "train_mol_s": n * batch_size / train_s, "step_ms": 1000 * train_s / n,
            "infer_mol_s": n * batch_size / infer_s, "peak_mb": mem, "mem_kind": kind}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per batch size")
    ap.add_argument("--data-files", nargs="+", default=None)
    args = ap.parse_args()
    data = load_dataset(args.data_files, verbose=False)
    print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}, jax {jax.__version__}; "
          f"{len(data)} molecules; default model")
    print(f"{'batch':>5} {'shapes':>6} {'compile s':>9} {'train mol/s':>11} {'step ms':>8} "
          f"{'infer mol/s':>11} {'peak MB':>8}  memory")
    for bs in args.batch_sizes:
        r = bench(data, bs, args.steps)
        print(f"{r['batch']:>5} {r['shapes']:>6} {r['compile_s']:>9.1f} {r['train_mol_s']:>11.1f} "
              f"{r['step_ms']:>8.1f} {r['infer_mol_s']:>11.1f} {r['peak_mb']:>8.0f}  "
              f"{r['mem_kind']}", flush=True)


if __name__ == "__main__":
    main()
