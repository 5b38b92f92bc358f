"""Energy + forces with DCM-net charges for a box of waters (one MD step's electrostatics).

Builds ``--n-waters`` waters on a cubic lattice (3.1 Å spacing, random orientations,
periodic cell), runs :class:`dcmnet.md.DCMSystem` (DCM-net over every molecule, shifted-force
Coulomb with minimum image, forces by autodiff through the network) and prints the compile
time and the steady-state time of one energy + forces evaluation (median of ``--repeat``),
plus the number of charge sites. The model is the default architecture
(:class:`dcmnet.config.ModelConfig`) with random weights, or ``--model`` (experiment folder
or shipped name): the cost does not depend on the weights.

Usage::

    .venv/bin/python benchmarks/bench_md.py --n-waters 1000 --cutoff 9.0
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def water_box(n: int, spacing: float = 3.1, seed: int = 0):
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    side = int(np.ceil(n ** (1 / 3)))
    w = molecule("H2O")
    com = w.get_center_of_mass()
    rng = np.random.default_rng(seed)
    pos, Z = [], []
    for k in range(n):
        i, j, kz = k % side, (k // side) % side, k // side ** 2
        rot = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
        pos.append((w.positions - com) @ rot.T + spacing * np.array([i, j, kz]))
        Z.extend(w.numbers)
    return np.array(Z), np.concatenate(pos), np.eye(3) * spacing * side


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-waters", type=int, default=1000)
    ap.add_argument("--cutoff", type=float, default=9.0, help="Å (shifted force)")
    ap.add_argument("--model", default=None, help="experiment folder or shipped model name")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--tiny", action="store_true", help="20 waters, tiny model (tests)")
    args = ap.parse_args(argv)

    import jax

    from dcmnet.md import DCMSystem

    n = 20 if args.tiny else args.n_waters
    if args.model:
        from dcmnet.training.experiment import load_experiment
        _, model, params, _ = load_experiment(args.model)
    else:
        from dcmnet.model import create_model
        kw = dict(n_dcm=2, features=8, max_degree=1, num_iterations=1) if args.tiny else {}
        model = create_model(**kw)
        params = jax.jit(model.init)(jax.random.PRNGKey(0), np.array([[8, 1, 1]]),
                                     np.zeros((1, 3, 3), np.float32) + np.eye(3)[None],
                                     np.ones((1, 3)), np.zeros(1))
    Z, R, cell = water_box(n)
    cutoff = min(args.cutoff, 0.5 * cell[0, 0] - 1e-6)
    mol = np.repeat(np.arange(n), 3)
    sysm = DCMSystem(model, params, Z, mol, np.zeros(n), cutoff=cutoff,
                     block_size=args.block_size)
    t0 = time.perf_counter()
    out = sysm.compute(R, cell=cell)
    t_first = time.perf_counter() - t0
    times = []
    for k in range(args.repeat):
        R2 = R + 1e-3 * (k + 1)
        t0 = time.perf_counter()
        out = sysm.compute(R2, cell=cell)
        times.append(time.perf_counter() - t0)
    n_sites = out["charges"].size
    print(f"waters {n}, atoms {3 * n}, charge sites {n_sites} (n_dcm {model.n_dcm}, "
          f"features {model.features}, iterations {model.num_iterations}), cell "
          f"{cell[0, 0]:.1f} Å, cutoff {cutoff:.1f} Å shifted force, device "
          f"{jax.devices()[0].platform}")
    print(f"first call (compile + run) {t_first:.2f} s; energy + forces "
          f"{statistics.median(times) * 1e3:.1f} ms median of {args.repeat} "
          f"(min {min(times) * 1e3:.1f} ms); E = {out['energy']:.4f} eV, "
          f"max |F| = {np.abs(out['forces']).max():.4f} eV/Å")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
