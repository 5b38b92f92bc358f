"""Predictions of a trained DCM-net for new structures (:mod:`dcmnet.inference.predict`).

Used by the ``dcmnet predict`` command, the ASE calculator (:mod:`dcmnet.md.calculator`) and
the MD exporters (:mod:`dcmnet.export`).
"""
