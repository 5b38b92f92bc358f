"""Every script in ``benchmarks/`` imports and parses its arguments (``--help``).

The benchmarks are run by hand, not by the suite, so an API change inside dcmnet can
break them silently (``bench_training.py`` once imported a function that had moved).
``--help`` imports the script's module-level dependencies and builds its parser without
running anything expensive.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))


def test_benchmarks_found():
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_help(script):
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage:" in r.stdout
