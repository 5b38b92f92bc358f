"""Every CSV dcmnet writes parses as numbers (issue 10 item 8: no ``np.float64(...)``)."""
import csv

import numpy as np
from ase.build import molecule

from dcmnet.fileio.tables import write_csv, write_sites_csv

def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _check_numbers(path):
    """No NumPy reprs; a column holding any number holds only numbers (or empty cells);
    at least one numeric column."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, path
    numeric_cols = 0
    for key in rows[0]:
        vals = [r[key] for r in rows if r[key] not in ("", None)]
        for v in vals:
            assert "np." not in v and "float64(" not in v and "float32(" not in v, \
                (path.name, key, v)
        nums = [_is_number(v) for v in vals]
        if any(nums):
            numeric_cols += 1
            assert all(nums), f"{path.name}: column {key!r} mixes numbers and {vals}"
    assert numeric_cols > 0, path
    return rows


def test_writers_write_plain_numbers(tmp_path):
    q = np.array([[np.float64(0.148), np.float32(-0.148)]])
    write_sites_csv(tmp_path / "s.csv", [dict(charges=q, positions=np.zeros((1, 2, 3)),
                                              symbols=["O"])])
    rows = _check_numbers(tmp_path / "s.csv")
    assert float(rows[0]["charge_e"]) == 0.148
    write_csv([{"a": np.float64(0.1), "b": np.int64(3), "c": np.array(2.5), "d": float("nan")}],
              tmp_path / "t.csv")
    rows = _check_numbers(tmp_path / "t.csv")
    assert rows[0] == {"a": "0.1", "b": "3", "c": "2.5", "d": ""}


def test_predict_analysis_and_history_csvs_parse(tiny_experiment, small_npz, tmp_path):
    from ase.io import write

    from dcmnet.cli.main import main

    write(tmp_path / "water.xyz", molecule("H2O"))
    assert main(["predict", str(tiny_experiment), "--structures", str(tmp_path / "water.xyz"),
                 "--out", str(tmp_path / "pred"), "--no-progress"]) == 0
    pred_csvs = sorted((tmp_path / "pred").glob("*.csv"))
    assert {p.name for p in pred_csvs} >= {"predictions_sites.csv", "predictions_frames.csv"}
    assert main(["analyze", str(tiny_experiment), "--data-files", str(small_npz),
                 "--format", "csv"]) == 0
    ana = sorted((tiny_experiment / "analysis").glob("*.csv"))
    assert any(p.name == "training_history.csv" for p in ana)
    for p in pred_csvs + ana + [tiny_experiment / "training_history.csv"]:
        if p.exists():
            _check_numbers(p)
    sites = _check_numbers(tmp_path / "pred" / "predictions_sites.csv")
    assert all(_is_number(r["charge_e"]) and _is_number(r["x_A"]) for r in sites)
