"""DCM-net outputs over a whole dataset (:class:`DatasetPrediction`, :func:`predict_dataset`).

The lowest layer of :mod:`dcmnet.analysis`: it runs the model and imports nothing else of
the package. JAX is imported inside :func:`predict_dataset` only.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from dcmnet.data.dataset import Dataset


@dataclasses.dataclass
class DatasetPrediction:
    """DCM-net outputs for every molecule of a dataset, ragged like the dataset.

    Attributes:
        charges: (sum n_atoms, n_dcm) charges, e.
        positions: (sum n_atoms, n_dcm, 3) absolute site positions, Å.
        esp: (sum n_grid,) ESP on the dataset's grid points, Hartree/e.
        dipole: (M, 3) dipole about the centre of mass, e·Å.
        seconds: wall time of the (compiled) forward passes, s.
        compile_seconds: time spent compiling (warm-up of each padding shape), s.
    """

    charges: np.ndarray
    positions: np.ndarray
    esp: np.ndarray
    dipole: np.ndarray
    seconds: float = float("nan")
    compile_seconds: float = float("nan")

    @property
    def n_dcm(self) -> int:
        return int(self.charges.shape[1])


def predict_dataset(model, params, data: Dataset, batch_size: int = 16,
                    esp_chunk_size: int | None = None) -> DatasetPrediction:
    """Runs DCM-net (:func:`dcmnet.model.predict_batch`, jitted) over a dataset in padded
    batches (:func:`dcmnet.data.batching.iter_predictions`).

    Each padding shape is compiled once before the timed pass, so ``seconds`` measures
    inference only.

    Args:
        model, params: a :class:`dcmnet.model.DCMNet` and its parameters.
        data: the ragged dataset (its grid points receive the predicted ESP).
        batch_size: molecules per batch.
        esp_chunk_size: grid points per ESP chunk (None: all at once).
    Returns:
        :class:`DatasetPrediction` (float64 arrays).
    Raises:
        DataError: an atomic number beyond the model's embedding.
    """
    import jax

    from dcmnet.data.batching import iter_predictions, make_batch, prediction_plan
    from dcmnet.model import check_atomic_numbers, predict_batch

    check_atomic_numbers(data.Z, model.max_atomic_number)
    jitted = jax.jit(lambda p, b: predict_batch(model, p, b, esp_chunk_size))

    def fn(b):
        return jax.device_get(jitted(params, b))

    plan = prediction_plan(data, batch_size)
    t0 = time.perf_counter()
    first = {}
    for idx, *shape in plan:  # warm-up: compile each padding shape once
        first.setdefault(tuple(shape), idx)
    for (B, A, G), idx in first.items():
        fn(make_batch(data, idx, B, A, G))
    compile_s = time.perf_counter() - t0
    ao, go = data.atom_offsets, data.grid_offsets
    n_dcm = int(model.n_dcm)
    charges = np.zeros((int(ao[-1]), n_dcm))
    positions = np.zeros((int(ao[-1]), n_dcm, 3))
    esp = np.zeros(int(go[-1]))
    dipole = np.zeros((len(data), 3))
    t0 = time.perf_counter()
    for i, out in iter_predictions(fn, data, plan=plan):
        charges[ao[i]:ao[i + 1]] = out["charges"]
        positions[ao[i]:ao[i + 1]] = out["positions"]
        esp[go[i]:go[i + 1]] = out["esp"]
        dipole[i] = out["dipole"]
    return DatasetPrediction(charges, positions, esp, dipole,
                             seconds=time.perf_counter() - t0, compile_seconds=compile_s)
