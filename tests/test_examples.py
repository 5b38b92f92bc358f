"""Every script in ``examples/`` and the notebook run top to bottom on tiny settings.

Scripts run in-process (``runpy``, ``sys.argv`` = the script, its arguments and ``--tiny``)
so that JAX starts once; the notebook runs in its own Jupyter kernel with nbclient and
``DCMNET_TINY=1`` (its ``TINY`` switch). Each example writes into a temporary working
folder.
"""
from __future__ import annotations

import csv
import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
TESTED_SCRIPTS = {"train_multibatch.py", "analyze_experiment.py", "compare_ndcm.py"}


pytestmark = pytest.mark.usefixtures("jax_compile_cache")


def run_example(name: str, args: list[str], monkeypatch, capsys) -> str:
    """Run ``examples/<name>`` with ``args + ["--tiny"]`` in-process; return its output."""
    script = EXAMPLES / name
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--tiny"])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None), f"{name} exited with {exc.code}"
    out = capsys.readouterr()
    sys.stdout.write(out.out)
    sys.stderr.write(out.err)
    return out.out + out.err


def test_every_example_has_a_test_and_help():
    assert set(SCRIPTS) == TESTED_SCRIPTS, "add a test below for each new example script"
    assert NOTEBOOKS == ["quickstart.ipynb"]
    for name in SCRIPTS:
        text = (EXAMPLES / name).read_text()
        assert "--tiny" in text and "DCMNET_TINY" in text and '__name__ == "__main__"' in text


def test_notebook_is_stored_clean_and_has_a_tiny_switch():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), \
        "store the notebook without outputs"
    assert any("TINY" in c.source and "DCMNET_TINY" in c.source for c in code)


@pytest.mark.slow
def test_train_multibatch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = run_example("train_multibatch.py", [], monkeypatch, capsys)
    assert "4 molecules × 4 micro-batches = 16 molecules per update" in out
    exp = tmp_path / "experiments" / "multibatch"
    cfg = json.loads((exp / "config.json").read_text())
    assert cfg["training"]["gradient_accumulation_steps"] == 4
    assert cfg["training"]["lr_schedule_type"] == "cosine"
    with open(exp / "training_history.csv") as fh:
        lr = [float(r["lr"]) for r in csv.DictReader(fh)]
    assert len(lr) == 3 and lr[-1] < max(lr)               # warmup, then the cosine decay
    assert "of the peak" in out and "experiment folder" in out


@pytest.mark.slow
def test_analyze_experiment(tmp_path, monkeypatch, capsys, tiny_experiment):
    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "experiments" / "demo"
    shutil.copytree(tiny_experiment, exp)
    out = run_example("analyze_experiment.py", ["experiments/demo"], monkeypatch, capsys)
    assert "fitted monopoles" in out and "largest DCM-net ESP errors" in out
    assert "best vs latest checkpoint" in out
    for f in ("best_analysis.json", "predictions.csv", "by_element.csv", "by_shell.csv",
              "training_history.csv", "best_analysis.csv", "best_analysis.parquet"):
        assert (exp / "analysis" / f).exists(), f
    assert {"training_curves.png", "esp_parity.png", "charges_3d.png"} <= {
        p.name for p in (exp / "plots").iterdir()}


@pytest.mark.slow
def test_compare_ndcm(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = run_example("compare_ndcm.py", [], monkeypatch, capsys)
    assert "n_dcm comparison" in out
    with open(tmp_path / "experiments" / "ndcm_comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    models = [r for r in rows if r["kind"] != "baseline"]
    assert [int(r["n_dcm"]) for r in models] == [1, 2, 3, 4]
    assert len({r["n_parameters"] for r in models}) == 4      # the head grows with n_dcm
    assert any(r["name"] == "fitted monopoles" for r in rows)
    for f in ("ndcm_comparison.png", "ndcm_summary.png"):
        assert (tmp_path / "experiments" / f).stat().st_size > 0


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch, jax_compile_cache):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("DCMNET_TINY", "1")
    if jax_compile_cache is not None:                 # the kernel shares the compiled programs
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(jax_compile_cache))
        monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.get("output_type") == "stream")
    assert "TINY = True" in text
    assert "median ESP RMSE: DCM-net" in text and "ASE calculator charges" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)
    assert (tmp_path / "experiments" / "notebook" / "checkpoints" / "best").is_dir()
