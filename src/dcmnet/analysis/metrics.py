"""The metrics of an analysis from given predictions (:func:`analyze_predictions`).

Definitions and units: see :mod:`dcmnet.analysis`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from dcmnet.analysis.geometry import _atom_esp, _closest_atoms, _dipoles, _shell_labels
from dcmnet.analysis.predictions import DatasetPrediction
from dcmnet.analysis.result import DEFAULT_SHELL_EDGES, CheckpointAnalysis
from dcmnet.data.dataset import Dataset
from dcmnet.errors import DataError
from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL


def _per_mol(err: np.ndarray, seg: np.ndarray, M: int) -> tuple[np.ndarray, np.ndarray]:
    n = np.bincount(seg, minlength=M).astype(np.float64)
    se = np.bincount(seg, weights=err**2, minlength=M)
    ae = np.bincount(seg, weights=np.abs(err), minlength=M)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(se / n), ae / n


def _group_rows(err: np.ndarray, keys: np.ndarray, seg: np.ndarray, order, label_of) -> list:
    rows = []
    for key in order:
        sel = keys == key
        n = int(sel.sum())
        if n == 0:
            continue
        e = err[sel]
        sse = float(np.sum(e**2))
        row = label_of(key)
        row.update({"n_points": n, "n_molecules": int(np.unique(seg[sel]).size),
                    "sse": sse, "rmse": math.sqrt(sse / n), "mae": float(np.mean(np.abs(e)))})
        rows.append(row)
    return rows


def _check_sizes(data: Dataset, prediction: DatasetPrediction,
                 shell_edges: Sequence[float]) -> np.ndarray:
    """The shell edges as float64 after checking the predictions against ``data``."""
    ao, go = data.atom_offsets, data.grid_offsets
    if prediction.charges.shape[0] != ao[-1] or prediction.esp.shape[0] != go[-1]:
        raise DataError(f"predictions for {prediction.charges.shape[0]} atoms / "
                        f"{prediction.esp.shape[0]} points do not match the dataset "
                        f"({ao[-1]} atoms, {go[-1]} points).")
    edges = np.asarray(shell_edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"shell_edges must be increasing, got {list(shell_edges)}")
    return edges


def _add_baselines(data: Dataset, esp: dict, atom_q: dict, dip: dict, n_values: dict,
                   seg_g: np.ndarray, seg_a: np.ndarray) -> dict:
    """Add the fitted-monopole, multipole and reference-``mono`` methods to the per-method
    dicts (ESP kcal/(mol·e) per point, charges e per atom, dipoles e·Å per molecule).

    Returns:
        the fitted-monopole errors of :func:`dcmnet.training.evaluate.fitted_monopole_errors`.
    """
    from dcmnet.fitting import MULTIPOLE_BASELINES
    from dcmnet.training.evaluate import fitted_monopole_errors, fitted_multipole_errors

    M = len(data)
    mono_err = fitted_monopole_errors(data)
    q_fit = mono_err["charges"]
    esp["fitted_monopoles"] = _atom_esp(data, q_fit) * HARTREE_TO_KCAL_MOL
    atom_q["fitted_monopoles"] = q_fit
    dip["fitted_monopoles"] = _dipoles(data, q_fit)
    # atomic multipole baselines on the same points (dcmnet.fitting.fit_multipoles)
    for order in (1, 2):
        mp = fitted_multipole_errors(data, order)
        meth = MULTIPOLE_BASELINES[order]
        esp[meth] = mp["esp"] * HARTREE_TO_KCAL_MOL
        atom_q[meth] = mp["charges"]
        dip[meth] = _dipoles(data, np.nan_to_num(mp["charges"])) + np.stack(
            [np.bincount(seg_a, weights=np.nan_to_num(mp["dipoles"][:, k]), minlength=M)
             for k in range(3)], -1)
        dip[meth][~np.isfinite(mp["esp_rmse"])] = np.nan
        n_values[meth] = mp["n_parameters"]
    n_values["fitted_monopoles"] = data.n_atoms.astype(np.int64)
    if data.has_mono.any():
        has_pt = data.has_mono[seg_g]
        e_mono = _atom_esp(data, data.mono) * HARTREE_TO_KCAL_MOL
        esp["reference_mono"] = np.where(has_pt, e_mono, np.nan)
        atom_q["reference_mono"] = np.where(data.has_mono[seg_a], data.mono, np.nan)
        dip["reference_mono"] = np.where(data.has_mono[:, None],
                                         _dipoles(data, data.mono), np.nan)
    return mono_err


def _method_columns(data: Dataset, cols: dict, meth: str, err: np.ndarray, atom_q: np.ndarray,
                    dip: np.ndarray, ref_dip: np.ndarray, seg_g: np.ndarray,
                    seg_a: np.ndarray) -> None:
    """Per-molecule columns of one method into ``cols``: ESP RMSE/MAE (kcal/(mol·e)),
    net-charge error (e), dipole error components, norm and magnitude error (D)."""
    M = len(data)
    rmse, mae = _per_mol(err, seg_g, M)
    cols[f"{meth}_esp_rmse"] = rmse
    cols[f"{meth}_esp_mae"] = mae
    qsum = np.bincount(seg_a, weights=atom_q, minlength=M)
    cols[f"{meth}_net_charge_error"] = qsum - data.net_charge
    dv = (dip - ref_dip) * EANGSTROM_TO_DEBYE
    for k, ax in enumerate("xyz"):
        cols[f"{meth}_dipole_error_{ax}"] = dv[:, k]
    cols[f"{meth}_dipole_error"] = np.linalg.norm(dv, axis=1)
    cols[f"{meth}_dipole_magnitude_error"] = (
        np.linalg.norm(dip, axis=1) - np.linalg.norm(ref_dip, axis=1)) * EANGSTROM_TO_DEBYE


def _pooled(meth: str, err: np.ndarray, cols: dict, n_values: dict) -> dict:
    """Pooled and per-molecule summary numbers of one method (kcal/(mol·e), D, e)."""
    ok = np.isfinite(err)
    row = {
        "esp_rmse_pooled_kcal_mol_e": float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else None,
        "esp_mae_pooled_kcal_mol_e": float(np.mean(np.abs(err[ok]))) if ok.any() else None,
        "esp_rmse_median_kcal_mol_e": _nanstat(cols[f"{meth}_esp_rmse"], np.median),
        "esp_rmse_mean_kcal_mol_e": _nanstat(cols[f"{meth}_esp_rmse"], np.mean),
        "dipole_mae_debye": _nanstat(cols[f"{meth}_dipole_error"], np.mean),
        "dipole_magnitude_mae_debye":
            _nanstat(np.abs(cols[f"{meth}_dipole_magnitude_error"]), np.mean),
        "max_abs_net_charge_error_e":
            _nanstat(np.abs(cols[f"{meth}_net_charge_error"]), np.max),
        "n_molecules": int(np.isfinite(cols[f"{meth}_esp_rmse"]).sum()),
    }
    if meth in n_values:    # fitted values per molecule (DCM-net: charge + position)
        row["n_values_per_molecule_mean"] = float(np.mean(n_values[meth]))
    return row


def _summary(data: Dataset, prediction: DatasetPrediction, cols: dict, mono_err: dict | None,
             pooled: dict) -> dict:
    """The summary dict: :func:`dcmnet.training.evaluate.summarize`, methods and timings."""
    from dcmnet.training.evaluate import summarize

    M = len(data)
    model_err = {"esp_rmse": cols["dcmnet_esp_rmse"], "esp_mae": cols["dcmnet_esp_mae"],
                 "dipole_error": cols["dcmnet_dipole_error"],
                 "net_charge_error": np.abs(cols["dcmnet_net_charge_error"])}
    if mono_err is None:
        mono_err = {"esp_rmse": np.full(M, np.nan), "esp_mae": np.full(M, np.nan),
                    "dipole_error": np.full(M, np.nan)}
    summary = dict(summarize(data, model_err, mono_err))
    summary["methods"] = pooled
    summary["n_points"] = int(data.grid_offsets[-1])
    if math.isfinite(prediction.seconds):
        summary["inference_seconds"] = float(prediction.seconds)
        summary["inference_ms_per_molecule"] = 1e3 * float(prediction.seconds) / M
        summary["compile_seconds"] = float(prediction.compile_seconds)
    return summary


def analyze_predictions(data: Dataset, prediction: DatasetPrediction, *,
                        baselines: bool = True,
                        shell_edges: Sequence[float] = DEFAULT_SHELL_EDGES,
                        source: str = "<predictions>", checkpoint: dict | None = None,
                        n_parameters: int | None = None) -> CheckpointAnalysis:
    """All metrics of :func:`analyze_checkpoint` from given predictions (no model needed).

    Args:
        data: the reference dataset.
        prediction: DCM-net outputs on ``data`` (from :func:`predict_dataset`, or any
            charges/positions with their ESP and dipole).
        baselines: also evaluate fitted monopoles, fitted monopoles + dipoles and
            monopoles + dipoles + quadrupoles (:func:`dcmnet.fitting.fit_multipoles`;
            ill-posed conformers skipped with a warning) and the reference ``mono``
            charges. ``summary["methods"][m]["n_values_per_molecule_mean"]`` gives the
            fitted values per molecule (N, 4N, 9N; DCM-net 4·n_dcm·N).
        shell_edges: increasing bin edges of the vdW-scaled distance (see :mod:`dcmnet.analysis`).
        source, checkpoint, n_parameters: copied into the result.
    Returns:
        :class:`CheckpointAnalysis`.
    Raises:
        DataError: predictions that do not match the dataset's sizes.
    """
    from ase.data import chemical_symbols

    edges = _check_sizes(data, prediction, shell_edges)
    M = len(data)
    seg_g = np.repeat(np.arange(M), data.n_grid)
    seg_a = np.repeat(np.arange(M), data.n_atoms)
    ref = np.asarray(data.esp, np.float64) * HARTREE_TO_KCAL_MOL
    nearest, ratio = _closest_atoms(data)
    nearest_Z = data.Z[nearest].astype(np.int64)
    shell = np.clip(np.searchsorted(edges, ratio, side="right") - 1, 0, edges.size - 2)

    esp = {"dcmnet": np.asarray(prediction.esp, np.float64) * HARTREE_TO_KCAL_MOL}
    atom_q = {"dcmnet": prediction.charges.sum(axis=1)}
    dip = {"dcmnet": np.asarray(prediction.dipole, np.float64)}
    n_values = {"dcmnet": 4 * int(prediction.n_dcm) * data.n_atoms.astype(np.int64)}
    mono_err = (_add_baselines(data, esp, atom_q, dip, n_values, seg_g, seg_a)
                if baselines else None)

    cols: dict[str, np.ndarray] = {
        "index": np.arange(M), "name": np.asarray(data.name).astype(str),
        "n_atoms": data.n_atoms.astype(np.int64), "n_grid": data.n_grid.astype(np.int64),
        "net_charge": np.asarray(data.net_charge, np.float64)}
    ref_dip = np.where(data.has_dipole[:, None], data.dipole, np.nan)
    by_element, by_shell = [], []
    z_order = sorted(np.unique(nearest_Z).tolist())
    labels = _shell_labels(edges)
    for meth in esp:
        err = esp[meth] - ref
        _method_columns(data, cols, meth, err, atom_q[meth], dip[meth], ref_dip, seg_g, seg_a)
        ok = np.isfinite(err)
        by_element += [dict(method=meth, **r) for r in _group_rows(
            err[ok], nearest_Z[ok], seg_g[ok], z_order,
            lambda z: {"element": chemical_symbols[z], "Z": int(z)})]
        by_shell += [dict(method=meth, **r) for r in _group_rows(
            err[ok], shell[ok], seg_g[ok], range(edges.size - 1),
            lambda s: {"shell": labels[s], "lo": float(edges[s]), "hi": float(edges[s + 1])})]
    for k, ax in enumerate("xyz"):
        cols[f"dcmnet_dipole_{ax}_D"] = dip["dcmnet"][:, k] * EANGSTROM_TO_DEBYE
        cols[f"reference_dipole_{ax}_D"] = ref_dip[:, k] * EANGSTROM_TO_DEBYE

    pooled = {meth: _pooled(meth, esp[meth] - ref, cols, n_values) for meth in esp}
    summary = _summary(data, prediction, cols, mono_err, pooled)
    points = {"molecule": seg_g, "esp_ref": ref, "nearest_atom": nearest,
              "nearest_Z": nearest_Z, "shell_ratio": ratio}
    points.update({f"esp_{m}": v for m, v in esp.items()})
    sites = {"charges": prediction.charges, "positions": prediction.positions}
    if "fitted_monopoles" in atom_q:
        sites["fitted_charges"] = atom_q["fitted_monopoles"]
    return CheckpointAnalysis(source=source, checkpoint=checkpoint or {},
                              n_dcm=prediction.n_dcm, n_parameters=n_parameters,
                              data_source=data.source, per_molecule=cols,
                              by_element=by_element, by_shell=by_shell, summary=summary,
                              points=points, sites=sites, data=data)


def _nanstat(x, fn):
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(fn(x)) if x.size else None
