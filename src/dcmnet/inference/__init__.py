"""Predictions of a trained DCM-net for new structures.

* :mod:`~dcmnet.inference.structures` — structures from any file ASE reads, their net charge;
* :mod:`~dcmnet.inference.predict` — :class:`Predictor`: padded batches through the model;
* :mod:`~dcmnet.inference.results` — :class:`PredictionResult` and :func:`write_predictions`.

Used by ``dcmnet predict``, the ASE calculator (:mod:`dcmnet.md.calculator`) and the MD
exporters (:mod:`dcmnet.export`). ``from dcmnet.inference import Predictor`` works.
"""
from dcmnet.inference.predict import Predictor
from dcmnet.inference.results import OUTPUT_FORMATS, PredictionResult, write_predictions
from dcmnet.inference.structures import read_structures, structure_charge

__all__ = ["Predictor", "PredictionResult", "read_structures", "structure_charge",
           "write_predictions", "OUTPUT_FORMATS"]
