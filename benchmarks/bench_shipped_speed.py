"""Speed of a shipped model for one molecule: import + load + first prediction (a fresh
process, as a user's script starts), then the steady-state time per prediction.

Usage: .venv/bin/python benchmarks/bench_shipped_speed.py [--model dcmnet-general]
Prints wall times in seconds; the molecule is QM9-sized (9 heavy atoms, 17 atoms).
"""
import argparse
import subprocess
import sys
import time

CHILD = r"""
import time, sys
t0 = time.perf_counter()
import numpy as np
from dcmnet.inference.predict import Predictor
pred = Predictor.from_experiment(sys.argv[1])
t_load = time.perf_counter() - t0
from rdkit import Chem
from rdkit.Chem import AllChem
m = Chem.AddHs(Chem.MolFromSmiles("OCc1ccncc1C"))   # 9 heavy atoms, QM9-sized
AllChem.EmbedMolecule(m, randomSeed=0)
Z = np.array([a.GetAtomicNum() for a in m.GetAtoms()]); R = m.GetConformer().GetPositions()
t1 = time.perf_counter()
pred.predict_arrays([Z], [R], [0.0])
t_first = time.perf_counter() - t0
times = []
for _ in range(50):
    s = time.perf_counter(); pred.predict_arrays([Z], [R], [0.0]); times.append(time.perf_counter() - s)
print(f"atoms {len(Z)} (heavy {int((Z > 1).sum())})")
print(f"import + load: {t_load:.2f} s; import + load + first prediction: {t_first:.2f} s")
print(f"prediction after loading: median {1e3 * float(np.median(times)):.1f} ms, "
      f"min {1e3 * min(times):.1f} ms (50 repeats)")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dcmnet-general")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, args.model], check=True,
                         capture_output=True, text=True)
    print(out.stdout.strip())
    print(f"whole process (interpreter start included): {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
