"""RMSE and R² of predicted against reference ESP, over all points and split into neutral
molecules and ions (:func:`parity_stats`; drawn by :func:`dcmnet.analysis.plots.plot_esp_parity`).

The ESP of an ion is large everywhere on its grid (of order 100 kcal/(mol·e) at 1.4-2 ×
r_vdW for a net charge of ±1 e), so over a set that holds ions the pooled R² measures
mostly whether the ions' net charges are right; the neutral-only R² is the one that says
how well the shape of a neutral molecule's ESP is reproduced.
"""
from __future__ import annotations

import math

import numpy as np

#: |net charge| above which a molecule counts as an ion, e.
ION_THRESHOLD_E = 1e-3


def fit_stats(ref, pred) -> dict:
    """RMSE and coefficient of determination of ``pred`` against ``ref`` (same units).

    ``R² = 1 − Σ(p − r)² / Σ(r − mean r)²`` over the points where both are finite
    (NaN when fewer than two points or a constant reference).

    Args:
        ref, pred: (P,) arrays, e.g. ESP in kcal/(mol·e).
    Returns:
        ``{"rmse", "r2", "n_points"}`` (rmse in the units of the input; NaN without points).
    """
    r, p = np.asarray(ref, np.float64), np.asarray(pred, np.float64)
    ok = np.isfinite(r) & np.isfinite(p)
    r, p = r[ok], p[ok]
    if r.size == 0:
        return {"rmse": math.nan, "r2": math.nan, "n_points": 0}
    sse = float(np.sum((p - r) ** 2))
    sst = float(np.sum((r - r.mean()) ** 2))
    return {"rmse": math.sqrt(sse / r.size), "r2": 1.0 - sse / sst if sst > 0 else math.nan,
            "n_points": int(r.size)}


def parity_stats(res, methods=None) -> dict:
    """:func:`fit_stats` of each method's ESP over all points, the points of neutral
    molecules and those of ions (``|net charge| > ION_THRESHOLD_E``).

    Args:
        res: a :class:`dcmnet.analysis.CheckpointAnalysis` (uses ``points["esp_ref"]``,
            ``points["esp_<method>"]``, ``points["molecule"]`` and
            ``per_molecule["net_charge"]``).
        methods: method names (default: every ``esp_<method>`` in ``res.points``).
    Returns:
        ``{method: {"all": stats, "neutral": stats, "ions": stats}}`` plus
        ``"n_molecules"``, ``"n_neutral"``, ``"n_ions"`` (counts of molecules).
    Raises:
        KeyError: a method absent from ``res.points``.
    """
    pts = res.points
    q = np.asarray(res.per_molecule["net_charge"], np.float64)
    ion_mol = np.abs(q) > ION_THRESHOLD_E
    ion_pt = ion_mol[np.asarray(pts["molecule"], np.int64)]
    ref = np.asarray(pts["esp_ref"], np.float64)
    if methods is None:
        methods = [k[4:] for k in pts if k.startswith("esp_") and k != "esp_ref"]
    out: dict = {"n_molecules": int(q.size), "n_neutral": int((~ion_mol).sum()),
                 "n_ions": int(ion_mol.sum())}
    for m in methods:
        p = np.asarray(pts[f"esp_{m}"], np.float64)
        out[m] = {"all": fit_stats(ref, p), "neutral": fit_stats(ref[~ion_pt], p[~ion_pt]),
                  "ions": fit_stats(ref[ion_pt], p[ion_pt])}
    return out
