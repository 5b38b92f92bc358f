"""The shipped models travel inside a normal (non-editable) installation of the package."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dcmnet.models as models

ROOT = Path(__file__).resolve().parents[1]

PREDICT = r"""
import json, sys
import numpy as np
import dcmnet
from dcmnet.models import list_models
from dcmnet.inference.predict import Predictor
# trifluoroacetate: not in the training list of the general model; net charge -1
Z = np.array([6, 6, 8, 8, 9, 9, 9])
R = np.array([[0.0, 0.0, 0.0], [1.55, 0.0, 0.0], [-0.62, 1.07, 0.0], [-0.62, -1.07, 0.0],
              [2.05, 1.27, 0.0], [2.05, -0.63, 1.10], [2.05, -0.63, -1.10]])
out = {"file": dcmnet.__file__, "models": []}
for card in list_models():
    res = Predictor.from_experiment(card.name).predict_arrays([Z], [R], [-1.0])
    q = np.asarray(res.charges, float)
    out["models"].append({"name": card.name, "finite": bool(np.all(np.isfinite(q))),
                          "sum": float(q.sum())})
print(json.dumps(out))
"""


@pytest.mark.slow
def test_shipped_models_load_from_wheel(tmp_path):
    shipped = models.list_models()
    assert shipped, "no model is shipped inside the package"
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheel_dir), str(ROOT)], check=True, cwd=tmp_path)
    (whl,) = wheel_dir.glob("dcmnet-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        z.extractall(site)
    for card in shipped:
        assert f"dcmnet/models/{card.name}/card.json" in names
        assert any(n.startswith(f"dcmnet/models/{card.name}/checkpoints/best/") for n in names)
    env = dict(os.environ, PYTHONPATH=str(site))
    run = subprocess.run([sys.executable, "-c", PREDICT], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=True)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(site)), out["file"]  # imported from the wheel, not src/
    assert {m["name"] for m in out["models"]} == {c.name for c in shipped}
    for m in out["models"]:
        assert m["finite"]
        assert abs(m["sum"] + 1.0) < 1e-4
