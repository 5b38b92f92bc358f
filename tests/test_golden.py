"""Golden values: a tiny DCM-net with a fixed seed gives fixed predictions for one water.

The numbers were written down from dcmnet at issue 11 (jax 0.10, CPU, float32). A change of
the model, its initialisation, the net-charge projection, the site placement or the ESP /
dipole of point charges changes them; a refactoring must not. If a change is meant, rerun
the body of ``_predict`` and replace the numbers, saying why in the commit.
"""
from __future__ import annotations

import jax
import numpy as np

from dcmnet.model import create_model
from dcmnet.model import predict_batch as predict

CHARGES = np.array([[-0.22293782, 0.24309811],
                    [0.05431658, -0.06439672],
                    [0.05431658, -0.06439672]])                       # e, (atom, site)
POSITIONS = np.array([[[0.0, 2.0491474e-10, 1.2612496e-01],
                       [0.0, -2.9571451e-10, 9.0524614e-02]],
                      [[0.0, 7.6942706e-01, -4.7323954e-01],
                       [0.0, 7.3844129e-01, -4.6516886e-01]],
                      [[0.0, -7.6942706e-01, -4.7323954e-01],
                       [0.0, -7.3844129e-01, -4.6516886e-01]]])       # Å
ESP = np.array([0.00034742, -0.00010449, -0.00016324])                 # Hartree/e
DIPOLE = np.array([0.0, -3.5337155e-10, 2.3895327e-03])                # e·Å about the origin


def _predict():
    model = create_model(n_dcm=2, features=8, max_degree=1, num_iterations=1,
                         num_basis_functions=8, cutoff=4.0)
    Z = np.array([[8, 1, 1, 0]], np.int32)                             # one padded atom slot
    R = np.array([[[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692],
                   [0.0, 0.0, 0.0]]], np.float32)
    atom_mask = np.array([[1, 1, 1, 0]], np.float32)
    net_charge = np.zeros(1, np.float32)
    params = model.init(jax.random.PRNGKey(0), Z, R, atom_mask, net_charge)
    batch = {"Z": Z, "R": R, "atom_mask": atom_mask, "net_charge": net_charge,
             "grid": np.array([[[2.0, 0, 0], [0, 2.5, 0], [0, 0, -3.0]]], np.float32),
             "grid_mask": np.ones((1, 3), np.float32), "com": np.zeros((1, 3), np.float32)}
    return jax.device_get(predict(model, params, batch))


def test_tiny_model_predictions_are_the_golden_numbers():
    out = _predict()
    np.testing.assert_allclose(out["charges"][0, :3], CHARGES, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["positions"][0, :3], POSITIONS, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["esp"][0], ESP, rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(out["dipole"][0], DIPOLE, rtol=1e-3, atol=1e-8)
    # what the numbers must satisfy whatever they are: a neutral molecule, mirror symmetry
    assert abs(float(out["charges"][0].sum())) < 1e-6
    np.testing.assert_allclose(out["charges"][0, 1], out["charges"][0, 2], atol=1e-7)
    assert np.all(out["charges"][0, 3] == 0)                          # padding holds nothing
