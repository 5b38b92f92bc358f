"""Shipped models: name resolution, the model card, domain warnings, `dcmnet models`."""
import json
import shutil
import warnings

import numpy as np
import pytest

import dcmnet.models as models
from dcmnet.errors import CheckpointError
from dcmnet.training.experiment import find_experiment_dir, load_experiment, resolve_experiment_path

CARD = dict(name="fake-general", summary="a test model", n_dcm=2,
            level_of_theory="B3LYP/def2-SVP", elements=[1, 6, 7, 8], net_charges=[-1, 0, 1],
            max_heavy_atoms=9, accuracy={"overall": {"fake-general": {"esp_rmse_median": 0.61}}})


@pytest.fixture()
def fake_models(tmp_path, monkeypatch, tiny_experiment):
    """A models folder holding one shipped model made from the tiny experiment."""
    root = tmp_path / "models"
    dst = root / "fake-general"
    shutil.copytree(tiny_experiment, dst, ignore=shutil.ignore_patterns("tensorboard", ".lock"))
    (dst / "card.json").write_text(json.dumps(CARD))
    monkeypatch.setattr(models, "MODELS_DIR", root)
    return dst


def test_name_resolves_to_shipped_folder(fake_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_experiment_path("fake-general") == fake_models
    assert find_experiment_dir("fake-general") == fake_models
    cfg, model, params, _ = load_experiment("fake-general")
    assert cfg.model.n_dcm == 2


def test_local_folder_wins_with_warning(fake_models, tmp_path, monkeypatch, tiny_experiment):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_experiment, tmp_path / "fake-general",
                    ignore=shutil.ignore_patterns("tensorboard", ".lock"))
    with pytest.warns(UserWarning, match="both a folder here and a shipped model"):
        p = resolve_experiment_path("fake-general")
    assert p == (tmp_path / "fake-general").resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_experiment_path("./fake-general") == p  # explicit path: no warning


def test_unknown_name_lists_shipped_models(fake_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="fake-general"):
        resolve_experiment_path("no-such-model")


def test_predictor_from_shipped_name(fake_models, tmp_path, monkeypatch):
    from ase.build import molecule

    from dcmnet.inference.predict import Predictor

    monkeypatch.chdir(tmp_path)
    pred = Predictor.from_experiment("fake-general")
    res = pred.predict([molecule("CH3CH2OH")])
    q = np.asarray(res.charges)
    assert np.all(np.isfinite(q))
    assert abs(float(q.sum())) < 1e-4


def test_domain_warnings_name_atom_and_fix():
    card = models.ModelCard(**{k: v for k, v in CARD.items()})
    assert models.domain_warnings(card, [8, 1, 1], 0) == []
    w = models.domain_warnings(card, [6, 17, 1, 1, 1], 0, where="mol.xyz frame 0")
    assert len(w) == 1 and "atom 1 (Cl)" in w[0] and "--init-from fake-general" in w[0]
    w = models.domain_warnings(card, [8, 1, 1], -2)
    assert any("net charge -2" in x for x in w)
    w = models.domain_warnings(card, [8, 1], 0)  # OH radical: 9 electrons
    assert any("9 electrons" in x and "radical" in x for x in w)
    w = models.domain_warnings(card, [6] * 20 + [1] * 42, 0)
    assert any("20 heavy atoms" in x for x in w)


def test_card_markdown_has_domain_and_accuracy():
    card = models.ModelCard(**CARD)
    md = models.render_card_markdown(card)
    assert "| elements | H C N O |" in md
    assert "| net charges (e) | -1 0 +1 |" in md
    assert "0.610" in md


def test_models_command_lists_cards(fake_models, capsys):
    from dcmnet.cli.main import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "fake-general" in out and "0.61" in out
    assert main(["models", "nope"]) == 2


def test_every_shipped_model_loads():
    """The models inside the package (if any) have a valid card and load."""
    for card in models.list_models():
        cfg, model, params, _ = load_experiment(card.name)
        assert cfg.model.n_dcm == card.n_dcm
        assert set(card.elements) <= set(range(1, cfg.model.max_atomic_number + 1))


def test_predictor_warns_outside_domain(fake_models, tmp_path, monkeypatch):
    from dcmnet.models import DomainWarning
    from dcmnet.inference.predict import Predictor

    monkeypatch.chdir(tmp_path)
    pred = Predictor.from_experiment("fake-general")
    Z = np.array([6, 9, 1, 1, 1])  # CH3F: fluorine is not in the fake card's elements
    R = np.array([[0, 0, 0], [1.38, 0, 0], [-0.36, 1.03, 0], [-0.36, -0.51, 0.89],
                  [-0.36, -0.51, -0.89]], float)
    with pytest.warns(DomainWarning, match=r"atom 1 \(F\)"):
        res = pred.predict_arrays([Z], [R], [0.0])
    assert abs(float(res.charges.sum())) < 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        pred.predict_arrays([np.array([8, 1, 1])],
                            [np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], float)],
                            [0.0])


def test_analyze_shipped_model_needs_data(fake_models, tmp_path, monkeypatch):
    from dcmnet.analysis import resolve_data
    from dcmnet.errors import DataError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="shipped model and carries no data"):
        resolve_data(find_experiment_dir("fake-general"))
