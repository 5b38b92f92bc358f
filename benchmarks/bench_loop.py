"""Cost of reading results back from the device inside an epoch (issue 13).

Times epochs of the default train step on the bundled data three ways, best of ``--reps``
epochs each, interleaved: no read until the epoch's end (the step alone), a read of the
loss and metric sums after every step (the trainer before 2026-12-04), and a read every
:data:`dcmnet.training.loop.SYNC_EVERY` steps (the trainer now). A read waits for the
step, so the host cannot dispatch the next one while the device computes.

Usage::

    python benchmarks/bench_loop.py [--batch-size 16] [--reps 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(__file__))
from bench_training import _setup  # noqa: E402

from dcmnet.data.loader import load_dataset  # noqa: E402
from dcmnet.training.loop import SYNC_EVERY  # noqa: E402
from dcmnet.training.loss import accumulate, weights_array  # noqa: E402
from dcmnet.training.state import init_state  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data = load_dataset(None, verbose=False)
    _, model, batches, tx, train_step = _setup(data, args.batch_size, "auto")
    w = weights_array(1.0)
    state = init_state(model, tx, batches[0], 0)

    def epoch(state, every: int):
        pending, total = [], None
        for b in batches:
            state, loss, sums = train_step(state, b, w)
            pending.append((loss, sums))
            if every and len(pending) == every:
                for lo, s in jax.device_get(pending):
                    float(lo)
                    total = accumulate(total, s)
                pending = []
        jax.block_until_ready(pending[-1][0] if pending else loss)
        return state

    modes = {"read at the end only": 0, "read every step": 1,
             f"read every {SYNC_EVERY} steps": SYNC_EVERY}
    state = epoch(state, 0)  # compile every padding shape
    print(f"batch {args.batch_size}, {len(batches)} steps per epoch, "
          f"{len(jax.devices())} device(s), load {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for name, every in modes.items():
            best = float("inf")
            for _ in range(args.reps):
                t0 = time.perf_counter()
                state = epoch(state, every)
                best = min(best, time.perf_counter() - t0)
            print(f"  {name:<24} {best:.3f} s per epoch", flush=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
