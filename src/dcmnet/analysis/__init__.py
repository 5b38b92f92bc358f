"""Analysis of trained DCM-net checkpoints: where the ESP is wrong, against which baseline.

Public API (the names of the original request):

* :func:`analyze_checkpoint` — per-molecule ESP RMSE/MAE over real grid points, breakdowns
  by the element of the closest atom and by distance shell, dipole and net-charge errors,
  for DCM-net and for two baselines on the same points: the reference ``mono`` charges
  (where the data has them) and per-molecule ESP-fitted monopoles
  (:func:`dcmnet.fitting.fit_monopoles`, net-charge-constrained least squares);
* :func:`compare_checkpoints` — one row per checkpoint (n_dcm, parameters, metrics,
  inference time per molecule);
* :func:`analyze_training_history` — the history table, the best epoch and a diagnosis in
  words (still improving / plateau / overfitting);
* :func:`batch_analysis_summary` — writes ``EXP/analysis/best_analysis.json``,
  ``predictions.csv`` and ``training_history.csv``;
* :func:`export_analysis_report` — a report as json, csv, parquet or pkl.

Units: ESP errors in kcal/(mol·e) (stored ESP in Hartree/e times
``units.HARTREE_TO_KCAL_MOL``), dipoles in Debye (e·Å times ``units.EANGSTROM_TO_DEBYE``),
charges in e, distances in Å. Dipoles are about the centre of mass (docs/conventions.md).

Definitions (per molecule m with real grid points g = 1..G_m):

* ``esp_rmse = sqrt(mean_g (V_pred − V_ref)²)``, ``esp_mae = mean_g |V_pred − V_ref|``;
* breakdowns pool the points of all molecules: for a group (element or shell) with points
  P, ``sse = Σ_P (V_pred − V_ref)²``, ``rmse = sqrt(sse/|P|)``; the groups partition the
  points, so their ``n_points`` and ``sse`` add up to the totals;
* closest atom: the atom with the smallest Euclidean distance to the point; distance
  shell: ``min_j |r − R_j| / r_vdW(Z_j)`` (the vdW-scaled distance that defines the
  Merz–Kollman shells of :mod:`dcmnet.surface`), binned by ``shell_edges``;
* dipole error: vector ``μ_pred − μ_ref`` (D), its norm, and the magnitude error
  ``|μ_pred| − |μ_ref|`` (D); net-charge error ``Σq − Q`` (e, signed).


Modules (lower layers never import higher ones): :mod:`~dcmnet.analysis.predictions`
(DCM-net over a dataset) → :mod:`~dcmnet.analysis.geometry` (closest atoms, shells,
dipoles), :mod:`~dcmnet.analysis.result` (:class:`CheckpointAnalysis`) →
:mod:`~dcmnet.analysis.metrics` (:func:`analyze_predictions`) →
:mod:`~dcmnet.analysis.checkpoint` (:func:`analyze_model`, :func:`analyze_checkpoint`,
:func:`resolve_data`) → :mod:`~dcmnet.analysis.compare`, :mod:`~dcmnet.analysis.history`,
:mod:`~dcmnet.analysis.report`, :mod:`~dcmnet.analysis.tables`.

This package imports no plotting library (plots import analysis, never the reverse).
"""
from __future__ import annotations

from dcmnet.analysis.checkpoint import analyze_checkpoint, analyze_model, resolve_data
from dcmnet.analysis.compare import compare_checkpoints
from dcmnet.analysis.history import analyze_training_history
from dcmnet.analysis.metrics import analyze_predictions
from dcmnet.analysis.predictions import DatasetPrediction, predict_dataset
from dcmnet.analysis.report import batch_analysis_summary as _batch_analysis_summary
from dcmnet.analysis.report import export_analysis_report
from dcmnet.analysis.result import DEFAULT_SHELL_EDGES, METHODS, CheckpointAnalysis
from dcmnet.analysis.tables import analysis_table, comparison_table, history_table

__all__ = [
    "METHODS",
    "DEFAULT_SHELL_EDGES",
    "DatasetPrediction",
    "CheckpointAnalysis",
    "predict_dataset",
    "analyze_predictions",
    "analyze_model",
    "analyze_checkpoint",
    "compare_checkpoints",
    "analyze_training_history",
    "batch_analysis_summary",
    "export_analysis_report",
    "resolve_data",
    "analysis_table",
    "comparison_table",
    "history_table",
    "create_model",
]


def batch_analysis_summary(exp_dir, *args, **kwargs) -> dict:
    """:func:`dcmnet.analysis.report.batch_analysis_summary`; also in the original tool's
    form ``batch_analysis_summary(exp_dir, model, test_data)``.

    In that form the model is only checked: the experiment's checkpoint holds the
    parameters, so the experiment's own architecture (``config.json``) is analysed; when
    ``model`` differs from it (n_dcm, features, ...) a ``UserWarning`` names the differing
    settings. ``batch_analysis_summary(exp_dir, data)`` and all keywords work as in
    :func:`dcmnet.analysis.report.batch_analysis_summary`.

    Raises:
        CheckpointError, DataError: as the report function.
    """
    model = kwargs.pop("model", None)
    if args and hasattr(args[0], "n_dcm") and hasattr(args[0], "apply"):
        model, args = args[0], args[1:]
    if model is not None:
        import warnings

        from dcmnet.analysis.checkpoint import model_config_mismatches
        diff = model_config_mismatches(model, exp_dir)
        if diff:
            warnings.warn(f"batch_analysis_summary: the model passed differs from the "
                          f"experiment {exp_dir} in {', '.join(diff)}; analysing the "
                          "experiment's own model (its checkpoint holds the parameters).",
                          UserWarning, stacklevel=2)
    return _batch_analysis_summary(exp_dir, *args, **kwargs)


def __getattr__(name):
    """``create_model`` where the original tool's scripts import it
    (``from dcmnet.analysis import create_model``), loaded lazily: it imports JAX."""
    if name == "create_model":
        from dcmnet.model import create_model
        return create_model
    raise AttributeError(f"module 'dcmnet.analysis' has no attribute {name!r}")
