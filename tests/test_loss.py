"""The masked loss of dcmnet.training.loss, against sums done by hand.

A stand-in model returns fixed charges and site positions, so every reference value is set
as "prediction + a chosen error" and the expected loss is written out: per-molecule means
(each molecule counts once whatever its grid size), dummy molecules, missing reference
charges and dipoles, and weights that are runtime arrays (no recompilation).
"""
from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from dcmnet.model import predict_batch as predict
from dcmnet.training.loss import accumulate, epoch_metrics, loss_and_metrics, weights_array
from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL


class FixedModel:
    """``apply`` returns the charges and site positions stored in ``params``."""

    def apply(self, params, Z, R, atom_mask, net_charge):
        return params["q"], params["x"]


B, A, K, G = 3, 2, 2, 4          # molecules, atom slots, sites per atom, grid slots


def _batch_and_params(dummy_masks: bool = True):
    """Molecule 2 is a dummy (``mol_mask`` 0); with ``dummy_masks`` its other masks are 0 too,
    as :func:`dcmnet.data.batching.make_batch` pads."""
    rng = np.random.default_rng(0)
    params = {"q": rng.normal(0, 0.3, (B, A, K)).astype(np.float32),
              "x": rng.normal(0, 1.0, (B, A, K, 3)).astype(np.float32)}
    grid_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], np.float32)
    atom_mask = np.array([[1, 1], [1, 1], [1, 0]], np.float32)
    mono_mask, dipole_mask = np.array([1, 0, 1], np.float32), np.array([0, 1, 1], np.float32)
    if dummy_masks:
        for m in (grid_mask, atom_mask, mono_mask, dipole_mask):
            m[2] = 0
    batch = {
        "Z": np.array([[1, 1], [8, 1], [1, 0]], np.int32),
        "R": rng.normal(0, 1.0, (B, A, 3)).astype(np.float32),
        "atom_mask": atom_mask,
        "net_charge": np.zeros(B, np.float32),
        "grid": (3.0 + rng.normal(0, 1.0, (B, G, 3))).astype(np.float32),
        "grid_mask": grid_mask,
        "com": np.zeros((B, 3), np.float32),
        "mol_mask": np.array([1, 1, 0], np.float32),       # molecule 2 is a dummy
        "mono_mask": mono_mask,                            # molecule 1 has no charges
        "dipole_mask": dipole_mask,                        # molecule 0 has no dipole
    }
    out = jax.device_get(predict(FixedModel(), params, batch))
    # ESP errors (kcal/(mol·e)): 1 on each point of molecule 0 (2 points), 2 on each point
    # of molecule 1 (4 points), 100 on the dummy
    esp_err = np.array([1.0, 2.0, 100.0])[:, None] * grid_mask
    batch["esp"] = (out["esp"] - esp_err / HARTREE_TO_KCAL_MOL).astype(np.float32)
    # charge errors (e): 0.1 on both atoms of molecule 0; molecule 1 is absent anyway
    chg_err = np.array([[0.1, 0.1], [5.0, 5.0], [0.3, 0.0]])
    batch["mono"] = (out["atom_charges"] - chg_err).astype(np.float32)
    # dipole errors (D): |(0, 0, 0.5)| for molecule 1; molecule 0 has none
    dip_err = np.array([[9.0, 0, 0], [0, 0, 0.5], [1.0, 0, 0]])
    batch["dipole"] = (out["dipole"] - dip_err / EANGSTROM_TO_DEBYE).astype(np.float32)
    return params, batch


def _loss(weights, params, batch):
    loss, (sums, _) = loss_and_metrics(FixedModel(), params, batch, weights)
    return float(loss), {k: float(v) for k, v in jax.device_get(sums).items()}


def test_esp_term_is_a_mean_of_per_molecule_means():
    params, batch = _batch_and_params()
    loss, sums = _loss(weights_array(1.0, 0.0, 0.0), params, batch)
    # (1² + 2²) / 2 real molecules, not (2·1² + 4·2²) / 6 points, and no dummy
    assert loss == pytest.approx((1.0 + 4.0) / 2, rel=1e-3)
    assert sums["n_mol"] == 2 and sums["n_points"] == 6
    assert sums["esp_se"] == pytest.approx(2 * 1.0 + 4 * 4.0, rel=1e-3)


def test_rmse_term_is_a_mean_of_per_molecule_rmses():
    """``esp_rmse_w``: mean over real molecules of each one's ESP RMSE (errors 1 and 2
    kcal/(mol·e) on every point: RMSEs 1 and 2), added to the MSE term; the dummy's 100
    stays out."""
    params, batch = _batch_and_params()
    rmse_only, _ = _loss(weights_array(0.0, 0.0, 0.0, esp_rmse_w=1.0), params, batch)
    assert rmse_only == pytest.approx((1.0 + 2.0) / 2, rel=1e-3)
    both, _ = _loss(weights_array(1.0, 0.0, 0.0, esp_rmse_w=2.0), params, batch)
    assert both == pytest.approx((1.0 + 4.0) / 2 + 2.0 * 1.5, rel=1e-3)


def test_dummy_molecule_changes_nothing():
    params, batch = _batch_and_params()
    w = weights_array(1.0, 1.0, 1.0)
    ref = _loss(w, params, batch)
    worse = dict(batch, esp=batch["esp"].copy(), mono=batch["mono"].copy())
    worse["esp"][2] += 50.0
    worse["mono"][2] += 50.0
    assert _loss(w, params, worse) == ref


def test_mol_mask_alone_keeps_a_molecule_out_of_the_loss():
    """Even with its grid, atoms, charges and dipole marked real, a molecule whose
    ``mol_mask`` is 0 does not enter the loss, nor the ESP metric sums."""
    params, batch = _batch_and_params(dummy_masks=False)
    for w, expected in (((1, 0, 0), (1.0 + 4.0) / 2), ((0, 1, 0), 0.1**2), ((0, 0, 1), 0.5**2)):
        loss, sums = _loss(weights_array(*w), params, batch)
        assert loss == pytest.approx(expected, rel=1e-3)
        assert sums["n_mol"] == 2
        # 2 points with error 1 and 4 with error 2; the dummy's point (error 100) left out
        assert float(sums["esp_se"]) == pytest.approx(2 * 1.0 + 4 * 4.0, rel=1e-3)
        assert float(sums["esp_ae"]) == pytest.approx(2 * 1.0 + 4 * 2.0, rel=1e-3)
        assert float(sums["n_points"]) == 6


def test_missing_charges_and_dipoles_are_left_out():
    params, batch = _batch_and_params()
    chg, sums = _loss(weights_array(0.0, 1.0, 0.0), params, batch)
    assert chg == pytest.approx(0.1**2, rel=1e-3)       # molecule 0 only
    assert sums["n_chg"] == 2
    dip, sums = _loss(weights_array(0.0, 0.0, 1.0), params, batch)
    assert dip == pytest.approx(0.5**2, rel=1e-3)       # molecule 1 only
    assert sums["n_dip"] == 1
    none = dict(batch, mono_mask=np.zeros(B, np.float32),
                dipole_mask=np.zeros(B, np.float32))
    loss, sums = _loss(weights_array(0.0, 1.0, 1.0), params, none)
    assert loss == 0.0 and sums["n_chg"] == 0 and sums["n_dip"] == 0
    m = epoch_metrics(sums)
    assert math.isnan(m["charge_mae"]) and math.isnan(m["dipole_mae"])
    assert m["esp_rmse"] == pytest.approx(math.sqrt((2 * 1.0 + 4 * 4.0) / 6), rel=1e-3)


def test_weights_are_runtime_values():
    params, batch = _batch_and_params()
    traces = []

    @jax.jit
    def f(w):
        traces.append(1)
        return loss_and_metrics(FixedModel(), params, batch, w)[0]

    e, c, d = (float(f(weights_array(*w))) for w in ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    mixed = float(f(weights_array(2.0, 3.0, 0.5)))
    assert mixed == pytest.approx(2 * e + 3 * c + 0.5 * d, rel=1e-5)
    assert len(traces) == 1


def test_accumulate_keeps_extremes_and_adds_the_rest():
    a = {"n_mol": 2.0, "q_min": -0.5, "q_max": 0.2}
    b = {"n_mol": 3.0, "q_min": -0.1, "q_max": 0.9}
    assert accumulate(accumulate(None, a), b) == {"n_mol": 5.0, "q_min": -0.5, "q_max": 0.9}
