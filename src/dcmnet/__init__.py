"""dcmnet: distributed charge models (DCM) learned by an equivariant neural network.

Reference: Boittier & Meuwly, "Efficient, Equivariant Predictions of Distributed Charge
Models", arXiv 2602.07234. Units and conventions: docs/conventions.md.
"""
__version__ = "0.1.0"
