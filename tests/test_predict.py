"""Prediction: a 1000-frame trajectory through the model's evaluation path, file formats
ASE reads, and the output files (extxyz, JSON, CSV, DCM charges file)."""
import json
import time

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from conftest import bundled_subset
from dcmnet.analysis import predict_dataset
from dcmnet.cli.main import main
from dcmnet.data.dataset import Dataset
from dcmnet.errors import DataError
from dcmnet.inference.predict import Predictor
from dcmnet.inference.results import write_predictions
from dcmnet.inference.structures import read_structures


@pytest.fixture(scope="module")
def predictor(tiny_experiment):
    return Predictor.from_experiment(tiny_experiment, batch_size=125)


def _trajectory(name="methanol", n=1000, seed=0):
    m = bundled_subset([name], 1).molecule(0)
    rng = np.random.default_rng(seed)
    return [Atoms(numbers=m["Z"], positions=m["R"] + rng.normal(0, 0.03, m["R"].shape))
            for _ in range(n)], m


def test_1000_frame_trajectory_matches_evaluation_path(predictor, tmp_path, capsys):
    frames, _ = _trajectory()
    path = tmp_path / "traj.extxyz"
    write(path, frames)
    frames = read_structures(path)
    assert len(frames) == 1000
    t0 = time.perf_counter()
    res = predictor.predict(frames, esp=True)
    dt = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\npredict: 1000 frames with vdW-grid ESP in {dt:.2f} s "
              f"({1000 / dt:.0f} frames/s, compilation included)")
    N = len(frames[0])
    assert res.charges.shape == (1000 * N, 2) and res.positions.shape == (1000 * N, 2, 3)
    q_frame = res.atom_charges.reshape(1000, N).sum(1)
    np.testing.assert_allclose(q_frame, 0.0, atol=1e-5)
    assert np.all(res.n_grid > 100)
    # the same frames and points through the dataset/batching path used by training and
    # evaluation (a Dataset + model.predict_batch) give the same ESP, charges and dipoles
    mols = [dict(Z=res.frame(k)["Z"], R=res.frame(k)["R"], grid=res.frame(k)["grid"],
                 esp=np.zeros(res.n_grid[k]), net_charge=0.0) for k in range(len(res))]
    ref = predict_dataset(predictor.model, predictor.params,
                          Dataset.from_molecules(mols), batch_size=100)
    np.testing.assert_allclose(res.esp, ref.esp, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.charges, ref.charges, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.dipole, ref.dipole, rtol=1e-5, atol=1e-6)


def test_outputs_and_formats(predictor, tmp_path):
    frames, m = _trajectory("acetate", n=3)
    for a in frames:
        a.info["charge"] = -1
    res = predictor.predict(frames, esp=True)
    files = write_predictions(res, tmp_path / "out")
    names = sorted(f.name for f in files)
    assert names == sorted(["predictions.extxyz", "predictions.json", "predictions_sites.csv",
                            "predictions_frames.csv", "predictions.dcm",
                            "predictions_esp.npz"])
    N, n = len(m["Z"]), 2
    # extxyz: atoms followed by their sites as dummy atoms X, charges per entry
    back = read(tmp_path / "out" / "predictions.extxyz", index=":")
    assert len(back) == 3 and len(back[0]) == N + N * n
    assert (back[0].numbers[N:] == 0).all()
    np.testing.assert_allclose(back[1].arrays["dcm_charge"][N:], res.frame(1)["charges"].ravel())
    np.testing.assert_allclose(back[1].positions[N:], res.frame(1)["positions"].reshape(-1, 3),
                               atol=1e-6)
    # JSON
    js = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert js["n_frames"] == 3 and js["units"]["positions"] == "Angstrom"
    assert sum(js["frames"][2]["atom_charges"]) == pytest.approx(-1.0, abs=1e-5)
    # the DCM charges file: FRAME lines then 'atom charge x y z' (1-based atom)
    lines = [ln.split() for ln in (tmp_path / "out" / "predictions.dcm").read_text()
             .splitlines() if ln and not ln.startswith("#")]
    heads = [i for i, ln in enumerate(lines) if ln[0] == "FRAME"]
    assert len(heads) == 3 and lines[0][1:] == ["0", str(N), str(N * n), "-1"]
    block = np.array(lines[1:1 + N * n], dtype=float)
    assert block[:, 0].min() == 1 and block[:, 0].max() == N
    assert block[:, 1].sum() == pytest.approx(-1.0, abs=1e-6)
    np.testing.assert_allclose(block[:, 2:], res.frame(0)["positions"].reshape(-1, 3),
                               atol=1e-9)
    with np.load(tmp_path / "out" / "predictions_esp.npz", allow_pickle=False) as z:
        assert z["n_grid"].sum() == len(z["esp"]) == len(z["grid"])
    assert not list((tmp_path / "out").glob(".*"))


def test_read_sdf_pdb_and_cli(tiny_experiment, tmp_path, capsys):
    frames, _ = _trajectory("water", n=2)
    write(tmp_path / "w.pdb", frames[0])
    write(tmp_path / "w.sdf", frames[1])
    write(tmp_path / "w.xyz", frames)
    got = read_structures([tmp_path / "w.pdb", tmp_path / "w.sdf", tmp_path / "w.xyz"])
    assert [len(a) for a in got] == [3, 3, 3, 3]
    assert main(["predict", str(tiny_experiment), "--structures", str(tmp_path / "w.xyz"),
                 str(tmp_path / "w.sdf"), "--out", str(tmp_path / "o"), "--no-progress",
                 "--formats", "dcm", "json"]) == 0
    err = capsys.readouterr().err
    assert "frames/s" in err and (tmp_path / "o" / "predictions.dcm").exists()
    assert not (tmp_path / "o" / "predictions.extxyz").exists()
    with pytest.raises(DataError, match="no such"):
        read_structures(tmp_path / "missing.xyz")
    assert main(["predict", str(tiny_experiment), "--structures", str(tmp_path / "nope.xyz"),
                 "--out", str(tmp_path / "o2")]) == 2


def test_unknown_element_refused(predictor):
    with pytest.raises(DataError, match="max_atomic_number"):
        predictor.predict(Atoms("Br2", positions=[[0, 0, 0], [0, 0, 2.3]]))
