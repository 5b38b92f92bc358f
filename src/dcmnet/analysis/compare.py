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
        baselines: add rows for fitted monopoles and reference ``mono`` charges.
    Returns:
        rows ``{name, path, kind, epoch, n_dcm, n_parameters, esp_rmse_median,
        esp_rmse_mean, esp_rmse_pooled, esp_mae_mean (kcal/(mol·e)), dipole_mae_debye,
        max_abs_net_charge_error_e, inference_ms_per_molecule, n_molecules}``.
    Raises:
        CheckpointError, DataError; ValueError for an empty list.
    """
    from dcmnet.experiment import find_experiment_dir, load_experiment

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
                            ("reference_mono", "reference mono")):
            m = base.summary["methods"].get(meth)
            if m is None:
                continue
            rows.append({"name": label, "path": "", "kind": "baseline", "epoch": None,
                         "n_dcm": 1, "n_parameters": None, **_metric_cells(m),
                         "inference_ms_per_molecule": None})
    return rows


def _metric_cells(m: Mapping) -> dict:
    return {"esp_rmse_median": m["esp_rmse_median_kcal_mol_e"],
            "esp_rmse_mean": m["esp_rmse_mean_kcal_mol_e"],
            "esp_rmse_pooled": m["esp_rmse_pooled_kcal_mol_e"],
            "esp_mae_pooled": m["esp_mae_pooled_kcal_mol_e"],
            "dipole_mae_debye": m["dipole_mae_debye"],
            "max_abs_net_charge_error_e": m["max_abs_net_charge_error_e"],
            "n_molecules": m["n_molecules"]}
