"""Padded batches: keys, shapes, dtypes, masks, dummies, order and padding buckets."""
from __future__ import annotations

import numpy as np
import pytest

from dcmnet import units
from dcmnet.data import Dataset, iterate_batches, make_batch, pad_sizes
from dcmnet.data.batching import (BATCH_SPEC, BatchIterator, bucket_shapes, iter_predictions,
                                   prediction_plan, stack_batches)
from dcmnet.errors import DataError

# dtype and shape of every key, exactly as the "Padded batches" table of docs/conventions.md
TABLE = {
    "Z": (np.int32, ("B", "A")), "R": (np.float32, ("B", "A", 3)),
    "atom_mask": (np.float32, ("B", "A")), "grid": (np.float32, ("B", "G", 3)),
    "esp": (np.float32, ("B", "G")), "grid_mask": (np.float32, ("B", "G")),
    "mol_mask": (np.float32, ("B",)), "net_charge": (np.float32, ("B",)),
    "mono": (np.float32, ("B", "A")), "mono_mask": (np.float32, ("B",)),
    "dipole": (np.float32, ("B", 3)), "dipole_mask": (np.float32, ("B",)),
    "com": (np.float32, ("B", 3)), "index": (np.int32, ("B",)),
}


def _random_molecule(rng, n_atoms, n_grid, charge=0, mono=True, dipole=True, name="m"):
    """A chain-like molecule with 1.5 Å bonds, grid points 2–3 Å from the atoms."""
    steps = rng.normal(size=(n_atoms, 3))
    steps *= 1.5 / np.linalg.norm(steps, axis=1, keepdims=True)
    R = np.cumsum(steps, axis=0)
    Z = rng.choice([1, 6, 7, 8], size=n_atoms)
    q = rng.normal(scale=0.3, size=n_atoms)
    q += (charge - q.sum()) / n_atoms
    anchor = R[rng.integers(0, n_atoms, n_grid)]
    dirs = rng.normal(size=(n_grid, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    grid = anchor + dirs * rng.uniform(2, 3, (n_grid, 1))
    d = np.linalg.norm(grid[:, None] - R[None], axis=-1) * units.ANGSTROM_TO_BOHR
    return {"Z": Z, "R": R, "grid": grid, "esp": (q / d).sum(1), "net_charge": charge,
            "mono": q if mono else None, "dipole": rng.normal(size=3) if dipole else None,
            "name": name}


def _dataset(n=23, atoms=(3, 12), grid=(40, 120), seed=1) -> Dataset:
    rng = np.random.default_rng(seed)
    mols = [_random_molecule(rng, int(rng.integers(*atoms)), int(rng.integers(*grid)),
                             charge=int(i % 3) - 1, mono=i % 4 != 0, dipole=i % 5 != 0,
                             name=f"m{i}")
            for i in range(n)]
    return Dataset.from_molecules(mols, source="synthetic")


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return _dataset()


def test_spec_matches_conventions_table():
    assert BATCH_SPEC.keys() == TABLE.keys()
    for k, (dt, shape) in TABLE.items():
        assert BATCH_SPEC[k][0] is dt and BATCH_SPEC[k][1] == shape, k


def test_batch_keys_shapes_dtypes_and_values(ds):
    B = 8
    A, G = pad_sizes(ds)
    assert A % 8 == 0 and G % 128 == 0 and A >= ds.n_atoms.max() and G >= ds.n_grid.max()
    idx = [5, 0, 17, 3, 22]
    b = make_batch(ds, idx, B, A, G)
    sizes = {"B": B, "A": A, "G": G}
    assert set(b) == set(TABLE)
    for k, (dt, shape) in TABLE.items():
        assert b[k].dtype == dt, k
        assert b[k].shape == tuple(sizes.get(s, s) for s in shape), k
    com = ds.centre_of_mass()
    for j, i in enumerate(idx):
        m = ds.molecule(i)
        na, ng = len(m["Z"]), len(m["esp"])
        np.testing.assert_array_equal(b["Z"][j, :na], m["Z"])
        assert (b["Z"][j, na:] == 0).all() and (b["R"][j, na:] == 0).all()
        np.testing.assert_array_equal(b["atom_mask"][j], np.arange(A) < na)
        np.testing.assert_array_equal(b["grid_mask"][j], np.arange(G) < ng)
        np.testing.assert_allclose(b["R"][j, :na], m["R"], rtol=1e-6)
        np.testing.assert_array_equal(b["grid"][j, :ng], m["grid"])
        np.testing.assert_array_equal(b["esp"][j, :ng], m["esp"])
        assert (b["grid"][j, ng:] == 0).all() and (b["esp"][j, ng:] == 0).all()
        assert (b["mono"][j, na:] == 0).all()
        assert b["net_charge"][j] == m["net_charge"] and b["index"][j] == i
        assert b["mol_mask"][j] == 1
        assert b["mono_mask"][j] == (m["mono"] is not None)
        assert b["dipole_mask"][j] == (m["dipole"] is not None)
        if m["mono"] is not None:
            np.testing.assert_allclose(b["mono"][j, :na], m["mono"], rtol=1e-6)
        else:
            assert (b["mono"][j] == 0).all()
        if m["dipole"] is not None:
            np.testing.assert_allclose(b["dipole"][j], m["dipole"], rtol=1e-6)
        else:
            assert (b["dipole"][j] == 0).all()
        np.testing.assert_allclose(b["com"][j], com[i], rtol=1e-5, atol=1e-6)


def test_dummy_molecules_fill_the_batch(ds):
    A, G = pad_sizes(ds)
    b = make_batch(ds, [4, 2], 5, A, G)
    dummies = slice(2, 5)
    assert (b["index"][dummies] == -1).all()
    for k in TABLE:
        if k != "index":
            assert (b[k][dummies] == 0).all(), k


def test_every_molecule_once_per_epoch_and_all_batches_full(ds):
    for B in (1, 4, 7, 64):
        seen = []
        for b in iterate_batches(ds, B, shuffle=True, seed=3, epoch=2):
            assert b["index"].shape == (B,)
            real = b["index"][b["index"] >= 0]
            np.testing.assert_array_equal(b["mol_mask"], b["index"] >= 0)
            seen.extend(real.tolist())
        assert sorted(seen) == list(range(len(ds))), B


def test_order_is_deterministic_in_seed_and_epoch(ds):
    def order(seed, epoch):
        return np.concatenate([b["index"] for b in
                               iterate_batches(ds, 4, shuffle=True, seed=seed, epoch=epoch)])
    np.testing.assert_array_equal(order(0, 5), order(0, 5))
    assert not np.array_equal(order(0, 5), order(0, 6))
    assert not np.array_equal(order(0, 5), order(1, 5))
    unshuffled = np.concatenate([b["index"] for b in
                                 iterate_batches(ds, 4, shuffle=False, bucket=False)])
    np.testing.assert_array_equal(unshuffled[unshuffled >= 0], np.arange(len(ds)))


def test_batch_iterator_len_drop_last_and_subset(ds):
    it = BatchIterator(ds, 5, shuffle=True, seed=0)
    assert len(it) == len(list(it.epoch_batches(0))) == 5
    it = BatchIterator(ds, 5, drop_last=True)
    batches = list(it.epoch_batches(1))
    assert len(it) == len(batches) == 4
    assert all((b["index"] >= 0).all() for b in batches)
    sub = [20, 3, 7]
    got = [i for b in iterate_batches(ds, 2, indices=sub, seed=1) for i in b["index"] if i >= 0]
    assert sorted(got) == sorted(sub)


def test_few_padding_shapes_for_widely_spread_sizes():
    wide = _dataset(n=60, atoms=(3, 40), grid=(30, 1500), seed=7)
    shapes = bucket_shapes(wide, batch_size=4)
    assert 1 < len(shapes) <= 4
    assert shapes[-1] == pad_sizes(wide)
    seen_shapes, seen = set(), []
    for epoch in range(3):
        for b in iterate_batches(wide, 4, seed=0, epoch=epoch):
            seen_shapes.add(b["grid"].shape[1:2] + b["Z"].shape[1:])
            if epoch == 0:
                seen.extend(b["index"][b["index"] >= 0].tolist())
    assert len(seen_shapes) <= 4
    assert sorted(seen) == list(range(len(wide)))
    # one shape when bucketing is off, or when the sizes are similar
    single = {b["Z"].shape for b in iterate_batches(wide, 4, bucket=False)}
    assert single == {(4, pad_sizes(wide)[0])}
    narrow = _dataset(n=30, atoms=(8, 10), grid=(200, 230), seed=2)
    assert bucket_shapes(narrow, batch_size=4) == [pad_sizes(narrow)]


def test_shared_shapes_between_train_and_valid(ds):
    shapes = bucket_shapes(ds, batch_size=4)
    tr = BatchIterator(ds, 4, indices=range(0, 15), shapes=shapes)
    va = BatchIterator(ds, 4, indices=range(15, 23), shapes=shapes, shuffle=False)
    assert tr.shapes == va.shapes == shapes
    assert {b["Z"].shape[1] for b in va} <= {a for a, _ in shapes}


def test_molecule_too_large_for_padding(ds):
    big = int(np.argmax(ds.n_atoms))
    with pytest.raises(DataError, match=f"molecule {big}"):
        make_batch(ds, [big], 2, int(ds.n_atoms[big]) - 1, 4096)
    with pytest.raises(DataError, match="do not fit"):
        make_batch(ds, [0, 1, 2], 2, 64, 4096)


def test_stack_batches(ds):
    bs = list(iterate_batches(ds, 4, bucket=False))[:3]
    st = stack_batches(bs)
    for k in TABLE:
        assert st[k].shape == (3,) + bs[0][k].shape and st[k].dtype == bs[0][k].dtype
    with pytest.raises(ValueError):
        stack_batches([bs[0], make_batch(ds, [0], 4, 64, 256)])


def _echo(batch):
    """A stand-in batch function: per-atom, per-point and per-molecule values of the batch."""
    return {"charges": batch["R"][..., :1] + batch["Z"][..., None], "esp": batch["grid"][..., 0],
            "dipole": batch["com"], "fq": batch["fq"]}


def test_iter_predictions_yields_each_molecule_once_unpadded(ds):
    seen = []
    ao, go = ds.atom_offsets, ds.grid_offsets
    extra = np.arange(int(ao[-1]), dtype=np.float32)
    for i, out in iter_predictions(_echo, ds, 4, atom_extras={"fq": extra},
                                   axes={"charges": "A", "esp": "G", "fq": "A"}):
        seen.append(i)
        a, g = slice(ao[i], ao[i + 1]), slice(go[i], go[i + 1])
        assert out["charges"].shape == (ds.n_atoms[i], 1) and out["esp"].shape == (ds.n_grid[i],)
        np.testing.assert_allclose(out["charges"][:, 0], ds.R[a, 0] + ds.Z[a], rtol=1e-6)
        np.testing.assert_allclose(out["esp"], ds.grid[g, 0], rtol=1e-6)
        np.testing.assert_allclose(out["dipole"], ds.centre_of_mass()[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out["fq"], extra[a])       # extras padded like atoms
    assert sorted(seen) == list(range(len(ds)))


def test_prediction_plan_batch_sizes(ds):
    full = prediction_plan(ds, 8, shapes=[pad_sizes(ds)])
    assert [B for _, B, _, _ in full] == [8, 8, 8]
    assert [len(idx) for idx, *_ in full] == [8, 8, 7]
    # shrink_last: an incomplete batch is padded to the next power of two only
    assert [B for _, B, _, _ in prediction_plan(ds, 16, shrink_last=True,
                                                shapes=[pad_sizes(ds)])] == [16, 8]
    one = prediction_plan(ds.subset([3]), 64, shrink_last=True)
    assert [(list(idx), B) for idx, B, _, _ in one] == [([0], 1)]
    assert all(B == 23 for _, B, _, _ in prediction_plan(ds, 64))  # at most M molecules
    # fewer molecules than batch_size: still a power of two (5, 6, 7 frames share B = 8)
    for n in (5, 6, 7):
        assert [B for _, B, _, _ in prediction_plan(ds.subset(range(n)), 16,
                                                     shrink_last=True)] == [8]
    assert [B for _, B, _, _ in prediction_plan(ds, 64, shrink_last=True)] == [32]
