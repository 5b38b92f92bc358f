"""Memory-mapped .npy dataset folders: round trip, same batches and same training as in
memory (bitwise), clear errors for damaged folders, atomic writes, prefetching."""
from __future__ import annotations

import json
import os
import threading

import jax
import numpy as np
import pytest
from rich.console import Console

from conftest import TINY
from dcmnet.cli.main import main
from dcmnet.data import Dataset, load_dataset
from dcmnet.data.batching import BatchIterator, bucket_shapes
from dcmnet.data.ondisk import MANIFEST_NAME, OnDiskDataset, open_npy_dir
from dcmnet.data.ondisk_writer import NpyDirWriter, write_npy_dir
from dcmnet.data.prefetch import prefetch, prefetch_batches
from dcmnet.errors import DataError
from test_batching import _dataset

FIELDS = ("n_atoms", "n_grid", "Z", "R", "grid", "esp", "net_charge", "mono", "has_mono",
          "dipole", "has_dipole", "name")


@pytest.fixture(scope="module")
def mem() -> Dataset:
    return _dataset(n=41, atoms=(3, 20), grid=(40, 400), seed=4)


@pytest.fixture()
def disk(mem, tmp_path) -> OnDiskDataset:
    # written in three pieces: the folder joins them in order
    parts = [mem.subset(range(0, 10)), mem.subset(range(10, 11)), mem.subset(range(11, 41))]
    return open_npy_dir(write_npy_dir(iter(parts), tmp_path / "data.npyd"))


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), k


def test_round_trip_fields_are_bitwise_equal(mem, disk):
    assert isinstance(disk, OnDiskDataset) and len(disk) == 41
    for f in FIELDS:
        a, b = getattr(mem, f), np.asarray(getattr(disk, f))
        assert a.shape == b.shape and np.array_equal(a, b), f
    assert isinstance(disk.grid, np.memmap)         # read on access, not loaded
    sub = disk.subset([40, 3, 17, 3])
    ref = mem.subset([40, 3, 17, 3])
    for f in FIELDS:
        assert np.array_equal(np.asarray(getattr(sub, f)), getattr(ref, f)), f
    for i in range(4):
        m, r = sub.molecule(i), ref.molecule(i)
        for k in m:
            assert (m[k] is None and r[k] is None) or np.array_equal(m[k], r[k]), k
    assert np.array_equal(sub.centre_of_mass(), ref.centre_of_mass())
    assert np.array_equal(sub.subset([2, 0]).R[:], ref.subset([2, 0]).R)


def test_batches_bitwise_equal_to_in_memory(mem, disk):
    rng = np.random.default_rng(7)
    perm = rng.permutation(len(mem))
    tr, va = perm[:33], perm[33:]
    shapes_m = bucket_shapes(Dataset.concatenate([mem.subset(tr), mem.subset(va)]),
                             batch_size=4)
    both = Dataset.concatenate([disk.subset(tr), disk.subset(va)])
    assert isinstance(both, OnDiskDataset) and len(both) == 41
    assert bucket_shapes(both, batch_size=4) == shapes_m and len(shapes_m) > 1
    it_m = BatchIterator(mem.subset(tr), 4, seed=11, shapes=shapes_m)
    it_d = BatchIterator(disk.subset(tr), 4, seed=11, shapes=shapes_m)
    for epoch in (0, 3):
        got = list(prefetch_batches(it_d, epoch, depth=2))
        want = list(it_m.epoch_batches(epoch))
        assert len(got) == len(want) == len(it_m)
        for a, b in zip(want, got):
            _same(a, b)


def test_training_bitwise_equal_to_in_memory(tmp_path):
    from conftest import bundled_subset
    from dcmnet.config import create_default_config
    from dcmnet.training.loop import train_model

    ds = bundled_subset(["water", "methanol", "acetate", "methylammonium"], 3)
    disk = open_npy_dir(write_npy_dir(ds, tmp_path / "d"))
    tr, va = np.arange(0, 12, 1)[[0, 2, 3, 5, 6, 8, 9, 11]], np.array([1, 4, 7, 10])
    out = []
    for tag, data in (("mem", ds), ("disk", disk)):
        cfg = create_default_config(tag, output_dir=str(tmp_path / "runs"), num_epochs=1,
                                    batch_size=4, random_seed=5, **TINY)
        cfg.experiment_dir.mkdir(parents=True)
        res = train_model(cfg, data.subset(tr), data.subset(va), progress=False,
                          table_every=0, console=Console(quiet=True))
        out.append(res)
    a, b = (jax.tree_util.tree_leaves(r.params) for r in out)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
    assert out[0].history[0]["train_loss"] == out[1].history[0]["train_loss"]


def test_cli_convert_npy_dir_and_load(small_npz, tmp_path, capsys):
    target = tmp_path / "big.npyd"
    assert main(["convert", str(small_npz), str(small_npz), "--format", "npy-dir",
                 "--out", str(target), "--quiet"]) == 0
    assert "wrote 32 molecules" in capsys.readouterr().out
    ds = load_dataset(target, verbose=False)
    ref = Dataset.load(small_npz)
    assert isinstance(ds, OnDiskDataset) and len(ds) == 32
    assert np.array_equal(np.asarray(ds.esp), np.concatenate([ref.esp, ref.esp]))
    man = json.loads((target / MANIFEST_NAME).read_text())
    assert man["n_molecules"] == 32 and man["metadata"]["converted_from"][0] == str(small_npz)
    with pytest.raises(DataError, match="read alone"):
        load_dataset([target, small_npz], verbose=False)
    back = tmp_path / "back.npz"           # and back to one canonical NPZ
    assert main(["convert", str(target), "--out", str(back), "--quiet"]) == 0
    assert np.array_equal(Dataset.load(back).R, np.concatenate([ref.R, ref.R]))


def test_missing_or_corrupt_files_name_file_and_fix(mem, tmp_path):
    root = write_npy_dir(mem, tmp_path / "d")
    (root / "esp.npy").unlink()
    with pytest.raises(DataError, match=r"esp\.npy: missing.*dcmnet convert .*--format npy-dir"):
        open_npy_dir(root)
    root = write_npy_dir(mem, tmp_path / "e")
    with open(root / "grid.npy", "r+b") as fh:      # truncated
        fh.truncate(os.path.getsize(root / "grid.npy") - 12)
    with pytest.raises(DataError, match=r"grid\.npy: .*(truncated).*--format npy-dir"):
        open_npy_dir(root)
    root = write_npy_dir(mem, tmp_path / "f")
    (root / "Z.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"Z\.npy: unreadable"):
        open_npy_dir(root)
    root = write_npy_dir(mem, tmp_path / "g")
    np.save(root / "n_atoms.npy", np.ones(41, np.int32))   # counts that disagree
    with pytest.raises(DataError, match="disagree"):
        open_npy_dir(root)
    (root / MANIFEST_NAME).unlink()
    with pytest.raises(DataError, match="not a complete dcmnet .npy dataset folder"):
        open_npy_dir(root)


def test_writes_are_atomic(mem, tmp_path):
    root = write_npy_dir(mem, tmp_path / "d")
    before = np.asarray(open_npy_dir(root).esp).copy()
    bad = mem.subset(range(3))
    bad.esp[0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        write_npy_dir(iter([mem.subset(range(5)), bad]), root)
    assert np.array_equal(np.asarray(open_npy_dir(root).esp), before)   # old folder intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]          # no temporary left
    with NpyDirWriter(tmp_path / "n") as w:                             # temp name while open
        w.append(mem)
        assert not (tmp_path / "n").exists()
        assert any(p.name.startswith(".n.tmp-") for p in tmp_path.iterdir())
    assert len(open_npy_dir(tmp_path / "n")) == 41
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a dcmnet .npy dataset folder"):
        write_npy_dir(mem, tmp_path / "plain")


def test_release_pages_lowers_resident_memory(tmp_path):
    n = 2000
    big = Dataset(n_atoms=np.full(n, 4, np.int32), n_grid=np.full(n, 2048, np.int32),
                  Z=np.full(4 * n, 6, np.int32), R=np.zeros((4 * n, 3)),
                  grid=np.ones((2048 * n, 3), np.float32), esp=np.zeros(2048 * n, np.float32),
                  net_charge=np.zeros(n), mono=np.zeros(4 * n), has_mono=np.zeros(n, bool),
                  dipole=np.zeros((n, 3)), has_dipole=np.zeros(n, bool),
                  name=np.array(["x"] * n))
    disk = open_npy_dir(write_npy_dir(big, tmp_path / "d"))
    del big

    def rss_file_kb():
        for line in open("/proc/self/status"):
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        pytest.skip("no RssFile in /proc/self/status")

    disk.release_pages()
    base = rss_file_kb()
    assert float(np.asarray(disk.grid[:, 0]).sum()) == 2048 * n      # touches ~49 MB
    touched = rss_file_kb()
    disk.release_pages()
    assert touched - base > 20_000 and rss_file_kb() - base < 5_000


def test_prefetch_order_errors_and_thread_stop():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        yield 2
        raise DataError("molecule 7 is bad")

    got = []
    with pytest.raises(DataError, match="molecule 7"):
        for x in prefetch(broken()):
            got.append(x)
    assert got == [1, 2]
    released = []
    gen = prefetch(iter(range(10**6)), depth=2, release=lambda: released.append(1),
                   release_every=1)
    assert next(gen) == 0
    gen.close()                        # stops the producer thread
    assert not any(t.name == "dcmnet-prefetch" and t.is_alive()
                   for t in threading.enumerate())
    assert released                    # released at the end too
