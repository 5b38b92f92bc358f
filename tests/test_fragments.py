"""Per-fragment net charges (issue 10 item 3): a structure of several disconnected
fragments keeps each fragment's own net charge in prediction and in the loss."""
import warnings

import jax
import numpy as np
import pytest
from ase import Atoms

from dcmnet.errors import DataError
from dcmnet.fragments import constrain_fragment_charges
from dcmnet.model import create_model
from dcmnet.inference.predict import Predictor
from dcmnet.inference.structures import read_structures

WATER = (np.array([8, 1, 1]), np.array([[0.0, 0.0, 0.0], [0.757, 0.586, 0.0],
                                          [-0.757, 0.586, 0.0]]))


def _water_and_sodium(d=12.0):
    Z = np.concatenate([WATER[0], [11]])
    R = np.concatenate([WATER[1], [[d, 0.0, 0.0]]])
    return Atoms(numbers=Z, positions=R, info={"charge": 1.0})


@pytest.fixture(scope="module")
def predictor():
    model = create_model(n_dcm=2, features=8, max_degree=1, num_iterations=1)
    Z = np.zeros((1, 8), np.int32)
    Z[0, :3] = WATER[0]
    R = np.zeros((1, 8, 3), np.float32)
    R[0, :3] = WATER[1]
    am = (Z > 0).astype(np.float32)
    params = model.init(jax.random.PRNGKey(3), Z, R, am, np.zeros(1, np.float32))
    return Predictor(model, params, batch_size=4)


def test_constraint_sums_each_fragment_and_keeps_padding_zero():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 6, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], np.float32)
    frag = np.array([[0, 0, 1, 1, 2, 0], [0, 0, 0, 0, 0, 0]], np.int32)
    fq = np.zeros((2, 6), np.float32)
    fq[0, :3] = [1.0, -1.0, 0.0]
    fq[1, 0] = -2.0
    out = np.asarray(constrain_fragment_charges(q, mask, frag, fq))
    s = out.sum(-1)
    np.testing.assert_allclose([s[0, :2].sum(), s[0, 2:4].sum(), s[0, 4]], [1.0, -1.0, 0.0],
                               atol=1e-5)
    np.testing.assert_allclose(s[1, :3].sum(), -2.0, atol=1e-5)
    assert np.all(out[0, 5] == 0) and np.all(out[1, 3:] == 0)
    # one uniform shift per fragment: differences inside a fragment are unchanged
    d_in = out[0, :2] - q[0, :2]
    np.testing.assert_allclose(d_in, d_in[0, 0], atol=1e-6)


def test_distant_ion_keeps_its_charge_with_fragment_charges(predictor):
    res = predictor.predict([_water_and_sodium()], fragment_charges=[0.0, 1.0])
    q = res.atom_charges
    np.testing.assert_allclose(q[:3].sum(), 0.0, atol=1e-5)
    np.testing.assert_allclose(q[3], 1.0, atol=1e-5)
    np.testing.assert_allclose(q.sum(), 1.0, atol=1e-5)


def test_without_fragment_charges_warns_and_charge_leaks(predictor):
    with pytest.warns(UserWarning, match="2 disconnected fragments"):
        res = predictor.predict([_water_and_sodium()])
    np.testing.assert_allclose(res.atom_charges.sum(), 1.0, atol=1e-5)
    # the per-record projection alone spreads the excess over all 4 atoms: the water is
    # not neutral (this is what the constraint fixes)
    assert abs(res.atom_charges[:3].sum()) > 1e-3


def test_info_fragment_charges_and_mixed_batch(predictor):
    a = _water_and_sodium()
    a.info["fragment_charges"] = [0.0, 1.0]
    single = Atoms(numbers=WATER[0], positions=WATER[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = predictor.predict([single, a])
    ref = predictor.predict([single])
    q = res.atom_charges
    np.testing.assert_allclose(q[:3], ref.atom_charges, atol=1e-6)  # unaffected neighbour
    np.testing.assert_allclose(q[3:6].sum(), 0.0, atol=1e-5)
    np.testing.assert_allclose(q[6], 1.0, atol=1e-5)


def test_sdf_formal_charges_give_fragment_charges(predictor, tmp_path):
    pytest.importorskip("rdkit")
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)[O-].[NH4+]"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    conf = mol.GetConformer()
    frags = Chem.GetMolFrags(mol)
    for i in frags[1]:  # move the ammonium 10 Å away
        p = conf.GetAtomPosition(i)
        conf.SetAtomPosition(i, (p.x + 10.0, p.y, p.z))
    path = tmp_path / "pair.sdf"
    Chem.MolToMolFile(mol, str(path))
    (a,) = read_structures(path)
    assert a.info["charge"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = predictor.predict([a])
    q = res.atom_charges
    idx = np.array(frags[0])
    np.testing.assert_allclose(q[idx].sum(), -1.0, atol=1e-5)
    np.testing.assert_allclose(q[np.array(frags[1])].sum(), 1.0, atol=1e-5)


def test_wrong_fragment_charges_are_refused(predictor):
    with pytest.raises(DataError, match="3 fragment charges but the structure has 2"):
        predictor.predict([_water_and_sodium()], fragment_charges=[0, 1, 0])
    with pytest.raises(DataError, match="sum to 0 e but the net charge is 1 e"):
        predictor.predict([_water_and_sodium()], fragment_charges=[0, 0])


def test_cli_fragment_charges(tiny_experiment, tmp_path, capsys):
    import json

    from ase.io import write

    from dcmnet.cli.main import main

    path = tmp_path / "pair.extxyz"
    write(path, _water_and_sodium())
    rc = main(["predict", str(tiny_experiment), "--structures", str(path), "--out",
               str(tmp_path / "out"), "--fragment-charges", "0,1", "--formats", "json"])
    assert rc == 0
    frame = json.loads((tmp_path / "out" / "predictions.json").read_text())["frames"][0]
    q = np.asarray(frame["atom_charges"], float)
    np.testing.assert_allclose([q[:3].sum(), q[3]], [0.0, 1.0], atol=1e-5)
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tiny_experiment), "--structures", str(path), "--out",
              str(tmp_path / "o2"), "--fragment-charges", "zero,one"])
    assert exc.value.code == 2
    assert "comma-separated numbers" in capsys.readouterr().err
