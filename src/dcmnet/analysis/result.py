"""The result of an analysis (:class:`CheckpointAnalysis`) and the names of its methods."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from dcmnet.data.dataset import Dataset

#: Methods compared by the analysis: DCM-net, the ESP-fitted atomic monopoles, monopoles +
#: dipoles and monopoles + dipoles + quadrupoles, and the reference ``mono`` charges.
METHODS = ("dcmnet", "fitted_monopoles", "fitted_dipoles", "fitted_quadrupoles",
           "reference_mono")
#: Bin edges of the vdW-scaled distance shells (multiples of the vdW radius of the closest
#: atom); the bundled data sits on 1.4, 1.6, 1.8, 2.0 × r_vdW.
DEFAULT_SHELL_EDGES = (0.0, 1.5, 1.7, 1.9, math.inf)


@dataclasses.dataclass
class CheckpointAnalysis:
    """Everything :func:`analyze_checkpoint` computes (see :mod:`dcmnet.analysis`).

    Attributes:
        source: experiment or checkpoint folder (or a description).
        checkpoint: ``{"kind", "epoch"}`` of the restored checkpoint (empty without one).
        n_dcm: charges per atom; ``n_parameters``: model parameters.
        data_source: description of the evaluated data.
        per_molecule: dict of (M,) columns (see :meth:`per_molecule_rows`).
        by_element: rows ``{method, element, Z, n_points, n_molecules, sse, rmse, mae}``.
        by_shell: rows ``{method, shell, lo, hi, n_points, sse, rmse, mae}``.
        summary: :func:`dcmnet.training.evaluate.summarize` keys plus pooled RMSEs, baseline stats,
            timing.
        points: per-point arrays: ``molecule`` (index), ``esp_ref`` and ``esp_<method>``
            (kcal/(mol·e), NaN where a method is absent), ``nearest_atom`` (global atom
            index), ``nearest_Z``, ``shell_ratio``.
        sites: ``charges`` (sum n_atoms, n_dcm) e, ``positions`` (…, 3) Å,
            ``fitted_charges`` (sum n_atoms,) e.
        data: the evaluated dataset (not exported).
    """

    source: str
    checkpoint: dict
    n_dcm: int
    n_parameters: int | None
    data_source: str
    per_molecule: dict
    by_element: list
    by_shell: list
    summary: dict
    points: dict
    sites: dict
    data: Dataset = dataclasses.field(repr=False, default=None)

    def per_molecule_rows(self) -> list[dict]:
        """One flat dict per molecule (the rows of ``predictions.csv``)."""
        cols = self.per_molecule
        M = len(cols["index"])
        return [{k: (v[i].item() if isinstance(v[i], np.generic) else v[i])
                 for k, v in cols.items()} for i in range(M)]

    def to_dict(self, include_points: bool = False) -> dict:
        """JSON-able report: header, summary, breakdowns, per-molecule rows (and, with
        ``include_points``, the per-point arrays and charge sites)."""
        out = {"source": self.source, "checkpoint": self.checkpoint, "n_dcm": self.n_dcm,
               "n_parameters": self.n_parameters, "data": self.data_source,
               "units": {"esp": "kcal/(mol*e)", "dipole": "Debye", "charge": "e",
                         "distance": "Angstrom"},
               "summary": self.summary, "by_element": self.by_element,
               "by_shell": self.by_shell, "per_molecule": self.per_molecule_rows()}
        if include_points:
            out["points"] = {k: np.asarray(v).tolist() for k, v in self.points.items()}
            out["sites"] = {k: np.asarray(v).tolist() for k, v in self.sites.items()}
        return out
