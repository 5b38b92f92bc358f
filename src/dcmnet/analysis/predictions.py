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
    """Runs DCM-net (:func:`dcmnet.training.loss.predict`, jitted) over a dataset in padded batches.

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

    from dcmnet.data.batching import BatchIterator, make_batch
    from dcmnet.training.loss import predict
    from dcmnet.model import check_atomic_numbers

    check_atomic_numbers(data.Z, model.max_atomic_number)
    fn = jax.jit(lambda p, b: predict(model, p, b, esp_chunk_size))
    M = len(data)
    it = BatchIterator(data, max(1, min(int(batch_size), M)), shuffle=False)
    plan = it.batch_plan(0)
    t0 = time.perf_counter()
    for k, (A, G) in enumerate(it.shapes):
        chunk = next((c for kk, c in plan if kk == k), None)
        if chunk is not None:
            jax.block_until_ready(fn(params, make_batch(data, chunk, it.batch_size, A, G)))
    compile_s = time.perf_counter() - t0
    ao, go = data.atom_offsets, data.grid_offsets
    n_dcm = int(model.n_dcm)
    charges = np.zeros((int(ao[-1]), n_dcm))
    positions = np.zeros((int(ao[-1]), n_dcm, 3))
    esp = np.zeros(int(go[-1]))
    dipole = np.zeros((M, 3))
    t0 = time.perf_counter()
    for b in it.epoch_batches(0):
        out = jax.device_get(fn(params, b))
        for j, i in enumerate(b["index"]):
            if i < 0:
                continue
            na, ng = int(data.n_atoms[i]), int(data.n_grid[i])
            charges[ao[i]:ao[i + 1]] = out["charges"][j, :na]
            positions[ao[i]:ao[i + 1]] = out["positions"][j, :na]
            esp[go[i]:go[i + 1]] = out["esp"][j, :ng]
            dipole[i] = out["dipole"][j]
    return DatasetPrediction(charges, positions, esp, dipole,
                             seconds=time.perf_counter() - t0, compile_seconds=compile_s)
