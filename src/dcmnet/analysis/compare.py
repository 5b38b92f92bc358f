"""One row per checkpoint on the same data (:func:`compare_checkpoints`)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from dcmnet.analysis.checkpoint import analyze_model, resolve_data


def compare_checkpoints(checkpoints: Sequence, data=None, *, kind: str = "best",
                        batch_size: int = 16, baselines: bool = True) -> list[dict]:
    """One row per checkpoint on the same data (plus the baselines, once).

    Args:
        checkpoints: experiment or checkpoint folders.
        data: :class:`Dataset` or path(s); None uses the first experiment's validation set
            for all of them (so every row sees the same molecules).
        kind: ``best`` or ``latest`` for experiment folders.
        batch_size: molecules per forward pass.
        baselines: add rows for fitted monopoles, fitted monopoles + dipoles, + quadrupoles
            (``n_values_per_molecule`` = N, 4N, 9N fitted values) and reference ``mono``.
    Returns:
        rows ``{name, path, kind, epoch, n_dcm, n_parameters, esp_rmse_median,
        esp_rmse_mean, esp_rmse_pooled, esp_mae_mean (kcal/(mol·e)), dipole_mae_debye,
        max_abs_net_charge_error_e, inference_ms_per_molecule, n_molecules}``.
    Raises:
        CheckpointError, DataError; ValueError for an empty list.
    """
    from dcmnet.training.experiment import find_experiment_dir, load_experiment

    if not checkpoints:
        raise ValueError("compare_checkpoints needs at least one checkpoint.")
    ds, _ = resolve_data(find_experiment_dir(checkpoints[0]), data)
    rows, base = [], None
    for i, ck in enumerate(checkpoints):
        cfg, model, params, meta = load_experiment(ck, kind=kind)
        res = analyze_model(model, params, ds, batch_size=batch_size,
                            baselines=baselines and base is None, source=str(ck))
        if base is None:
            base = res
        m = res.summary["methods"]["dcmnet"]
        is_exp = Path(ck).resolve() == find_experiment_dir(ck)
        rows.append({
            "name": cfg.name, "path": str(ck), "kind": kind if is_exp else "checkpoint",
            "epoch": int(meta.get("epoch", -1)), "n_dcm": res.n_dcm,
            "n_parameters": res.n_parameters, **_metric_cells(m),
            "inference_ms_per_molecule": res.summary.get("inference_ms_per_molecule"),
        })
    if baselines:
        for meth, label in (("fitted_monopoles", "fitted monopoles"),
                            ("fitted_dipoles", "fitted monopoles + dipoles"),
                            ("fitted_quadrupoles", "fitted monopoles + dipoles + quadrupoles"),
                            ("reference_mono", "reference mono")):
            m = base.summary["methods"].get(meth)
            if m is None:
                continue
            rows.append({"name": label, "path": "", "kind": "baseline", "epoch": None,
                         "n_dcm": 1 if meth in ("fitted_monopoles", "reference_mono") else None,
                         "n_parameters": None, **_metric_cells(m),
                         "inference_ms_per_molecule": None})
    return rows


def _metric_cells(m: Mapping) -> dict:
    return {"esp_rmse_median": m["esp_rmse_median_kcal_mol_e"],
            "esp_rmse_mean": m["esp_rmse_mean_kcal_mol_e"],
            "esp_rmse_pooled": m["esp_rmse_pooled_kcal_mol_e"],
            "esp_mae_pooled": m["esp_mae_pooled_kcal_mol_e"],
            "dipole_mae_debye": m["dipole_mae_debye"],
            "max_abs_net_charge_error_e": m["max_abs_net_charge_error_e"],
            "n_molecules": m["n_molecules"],
            "n_values_per_molecule": m.get("n_values_per_molecule_mean")}


#: Label of the fitted-monopole baseline when it equals the reference ``mono`` charges.
MERGED_BASELINE_LABEL = "fitted monopoles (= reference mono)"
_RTOL, _ATOL = 1e-6, 1e-9


def _same_numbers(a: Mapping, b: Mapping, keys) -> bool:
    import math
    for k in keys:
        x, y = a.get(k), b.get(k)
        if x is None and y is None:
            continue
        if x is None or y is None:
            return False
        x, y = float(x), float(y)
        if math.isnan(x) and math.isnan(y):
            continue
        if not math.isclose(x, y, rel_tol=_RTOL, abs_tol=_ATOL):
            return False
    return True


def baselines_identical(res) -> bool:
    """True when the reference ``mono`` charges give the same ESP errors as the per-molecule
    ESP-fitted monopoles (the bundled data's ``mono`` are ESP-fitted), so that one of them
    can stand for both in tables and pictures.

    Identical means: every summary metric agrees within ``1e-6`` relative / ``1e-9``
    absolute (the two least-squares fits differ only by round-off, about 1e-8 relative on
    the bundled data), and no point's ESP differs by more than ``1e-6 × max |V_ref|``.
    """
    import numpy as np

    S = res.summary.get("methods", {})
    a, b = S.get("fitted_monopoles"), S.get("reference_mono")
    if a is None or b is None or not _same_numbers(a, b, set(a) | set(b)):
        return False
    pa, pb = res.points.get("esp_fitted_monopoles"), res.points.get("esp_reference_mono")
    if pa is None or pb is None:
        return True
    pa, pb = np.asarray(pa, np.float64), np.asarray(pb, np.float64)
    if pa.shape != pb.shape or not np.array_equal(np.isfinite(pa), np.isfinite(pb)):
        return False
    ok = np.isfinite(pa)
    scale = float(np.max(np.abs(res.points["esp_ref"]))) if pa.size else 1.0
    return bool(np.all(np.abs(pa[ok] - pb[ok]) <= _RTOL * max(scale, 1.0)))


def collapse_baselines(rows: Sequence[Mapping]) -> list[dict]:
    """Rows of :func:`compare_checkpoints` for display: when the ``reference mono`` baseline
    row equals the ``fitted monopoles`` row (every metric within 1e-6 relative / 1e-9
    absolute), it is dropped and the fitted row is renamed
    ``fitted monopoles (= reference mono)``; otherwise the rows are returned unchanged."""
    rows = [dict(r) for r in rows]
    fit = next((r for r in rows if r.get("kind") == "baseline"
                and r.get("name") == "fitted monopoles"), None)
    ref = next((r for r in rows if r.get("kind") == "baseline"
                and r.get("name") == "reference mono"), None)
    if fit is None or ref is None:
        return rows
    keys = [k for k, v in fit.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not _same_numbers(fit, ref, keys):
        return rows
    fit["name"] = MERGED_BASELINE_LABEL
    return [r for r in rows if r is not ref]
