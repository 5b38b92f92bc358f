"""Training and inference throughput of DCM-net, FLOP rate against the matmul peak, and
cost by molecule size.

    .venv/bin/python benchmarks/bench_training.py [--batch-sizes 1 2 4 8 16 32 64]
        [--steps 20] [--message-passing auto|dense|neighbors|pairs] [--sizes 10 30 100 300]
        [--profile] [--micro-batch M]

Default model (ModelConfig defaults) on the bundled dataset. Table 1, per batch size:
steady-state (after compilation) training and inference molecules/s over whole epochs
(every batch of the bucketed epoch, repeated to at least ``--steps`` batches; only real
molecules count, not the dummies that fill a bucket's last batch), the train step's
FLOPs per molecule (XLA's cost analysis of the compiled step), the achieved GFLOP/s and
its fraction of the measured peak of a 1024³ float32 matmul on the same device. Table 2,
synthetic molecules of 10/30/100/300 atoms (40 ESP points per atom, batch 4): training
time and XLA temporary memory per molecule, and the pair layout used. ``--profile``
times the pieces of one train step separately (model forward+backward, ESP+loss
forward+backward, optimizer update, host-side batching). Times are wall-clock; the
process CPU time is printed too, since the machine is shared (state ``uptime``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from dcmnet.config import create_default_config
from dcmnet.data.batching import BatchIterator, bucket_shapes
from dcmnet.data.loader import load_dataset
from dcmnet.training.loss import loss_and_metrics, weights_array
from dcmnet.model import create_model, predict_batch
from dcmnet.training.optim import make_optimizer
from dcmnet.training.steps import build_steps
from dcmnet.training.state import init_state


def matmul_peak(n: int = 1024, reps: int = 20) -> float:
    """GFLOP/s of a jitted n³ float32 matmul (best of ``reps``)."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _timed(fn, args_list):
    t0, c0 = time.perf_counter(), time.process_time()
    out = None
    for args in args_list:
        out = fn(*args)
    jax.block_until_ready(out)
    return time.perf_counter() - t0, time.process_time() - c0


def _flops(jitted, *args) -> float:
    cost = jitted.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", np.nan))


def _setup(data, batch_size, mp, accumulation: int = 1):
    cfg = create_default_config("bench", batch_size=batch_size,
                                gradient_accumulation_steps=accumulation)
    model = dataclasses.replace(create_model(**dataclasses.asdict(cfg.model)),
                                message_passing=mp)
    shapes = bucket_shapes(data, batch_size=batch_size)
    batches = list(BatchIterator(data, batch_size, shuffle=True, seed=0,
                                 shapes=shapes).epoch_batches(0))
    tx = make_optimizer(cfg.training, len(batches))
    train_step, _ = build_steps(model, tx, cfg)
    return cfg, model, batches, tx, train_step


def bench(data, batch_size: int, steps: int, mp: str, micro: int = 0) -> dict:
    """One row of table 1. ``micro`` > 0 and below ``batch_size``: the batch is trained as
    micro-batches of ``micro`` molecules with gradient accumulation (optax.MultiSteps, one
    update per ``batch_size // micro`` micro-batches: the same update as one batch)."""
    acc = batch_size // micro if 0 < micro < batch_size else 1
    if acc > 1 and batch_size % micro:
        raise SystemExit(f"batch {batch_size} is not a multiple of --micro-batch {micro}")
    cfg, model, batches, tx, train_step = _setup(data, batch_size // acc, mp, acc)
    w = weights_array(1.0, 0.0, 0.0)
    state = init_state(model, tx, batches[0], 0)
    # whole epochs (every padding shape in its share), at least ``steps`` batches; only
    # real molecules count (the dummies that fill each bucket's last batch do not)
    reps = max(1, -(-steps // len(batches)))
    timed = batches * reps
    n_mol = reps * sum(int((b["index"] >= 0).sum()) for b in batches)
    # FLOPs of the compiled step, summed over the timed batches
    flops, seen = 0.0, {}
    for b in batches:
        key = b["Z"].shape + b["grid"].shape
        if key not in seen:
            seen[key] = _flops(train_step, state, b, w)
        flops += reps * seen[key]
    for b in batches:  # compile every padding shape once
        state, loss, _ = train_step(state, b, w)
    jax.block_until_ready(loss)
    t0, c0 = time.perf_counter(), time.process_time()
    for b in timed:
        state, loss, _ = train_step(state, b, w)
    jax.block_until_ready(loss)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    fwd = jax.jit(lambda p, b: predict_batch(model, p, b)["esp"])
    for b in batches:
        jax.block_until_ready(fwd(state["params"], b))
    infer_s, _ = _timed(fwd, [(state["params"], b) for b in timed])
    return {"batch": batch_size if acc == 1 else f"{batch_size // acc}x{acc}",
            "shapes": len(seen),
            "train_mol_s": n_mol / train_s, "cpu_ms": 1000 * train_cpu / len(timed),
            "infer_mol_s": n_mol / infer_s,
            "mflop_mol": flops / n_mol / 1e6, "gflop_s": flops / train_s / 1e9}


def synthetic_batch(n_atoms: int, batch_size: int, points_per_atom: int = 40, seed=0):
    """A batch of random organic-like molecules (C/H/O, ≈ 0.1 atoms/Å³) with ESP points."""
    rng = np.random.default_rng(seed)
    side = (n_atoms / 0.1) ** (1 / 3)
    B, A, G = batch_size, n_atoms, points_per_atom * n_atoms
    R = rng.uniform(0, side, (B, A, 3)).astype(np.float32)
    Z = rng.choice([1, 6, 8], (B, A)).astype(np.int32)
    grid = (rng.uniform(-2, side + 2, (B, G, 3))).astype(np.float32)
    f = np.float32
    return {"Z": Z, "R": R, "atom_mask": np.ones((B, A), f), "grid": grid,
            "esp": rng.normal(0, 0.01, (B, G)).astype(f), "grid_mask": np.ones((B, G), f),
            "mol_mask": np.ones(B, f), "net_charge": np.zeros(B, f),
            "mono": np.zeros((B, A), f), "mono_mask": np.zeros(B, f),
            "dipole": np.zeros((B, 3), f), "dipole_mask": np.zeros(B, f),
            "com": R.mean(1), "index": np.arange(B, dtype=np.int32)}


def bench_size(n_atoms: int, mp: str, batch_size: int = 4, steps: int = 3) -> dict:
    cfg = create_default_config("bench", batch_size=batch_size)
    cfg.training.esp_chunk_size = 4096
    model = dataclasses.replace(create_model(**dataclasses.asdict(cfg.model)),
                                message_passing=mp)
    b = synthetic_batch(n_atoms, batch_size)
    tx = make_optimizer(cfg.training, 100)
    train_step, _ = build_steps(model, tx, cfg)
    w = weights_array(1.0, 0.0, 0.0)
    state = init_state(model, tx, b, 0)
    mem = train_step.lower(state, b, w).compile().memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", np.nan) if mem is not None else np.nan
    state, loss, _ = train_step(state, b, w)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, loss, _ = train_step(state, b, w)
    jax.block_until_ready(loss)
    dt = (time.perf_counter() - t0) / steps
    return {"atoms": n_atoms, "points": b["grid"].shape[1], "layout": model.pair_layout(n_atoms),
            "ms_mol": 1000 * dt / batch_size, "mb_mol": temp / batch_size / 2**20}


def profile(data, batch_size: int, steps: int, mp: str) -> None:
    """Times the pieces of one train step separately (ms per step)."""
    cfg, model, batches, tx, train_step = _setup(data, batch_size, mp)
    w = weights_array(1.0, 0.0, 0.0)
    state = init_state(model, tx, batches[0], 0)
    params = state["params"]
    b = batches[0]
    n = steps
    out = model.apply(params, b["Z"], b["R"], b["atom_mask"], b["net_charge"])

    def model_loss(p, b):
        c, x = model.apply(p, b["Z"], b["R"], b["atom_mask"], b["net_charge"])
        return jnp.sum(c) + jnp.sum(x)

    def esp_loss(out, b):
        class Fixed:  # the model replaced by its (fixed) outputs
            @staticmethod
            def apply(p, *a):
                return p
        return loss_and_metrics(Fixed, out, b, w)[0]

    pieces = {
        "model fwd+bwd": (jax.jit(jax.grad(model_loss)), (params, b)),
        "model fwd": (jax.jit(model_loss), (params, b)),
        "ESP+loss fwd+bwd": (jax.jit(jax.grad(esp_loss)), (out, b)),
        "optimizer update": (jax.jit(lambda g, s, p: tx.update(g, s, p)[0]),
                             (params, state["opt_state"], params)),
        "full train step": (train_step, None),
    }
    print(f"profile, batch {batch_size}, shape {b['Z'].shape[1]} atoms × "
          f"{b['grid'].shape[1]} points, layout {model.pair_layout(b['Z'].shape[1])}:")
    for name, (fn, args) in pieces.items():
        if args is None:
            st = state
            for _ in range(2):
                st, loss, _ = fn(st, b, w)
            jax.block_until_ready(loss)
            t0 = time.perf_counter()
            for _ in range(n):
                st, loss, _ = fn(st, b, w)
            jax.block_until_ready(loss)
            dt = time.perf_counter() - t0
        else:
            jax.block_until_ready(fn(*args))
            dt, _ = _timed(fn, [args] * n)
        print(f"  {name:<18} {1000 * dt / n:8.2f} ms")
    it = BatchIterator(data, batch_size, shuffle=True, seed=0)
    t0 = time.perf_counter()
    k = sum(1 for _ in it.epoch_batches(0))
    print(f"  {'host batching':<18} {1000 * (time.perf_counter() - t0) / k:8.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    ap.add_argument("--steps", type=int, default=20,
                    help="timed steps per batch size, at least (rounded up to whole epochs)")
    ap.add_argument("--message-passing", default="auto",
                    choices=["auto", "dense", "neighbors", "pairs"])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10, 30, 100, 300])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--micro-batch", type=int, default=0, metavar="M",
                    help="train batch sizes above M as micro-batches of M with gradient "
                         "accumulation (dcmnet train --batch-size M "
                         "--gradient-accumulation-steps B/M); rows read MxK")
    ap.add_argument("--data-files", nargs="+", default=None)
    args = ap.parse_args()
    data = load_dataset(args.data_files, verbose=False)
    peak = matmul_peak()
    print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}, jax {jax.__version__}; "
          f"{len(data)} molecules; default model; message passing {args.message_passing}; "
          f"1024³ f32 matmul peak {peak:.0f} GFLOP/s; load {os.getloadavg()[0]:.2f}")
    if args.profile:
        profile(data, 16, args.steps, args.message_passing)
    print(f"{'batch':>5} {'shapes':>6} {'train mol/s':>11} {'cpu ms/step':>11} "
          f"{'infer mol/s':>11} {'MFLOP/mol':>9} {'GFLOP/s':>8} {'of peak':>7}")
    for bs in args.batch_sizes:
        r = bench(data, bs, args.steps, args.message_passing, args.micro_batch)
        print(f"{r['batch']:>5} {r['shapes']:>6} {r['train_mol_s']:>11.0f} {r['cpu_ms']:>11.1f} "
              f"{r['infer_mol_s']:>11.0f} {r['mflop_mol']:>9.2f} {r['gflop_s']:>8.1f} "
              f"{r['gflop_s'] / peak:>7.1%}", flush=True)
    if args.sizes:
        print(f"{'atoms':>5} {'points':>6} {'layout':>9} {'train ms/mol':>12} {'temp MB/mol':>11}")
        for n in args.sizes:
            r = bench_size(n, args.message_passing)
            print(f"{r['atoms']:>5} {r['points']:>6} {r['layout']:>9} {r['ms_mol']:>12.2f} "
                  f"{r['mb_mol']:>11.1f}", flush=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
