"""Deterministic train/validation splits and their JSON files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dcmnet.data import split_indices
from dcmnet.data.split import load_split, save_split
from dcmnet.errors import DataError


def test_deterministic_and_disjoint():
    a = split_indices(50, 30, 10, seed=4)
    b = split_indices(50, 30, 10, seed=4)
    c = split_indices(50, 30, 10, seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    train, valid = a
    assert len(train) == 30 and len(valid) == 10
    assert not set(train) & set(valid)
    assert train.dtype == np.int64 and (np.diff(train) > 0).all()


def test_defaults_use_all_molecules():
    train, valid = split_indices(100)
    assert len(train) == 90 and len(valid) == 10
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(100))
    t, v = split_indices(2)
    assert len(t) == 1 and len(v) == 1
    t, v = split_indices(1)
    assert t.tolist() == [0] and len(v) == 0
    t, v = split_indices(10, num_train=7)
    assert len(t) == 7 and len(v) == 3
    t, v = split_indices(10, num_valid=4)
    assert len(t) == 6 and len(v) == 4


def test_too_many_requested_says_how_many_there_are():
    with pytest.raises(DataError, match="has only 10"):
        split_indices(10, num_train=8, num_valid=5)
    with pytest.raises(DataError, match="only 10 molecules"):
        split_indices(10, num_train=11)
    with pytest.raises(DataError, match="has 10 molecules"):
        split_indices(10, num_valid=10)
    with pytest.raises(DataError):
        split_indices(10, num_train=-1)
    with pytest.raises(DataError):
        split_indices(0)


def test_save_load_round_trip_atomic(tmp_path):
    train, valid = split_indices(40, seed=9)
    p = save_split(tmp_path / "exp" / "split.json", train, valid, seed=9, n_molecules=40)
    assert [f.name for f in p.parent.iterdir()] == ["split.json"]  # no temporary left
    doc = json.loads(p.read_text())
    assert doc["seed"] == 9 and doc["train"] == train.tolist()
    s = load_split(p, n_molecules=40)
    np.testing.assert_array_equal(s.train, train)
    np.testing.assert_array_equal(s.valid, valid)
    assert s.seed == 9
    with pytest.raises(DataError, match="made for 40 molecules"):
        load_split(p, n_molecules=30)


def test_bad_split_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_split(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not a dcmnet split"):
        load_split(tmp_path / "bad.json")
    (tmp_path / "ov.json").write_text(json.dumps({"train": [0, 1], "valid": [1]}))
    with pytest.raises(DataError, match="overlap"):
        load_split(tmp_path / "ov.json")
    with pytest.raises(DataError, match="overlap"):
        save_split(tmp_path / "x.json", [0, 1], [1], seed=0)


def test_split_by_molecule_keeps_molecules_apart():
    names = np.repeat(np.array(["water", "methanol", "acetate", "urea", "phenol"]), 10)
    tr, va = split_indices(len(names), num_valid=12, seed=3, groups=names)
    assert set(names[tr]).isdisjoint(set(names[va]))
    assert len(va) == 20  # whole molecules until at least 12 conformers
    assert len(tr) == 30 and len(np.intersect1d(tr, va)) == 0
    tr2, va2 = split_indices(len(names), num_valid=12, seed=3, groups=names)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    tr3, va3 = split_indices(len(names), seed=3, groups=names)  # default: ~10 %
    assert len(va3) == 10 and len(set(names[va3])) == 1
    with pytest.raises(DataError, match="at least two different molecules"):
        split_indices(10, groups=np.array(["w"] * 10))
    with pytest.raises(DataError, match="every molecule"):
        split_indices(len(names), num_valid=49, groups=names)
