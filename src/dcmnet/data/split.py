"""Deterministic train/validation splits, saved as JSON with the experiment.

The split is a permutation of ``range(n)`` drawn from ``numpy.random.default_rng(seed)``;
the first ``num_train`` indices train, the next ``num_valid`` validate. The returned index
arrays are sorted (int64), so the same ``(n, num_train, num_valid, seed)`` always gives the
same split on every machine and numpy version that keeps ``default_rng``'s stream.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dcmnet.fileio import atomic_path
from dcmnet.errors import DataError

#: Tag stored in split files.
SPLIT_FORMAT = "dcmnet-split-v1"
#: Fraction of the molecules used for validation when neither count is given.
DEFAULT_VALID_FRACTION = 0.1


class Split(NamedTuple):
    """A saved split: sorted index arrays and the seed that drew them."""

    train: np.ndarray
    valid: np.ndarray
    seed: int


def _count(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or int(value) != value:
        raise DataError(f"{name} must be a whole number of molecules, got {value!r}.")
    value = int(value)
    if value < 0:
        raise DataError(f"{name} must be ≥ 0, got {value}.")
    return value


def split_indices(n: int, num_train: int | None = None, num_valid: int | None = None,
                  seed: int = 0, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``n`` molecules (conformers) into training and validation indices.

    Args:
        n: number of molecules in the dataset.
        num_train: training molecules; ``None`` = all those not used for validation.
        num_valid: validation molecules; ``None`` = the rest when ``num_train`` is given,
            otherwise about 10 % (at least 1 when ``n >= 2``; 0 when ``n == 1``).
        seed: seed of the permutation (``numpy.random.default_rng(seed)``).
        groups: optional (n,) labels (e.g. the dataset's ``name``): whole groups go to
            validation (in seeded random order) until at least ``num_valid`` conformers are
            there, so no molecule is in both sets; training takes ``num_train`` conformers of
            the other groups. Validation may then hold a few more than ``num_valid``.

    Returns:
        ``(train_idx, valid_idx)``: disjoint, sorted int64 arrays.

    Raises:
        DataError: more molecules requested than the dataset holds (the message says how
            many there are), negative counts, no training molecule, or (with ``groups``)
            fewer than two groups.
    """
    n = _count(n, "n")
    num_train = _count(num_train, "num_train")
    num_valid = _count(num_valid, "num_valid")
    train_given = num_train is not None
    if n is None or n < 1:
        raise DataError("the dataset holds no molecules; nothing to split.")
    if num_train is None and num_valid is None:
        num_valid = 0 if n < 2 else max(1, int(round(DEFAULT_VALID_FRACTION * n)))
        num_train = n - num_valid
    elif num_train is None:
        if num_valid >= n:
            raise DataError(f"num_valid={num_valid} leaves no training molecule: the dataset "
                            f"has {n} molecules; ask for at most {n - 1}.")
        num_train = n - num_valid
    elif num_valid is None:
        if num_train > n:
            raise DataError(f"num_train={num_train} but the dataset has only {n} molecules; "
                            f"ask for at most {n}.")
        num_valid = n - num_train
    if num_train + num_valid > n:
        raise DataError(f"asked for num_train={num_train} + num_valid={num_valid} = "
                        f"{num_train + num_valid} molecules but the dataset has only {n}; "
                        "lower the counts (or leave one unset to use the rest).")
    if num_train < 1:
        raise DataError(f"num_train must be at least 1 (the dataset has {n} molecules).")
    rng = np.random.default_rng(int(seed))
    if groups is not None:
        return _split_groups(np.asarray(groups), n, num_train if train_given else None,
                             num_valid, rng)
    perm = rng.permutation(n)
    train = np.sort(perm[:num_train]).astype(np.int64)
    valid = np.sort(perm[num_train:num_train + num_valid]).astype(np.int64)
    return train, valid


def _split_groups(groups: np.ndarray, n: int, num_train: int | None, num_valid: int, rng):
    if groups.shape != (n,):
        raise DataError(f"split groups have shape {groups.shape}; expected one label per "
                        f"molecule ({n},).")
    names = np.unique(groups)
    if len(names) < 2:
        raise DataError(f"splitting by molecule needs at least two different molecules; the "
                        f"data holds only {names.tolist()}. Split by conformer instead.")
    valid: list[int] = []
    order = rng.permutation(len(names))
    used = 0
    for k in order:
        if len(valid) >= max(num_valid, 1):
            break
        valid += np.flatnonzero(groups == names[k]).tolist()
        used += 1
    if used == len(names):
        raise DataError(f"num_valid={num_valid} would put every molecule ({len(names)}) into "
                        "validation; ask for fewer validation conformers.")
    pool = np.setdiff1d(np.arange(n), valid)
    pool = pool[rng.permutation(len(pool))]
    if num_train is None:
        num_train = len(pool)
    if num_train > len(pool):
        raise DataError(f"num_train={num_train} but only {len(pool)} conformers of molecules "
                        f"outside the validation set remain; ask for at most {len(pool)}.")
    return (np.sort(pool[:num_train]).astype(np.int64),
            np.sort(np.asarray(valid)).astype(np.int64))


def save_split(path: str | os.PathLike, train, valid, seed: int,
               n_molecules: int | None = None) -> Path:
    """Write a split as JSON atomically (temporary file + :func:`os.replace`).

    Args:
        path: destination ``.json`` file; its folder is created.
        train, valid: index sequences.
        seed: the seed that drew them (recorded).
        n_molecules: optional dataset size, recorded and checked by :func:`load_split`.
    """
    path = Path(path)
    train = np.asarray(train, dtype=np.int64).reshape(-1)
    valid = np.asarray(valid, dtype=np.int64).reshape(-1)
    if np.intersect1d(train, valid).size:
        raise DataError(f"{path}: train and valid indices overlap; refusing to save the split.")
    head = {"format": SPLIT_FORMAT, "seed": int(seed), "num_train": len(train),
            "num_valid": len(valid)}
    tail = {} if n_molecules is None else {"n_molecules": int(n_molecules)}
    path.parent.mkdir(parents=True, exist_ok=True)
    # written in pieces (same text as json.dumps): no Python list of a million indices
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(head)[:-1])
        for key, arr in (("train", train), ("valid", valid)):
            fh.write(f', "{key}": [')
            for s in range(0, len(arr), 65536):
                fh.write((", " if s else "") + ", ".join(map(str, arr[s:s + 65536].tolist())))
            fh.write("]")
        fh.write((", " + json.dumps(tail)[1:-1] if tail else "") + "}\n")
    return path


def load_split(path: str | os.PathLike, n_molecules: int | None = None) -> Split:
    """Read a split written by :func:`save_split`.

    Args:
        path: the JSON file.
        n_molecules: when given, every index must be below it (and a recorded dataset size
            must match), so that a split is never applied to the wrong dataset.

    Returns:
        :class:`Split` ``(train, valid, seed)`` with int64 arrays.

    Raises:
        DataError: missing or malformed file, overlapping or out-of-range indices.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: split file not found.")
    try:
        doc = json.loads(path.read_text())
        train = np.asarray(doc["train"], dtype=np.int64).reshape(-1)
        valid = np.asarray(doc["valid"], dtype=np.int64).reshape(-1)
        seed = int(doc.get("seed", 0))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a dcmnet split file ({exc}).") from exc
    if doc.get("format", SPLIT_FORMAT) != SPLIT_FORMAT:
        raise DataError(f"{path}: unknown split format {doc.get('format')!r}.")
    if np.intersect1d(train, valid).size:
        raise DataError(f"{path}: train and valid indices overlap.")
    allidx = np.concatenate([train, valid])
    if allidx.size and allidx.min() < 0:
        raise DataError(f"{path}: negative molecule index {int(allidx.min())}.")
    if n_molecules is not None:
        rec = doc.get("n_molecules")
        if rec is not None and int(rec) != int(n_molecules):
            raise DataError(f"{path}: the split was made for {rec} molecules but the dataset "
                            f"has {n_molecules}; make a new split.")
        if allidx.size and allidx.max() >= n_molecules:
            raise DataError(f"{path}: molecule index {int(allidx.max())} but the dataset has "
                            f"only {n_molecules} molecules; make a new split.")
    return Split(train, valid, seed)
