"""Issue 10, "trust at the edges": each test builds a situation that used to give silently
wrong numbers, a traceback or an unpleasant run, and checks the fix."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import fixtures_qm as fq
from dcmnet.data import load_dataset
from dcmnet.data.dataset import Dataset
from dcmnet.errors import DataError


def _load(paths, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(paths, verbose=False, **kw)


def _water_molecule(n_extra_points: int = 0) -> dict:
    """A water with point charges' ESP on vdW shells (no QM): Å, e, Hartree/e."""
    from dcmnet.fitting import monopole_esp
    from dcmnet.surface import vdw_shell_points
    Z = np.array([8, 1, 1])
    R = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    q = np.array([-0.8, 0.4, 0.4])
    grid = vdw_shell_points(Z, R, density=0.5)
    return {"Z": Z, "R": R, "grid": grid, "esp": monopole_esp(R, q, grid), "net_charge": 0.0,
            "name": "water"}


# ------------------------------------------------------------------ item 5: points at nuclei
def test_grid_point_on_a_nucleus_is_dropped_at_read_time(tmp_path):
    m = _water_molecule()
    m["grid"] = np.concatenate([m["grid"], m["R"][:1], m["R"][1:2] + 0.1])
    m["esp"] = np.concatenate([m["esp"], [1e3, 50.0]])
    path = tmp_path / "canonical.npz"
    Dataset.from_molecules([m, _water_molecule()]).save(path)
    from dcmnet.data.loader import load_dataset_with_report
    ds, report = load_dataset_with_report(path)
    assert int(ds.n_grid[0]) == len(m["esp"]) - 2 and int(ds.n_grid[1]) == len(m["esp"]) - 2
    assert np.abs(ds.esp).max() < 1.0
    warn = [ln for ln in report if "WARNING" in ln]
    assert warn and "dropped 2 grid points inside the atoms' vdW spheres" in warn[0]
    assert "canonical.npz" in warn[0] and "1 of 2 molecules" in warn[0]
    from dcmnet.fitting import fit_monopoles
    q = fit_monopoles(ds.molecule(0)["R"], ds.molecule(0)["grid"], ds.molecule(0)["esp"], 0.0)
    np.testing.assert_allclose(q, [-0.8, 0.4, 0.4], atol=1e-3)


def test_grid_entirely_inside_atoms_is_refused_with_molecule(tmp_path):
    m = _water_molecule()
    m["grid"] = m["R"][[0, 0, 1, 2]] + 0.05
    m["esp"] = np.ones(4)
    path = tmp_path / "inside.npz"
    Dataset.from_molecules([_water_molecule(), m]).save(path)
    with pytest.raises(DataError, match=r"inside\.npz: molecule 1 \(water\): all 4 grid points "
                                        r"lie inside the atoms' vdW spheres"):
        _load(path)


# ------------------------------------------------------------------ item 4: shifted cube frame
@pytest.mark.qm
def test_cube_with_shifted_origin_is_refused(tmp_path_factory, tmp_path):
    pytest.importorskip("pyscf")
    files = fq.qm_files_fixture(tmp_path_factory)
    pot = Path(files["cube"]) / "water_pot.cube"
    lines = pot.read_text().splitlines()
    t = lines[2].split()
    t[1] = f"{float(t[1]) + 3.0:.6f}"  # origin shifted by 3 Bohr along x
    lines[2] = "  ".join(t)
    (tmp_path / "shifted_pot.cube").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"shifted_pot\.cube.*frame does not match the atoms"):
        _load(tmp_path / "shifted_pot.cube", net_charge=0)
    # the unshifted file still loads
    assert len(_load(pot, net_charge=0)) == 1


def test_canonical_file_with_shifted_grid_is_refused(tmp_path):
    good = _water_molecule()
    bad = _water_molecule()
    from dcmnet.fitting import monopole_esp
    # ESP computed at points 1.2 Å away from the stored ones: cusp-sized values outside
    bad["esp"] = monopole_esp(bad["R"], np.array([-8.0, 4.0, 4.0]),
                              bad["grid"] + np.array([1.2, 0.0, 0.0])) * 20
    Dataset.from_molecules([good, bad]).save(tmp_path / "c.npz")
    with pytest.raises(DataError, match=r"c\.npz: molecule 1 \(water\): the ESP reaches .* "
                                        r"Hartree/e .*frame does not match the atoms"):
        _load(tmp_path / "c.npz")


def test_canonical_file_with_overlapping_atoms_is_refused(tmp_path):
    m = _water_molecule()
    m["R"] = m["R"].copy()
    m["R"][2] = m["R"][1] + 0.1
    Dataset.from_molecules([m]).save(tmp_path / "o.npz")
    with pytest.raises(DataError, match=r"o\.npz: atoms 1 and 2 of molecule 0 are 0\.173 Å"):
        _load(tmp_path / "o.npz")


# ------------------------------------------------------------------ item 6: empty HDF5 field
def test_hdf5_empty_per_atom_field_is_missing_with_warning(tmp_path):
    h5py = pytest.importorskip("h5py")
    from dcmnet.units import ANGSTROM_TO_BOHR
    m = _water_molecule()
    path = tmp_path / "spice_like.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("water")
        g.create_dataset("atomic_numbers", data=m["Z"].astype(np.int16))
        g.create_dataset("conformations", data=(m["R"] * ANGSTROM_TO_BOHR)[None])
        g.create_dataset("esp_grid", data=(m["grid"] * ANGSTROM_TO_BOHR)[None])
        g.create_dataset("esp", data=m["esp"][None])
        g.create_dataset("total_charge", data=[0.0])
        g.create_dataset("mbis_charges", data=np.zeros((0,)))
        g.create_dataset("scf_dipole", data=np.zeros((0, 3)))
    from dcmnet.data.loader import load_dataset_with_report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, report = load_dataset_with_report(path)
    assert len(ds) == 1 and not ds.has_mono[0] and not ds.has_dipole[0]
    text = "\n".join(report)
    assert "'mbis_charges' is empty (shape (0,)); treated as missing" in text
    assert "'scf_dipole' is empty (shape (0, 3)); treated as missing" in text


# ------------------------------------------------------------------ item 1: A.B SMILES
def test_multi_fragment_smiles_fragments_placed_apart():
    pytest.importorskip("rdkit")
    from dcmnet.generate.molecules import (MIN_FRAGMENT_SEPARATION, MoleculeSpec,
                                           embed_conformers)
    spec = MoleculeSpec(name="nacl_water", net_charge=0, smiles="[Na+].[Cl-].O")
    confs = embed_conformers(spec, 2, seed=0, displacement=0.0)
    for Z, R in confs:
        assert list(Z) == [11, 17, 8, 1, 1]
        frags = [[0], [1], [2, 3, 4]]
        for a in range(3):
            for b in range(a + 1, 3):
                d = np.linalg.norm(R[frags[a]][:, None] - R[frags[b]][None], axis=-1)
                assert d.min() >= MIN_FRAGMENT_SEPARATION - 1e-9
        # the water keeps its internal geometry (O-H about 0.96 Å)
        assert 0.9 < np.linalg.norm(R[3] - R[2]) < 1.05


def test_single_fragment_embedding_unchanged():
    """Single-fragment molecules get exactly RDKit's coordinates (bundled data reproducible)."""
    pytest.importorskip("rdkit")
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from dcmnet.generate.molecules import MoleculeSpec, embed_conformers
    (Z, R), = embed_conformers(MoleculeSpec("m", 0, smiles="CO"), 1, seed=3, optimize=False)
    mol = Chem.AddHs(Chem.MolFromSmiles("CO"))
    p = AllChem.ETKDGv3()
    p.randomSeed = 3
    AllChem.EmbedMultipleConfs(mol, numConfs=1, params=p)
    np.testing.assert_array_equal(R, mol.GetConformer(0).GetPositions())


@pytest.mark.qm
def test_generate_refuses_overlapping_structure_before_qm(tmp_path, capsys):
    pytest.importorskip("pyscf")
    from dcmnet.cli.main import main
    (tmp_path / "bad.xyz").write_text("3\n\nO 0 0 0\nH 0.05 0 0\nH 0 0.96 0\n")
    (tmp_path / "ok.xyz").write_text("2\n\nH 0 0 0\nH 0.74 0 0\n")
    rc = main(["generate", "--structures", str(tmp_path / "bad.xyz"), str(tmp_path / "ok.xyz"),
               "--out", str(tmp_path / "d.npz"), "--method", "hf", "--basis", "sto-3g",
               "--workers", "1", "--no-progress", "--shells", "1.4", "--density", "0.3"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "bad__0000: atoms 0 and 1 are 0.050 Å apart" in err
    ds = Dataset.load(tmp_path / "d.npz")
    assert list(ds.name) == ["ok"]


# ------------------------------------------------------------------ item 7: basis lacks element
@pytest.mark.qm
def test_generate_checks_basis_and_aux_basis_before_starting(tmp_path, capsys):
    pytest.importorskip("pyscf")
    from dcmnet.cli.main import main
    (tmp_path / "na.xyz").write_text("1\n\nNa 0 0 0\n")
    rc = main(["generate", "--structures", str(tmp_path / "na.xyz"), "--charge", "1",
               "--out", str(tmp_path / "d.npz"), "--method", "hf", "--basis", "6-31g",
               "--workers", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    flat = " ".join(err.split())
    assert "hf/6-31g with density fitting cannot treat a molecule with the elements Na" in flat
    assert "--no-density-fit" in flat
    assert not (tmp_path / "d.work" / "conformers").exists() or not list(
        (tmp_path / "d.work" / "conformers").iterdir())


# ------------------------------------------------------------------ item 2: M  CHG in SDF
ACETATE_SDF = """acetate
  manual

  4  3  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.5200    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    2.1500    1.0800    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
    2.1500   -1.0800    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  2  3  2  0
  2  4  1  0
M  CHG  1   4  -1
M  END
$$$$
"""


def test_sdf_formal_charges_are_the_net_charge(tmp_path):
    pytest.importorskip("rdkit")
    from dcmnet.inference.structures import read_structures, structure_charge
    p = tmp_path / "acetate.sdf"
    p.write_text(ACETATE_SDF)
    (a,) = read_structures(p)
    assert structure_charge(a, strict=True) == -1.0
    from dcmnet.generate.molecules import read_structure_file
    assert read_structure_file(p).net_charge == -1


def test_odd_electron_count_without_charge_is_refused(tmp_path):
    from dcmnet.inference.structures import read_structures, structure_charge
    p = tmp_path / "oh.xyz"
    p.write_text("2\n\nO 0 0 0\nH 0.97 0 0\n")
    (a,) = read_structures(p)
    with pytest.raises(DataError, match=r"oh\.xyz@0 \(HO\): no net charge is given and charge 0 "
                                        r"leaves 9 electrons"):
        structure_charge(a, strict=True)
    assert structure_charge(a, -1) == -1.0
    from dcmnet.generate.molecules import read_structure_file
    with pytest.raises(DataError, match=r"oh\.xyz: no net charge is given"):
        read_structure_file(p)
    assert read_structure_file(p, -1).net_charge == -1


# ------------------------------------------------------------------ item 15: folder after data
def test_train_on_bad_data_leaves_no_experiment_folder(tmp_path, capsys):
    from dcmnet.cli.main import main
    m = _water_molecule()
    m["R"] = m["R"].copy()
    m["R"][2] = m["R"][1]
    Dataset.from_molecules([m, _water_molecule()]).save(tmp_path / "bad.npz")
    rc = main(["train", "--name", "t", "--output-dir", str(tmp_path / "exp"),
               "--data-files", str(tmp_path / "bad.npz"), "--num-epochs", "1"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err and "atoms 1 and 2 of molecule 0" in err
    assert not (tmp_path / "exp" / "t").exists()


# ------------------------------------------------------------------ item 16: small ones
def test_misspelled_subcommand_suggests(capsys):
    from dcmnet.cli.main import main
    with pytest.raises(SystemExit) as e:
        main(["trian", "--name", "x"])
    assert e.value.code == 2
    assert "unknown command 'trian' (did you mean train?)" in capsys.readouterr().err


def test_help_texts_generate_defaults_and_predict_arguments():
    from dcmnet.cli.main import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    gen = sub.choices["generate"].format_help()
    assert "(default: def2-svp)" in gen and "(default: 10)" in gen
    pred = sub.choices["predict"]
    missing = [a.dest for a in pred._actions if not a.help and a.dest != "help"]
    assert missing == []


# ------------------------------------------------------------------ item 3: fragments (partial)
def test_distant_fragments_are_detected_and_warned(tmp_path):
    from dcmnet.data.connectivity import fragments
    from dcmnet.fitting import monopole_esp
    from dcmnet.surface import vdw_shell_points
    w = _water_molecule()
    Z = np.concatenate([w["Z"], [11]])
    R = np.concatenate([w["R"], [[12.0, 0.0, 0.0]]])
    assert list(fragments(Z, R)) == [0, 0, 0, 1]
    assert list(fragments(w["Z"], w["R"])) == [0, 0, 0]
    grid = vdw_shell_points(Z, R, density=0.3)
    m = {"Z": Z, "R": R, "grid": grid, "net_charge": 1.0, "name": "water_na",
         "esp": monopole_esp(R, np.array([-0.8, 0.4, 0.4, 1.0]), grid)}
    Dataset.from_molecules([m, w]).save(tmp_path / "f.npz")
    from dcmnet.data.loader import load_dataset_with_report
    _, report = load_dataset_with_report(tmp_path / "f.npz")
    text = " ".join(report)
    assert ("1 of 2 molecules consist of disconnected fragments (e.g. molecule 0 (water_na): "
            "2 fragments") in text


# ------------------------------------------------------------------ items 9-11: a pleasant run
def test_train_output_compact_lines_tables_on_stdout_ema_said(tmp_path, small_npz, capsys):
    import warnings as _w
    from dcmnet.cli.main import main
    # the tiny settings of the shared ``tiny_experiment`` (conftest.TINY, batch size 4): the
    # same compiled programs, taken from the session's compilation cache
    tiny = ["--n-dcm", "2", "--features", "8", "--max-degree", "1", "--num-iterations", "1",
            "--num-basis-functions", "8", "--batch-size", "4", "--no-progress"]
    rc = main(["train", "--name", "t", "--output-dir", str(tmp_path / "exp"), "--data-files",
               str(small_npz), "--num-epochs", "3", "--table-every", "2"] + tiny)
    o = capsys.readouterr()
    assert rc == 0
    out = " ".join(o.out.split())
    assert "epoch 1/3 loss " in out and "valid ESP RMSE" in out and "ETA" in out
    assert "epoch 2/3 loss" not in out and "Epoch 2 (" in out and "Epoch 3 (" in out
    assert "Valid uses the EMA parameters" in out
    assert "q mean" not in out and "q std" in out
    assert "Epoch" not in o.err
    # raw warnings come out formatted, without source path and code line
    with _w.catch_warnings():
        import dcmnet.cli.main as _cli
        _cli._format_warnings()
        _w.simplefilter("always")
        _w.warn("something odd", UserWarning)
    err = capsys.readouterr().err
    assert "warning: something odd" in err and "UserWarning" not in err and ".py:" not in err


# ------------------------------------------------------------------ item 14: schedule on restart
def test_changed_num_epochs_says_the_schedule_changes(tmp_path):
    from dcmnet.config import create_default_config
    from dcmnet.training.runner import _check_compatible
    old = create_default_config("x", num_epochs=2)
    new = create_default_config("x", num_epochs=4)
    notes = " ".join(_check_compatible(old, new, tmp_path))
    assert "num_epochs: 2 -> 4" in notes
    assert ("the learning-rate schedule now spans 4 epochs instead of 2, so this run differs "
            "from one straight 4-epoch run") in notes and "--stop-after-epochs" in notes
    assert _check_compatible(old, create_default_config("x", num_epochs=2), tmp_path) == []


def test_training_curve_legend_says_validation_uses_ema(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from dcmnet.analysis import plots
    seen = []
    orig = plots._finish

    def grab(fig, *a, **k):
        seen.extend(t.get_text() for ax in fig.axes if ax.get_legend()
                    for t in ax.get_legend().get_texts())
        return orig(fig, *a, **k)

    monkeypatch.setattr(plots, "_finish", grab)
    hist = {"rows": [{"epoch": 1, "train_loss": 2.0, "valid_loss": 1.5, "train_esp_rmse": 3.0,
                      "valid_esp_rmse": 2.0, "lr": 1e-3},
                     {"epoch": 2, "train_loss": 1.0, "valid_loss": 0.8, "train_esp_rmse": 2.0,
                      "valid_esp_rmse": 1.5, "lr": 5e-4}], "best_epoch": 2, "status": "ok"}
    plots.plot_training_curves(hist, tmp_path / "curves")
    assert "valid (EMA parameters with --use-ema, the default)" in seen
    assert "train (running parameters, epoch mean)" in seen


# ------------------------------------------------------------------ item 13: readable tables
def test_compare_and_worst_molecules_fit_80_columns(tiny_experiment, small_npz):
    from rich.console import Console
    from dcmnet.analysis import analyze_checkpoint, compare_checkpoints, comparison_table
    from dcmnet.analysis.tables import worst_molecules_table
    data = _load(small_npz)
    rows = compare_checkpoints([tiny_experiment, tiny_experiment / "checkpoints" / "latest"],
                               small_npz)
    con = Console(width=80, record=True, file=open("/dev/null", "w"))
    con.print(comparison_table(rows, width=80))
    text = con.export_text()
    assert "…" not in text and "ESP RMSE median" in text, text
    assert max(len(line) for line in text.splitlines()) <= 80
    res = analyze_checkpoint(tiny_experiment, data)
    con = Console(width=80, record=True, file=open("/dev/null", "w"))
    con.print(worst_molecules_table(res, n=5))
    text = con.export_text()
    assert "…" not in text and "worst 5 of 16 molecules" in text
    rmse = np.sort(np.asarray(res.per_molecule["dcmnet_esp_rmse"]))[::-1][:5]
    cells = [[c.strip() for c in line.split("│")] for line in text.splitlines()]
    shown = [float(c[4]) for c in cells if len(c) > 4 and c[1].isdigit()]
    np.testing.assert_allclose(shown, np.round(rmse, 3), atol=1e-3)


def test_evaluate_json_dash_writes_stdout(tiny_experiment, small_npz, capsys, tmp_path,
                                          monkeypatch):
    import json
    from dcmnet.cli.main import main
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(tiny_experiment), "--data-files", str(small_npz),
                 "--json", "-"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"):])
    assert summary["n_molecules"] == 16 if "n_molecules" in summary else isinstance(summary, dict)
    assert not (tmp_path / "-").exists()
