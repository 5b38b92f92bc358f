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

This module imports no plotting library (plots import analysis, never the reverse).
"""
from __future__ import annotations

import csv
import dataclasses
import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.errors import CheckpointError, DataError
from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL

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
]

#: Methods compared by the analysis: DCM-net and the two point-charge baselines.
METHODS = ("dcmnet", "fitted_monopoles", "reference_mono")
#: Bin edges of the vdW-scaled distance shells (multiples of the vdW radius of the closest
#: atom); the bundled data sits on 1.4, 1.6, 1.8, 2.0 × r_vdW.
DEFAULT_SHELL_EDGES = (0.0, 1.5, 1.7, 1.9, math.inf)


# ------------------------------------------------------------------------------ predictions
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
    """Runs DCM-net (:func:`dcmnet.loss.predict`, jitted) over a dataset in padded batches.

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
    from dcmnet.loss import predict
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


# ------------------------------------------------------------------------------ geometry
def _closest_atoms(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(sum n_grid,) global index of each point's closest atom and vdW-scaled distance."""
    from ase.data import vdw_radii

    ao, go = data.atom_offsets, data.grid_offsets
    nearest = np.zeros(int(go[-1]), dtype=np.int64)
    ratio = np.zeros(int(go[-1]))
    radii = np.asarray(vdw_radii, dtype=np.float64)[data.Z]
    for i in range(len(data)):
        R = data.R[ao[i]:ao[i + 1]]
        g = np.asarray(data.grid[go[i]:go[i + 1]], np.float64)
        d = np.linalg.norm(g[:, None, :] - R[None, :, :], axis=-1)
        nearest[go[i]:go[i + 1]] = ao[i] + np.argmin(d, axis=1)
        r = radii[ao[i]:ao[i + 1]]
        with np.errstate(invalid="ignore"):
            scaled = np.where(np.isfinite(r)[None, :], d / r[None, :], np.inf)
        ratio[go[i]:go[i + 1]] = scaled.min(axis=1)
    return nearest, ratio


def _dipoles(data: Dataset, q_atoms: np.ndarray) -> np.ndarray:
    """(M, 3) dipole (e·Å, about the centre of mass) of atom-centred charges (sum n_atoms,)."""
    com = data.centre_of_mass()
    seg = np.repeat(np.arange(len(data)), data.n_atoms)
    rel = data.R - com[seg]
    return np.stack([np.bincount(seg, weights=q_atoms * rel[:, k], minlength=len(data))
                     for k in range(3)], axis=1)


def _atom_esp(data: Dataset, q_atoms: np.ndarray) -> np.ndarray:
    """(sum n_grid,) ESP in Hartree/e of atom-centred charges."""
    from dcmnet.fitting import monopole_esp

    ao, go = data.atom_offsets, data.grid_offsets
    out = np.zeros(int(go[-1]))
    for i in range(len(data)):
        out[go[i]:go[i + 1]] = monopole_esp(data.R[ao[i]:ao[i + 1]], q_atoms[ao[i]:ao[i + 1]],
                                            data.grid[go[i]:go[i + 1]])
    return out


def _shell_labels(edges: Sequence[float]) -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= 0:
            labels.append(f"<{hi:g}")
        elif not math.isfinite(hi):
            labels.append(f">={lo:g}")
        else:
            labels.append(f"{lo:g}-{hi:g}")
    return labels


# ------------------------------------------------------------------------------ result
@dataclasses.dataclass
class CheckpointAnalysis:
    """Everything :func:`analyze_checkpoint` computes (see the module docstring).

    Attributes:
        source: experiment or checkpoint folder (or a description).
        checkpoint: ``{"kind", "epoch"}`` of the restored checkpoint (empty without one).
        n_dcm: charges per atom; ``n_parameters``: model parameters.
        data_source: description of the evaluated data.
        per_molecule: dict of (M,) columns (see :meth:`per_molecule_rows`).
        by_element: rows ``{method, element, Z, n_points, n_molecules, sse, rmse, mae}``.
        by_shell: rows ``{method, shell, lo, hi, n_points, sse, rmse, mae}``.
        summary: :func:`dcmnet.evaluate.summarize` keys plus pooled RMSEs, baseline stats,
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
        baselines: also evaluate fitted monopoles and the reference ``mono`` charges.
        shell_edges: increasing bin edges of the vdW-scaled distance (see module docstring).
        source, checkpoint, n_parameters: copied into the result.
    Returns:
        :class:`CheckpointAnalysis`.
    Raises:
        DataError: predictions that do not match the dataset's sizes.
    """
    from dcmnet.evaluate import fitted_monopole_errors, summarize

    M = len(data)
    ao, go = data.atom_offsets, data.grid_offsets
    if prediction.charges.shape[0] != ao[-1] or prediction.esp.shape[0] != go[-1]:
        raise DataError(f"predictions for {prediction.charges.shape[0]} atoms / "
                        f"{prediction.esp.shape[0]} points do not match the dataset "
                        f"({ao[-1]} atoms, {go[-1]} points).")
    edges = np.asarray(shell_edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"shell_edges must be increasing, got {list(shell_edges)}")
    seg_g = np.repeat(np.arange(M), data.n_grid)
    seg_a = np.repeat(np.arange(M), data.n_atoms)
    ref = np.asarray(data.esp, np.float64) * HARTREE_TO_KCAL_MOL
    nearest, ratio = _closest_atoms(data)
    nearest_Z = data.Z[nearest].astype(np.int64)
    shell = np.clip(np.searchsorted(edges, ratio, side="right") - 1, 0, edges.size - 2)

    esp = {"dcmnet": np.asarray(prediction.esp, np.float64) * HARTREE_TO_KCAL_MOL}
    atom_q = {"dcmnet": prediction.charges.sum(axis=1)}
    dip = {"dcmnet": np.asarray(prediction.dipole, np.float64)}
    mono_err = None
    if baselines:
        mono_err = fitted_monopole_errors(data)
        q_fit = mono_err["charges"]
        esp["fitted_monopoles"] = _atom_esp(data, q_fit) * HARTREE_TO_KCAL_MOL
        atom_q["fitted_monopoles"] = q_fit
        dip["fitted_monopoles"] = _dipoles(data, q_fit)
        if data.has_mono.any():
            has_pt = data.has_mono[seg_g]
            e_mono = _atom_esp(data, data.mono) * HARTREE_TO_KCAL_MOL
            esp["reference_mono"] = np.where(has_pt, e_mono, np.nan)
            atom_q["reference_mono"] = np.where(data.has_mono[seg_a], data.mono, np.nan)
            dip["reference_mono"] = np.where(data.has_mono[:, None],
                                             _dipoles(data, data.mono), np.nan)

    cols: dict[str, np.ndarray] = {
        "index": np.arange(M), "name": np.asarray(data.name).astype(str),
        "n_atoms": data.n_atoms.astype(np.int64), "n_grid": data.n_grid.astype(np.int64),
        "net_charge": np.asarray(data.net_charge, np.float64)}
    ref_dip = np.where(data.has_dipole[:, None], data.dipole, np.nan)
    by_element, by_shell = [], []
    z_order = sorted(np.unique(nearest_Z).tolist())
    from ase.data import chemical_symbols

    for meth in esp:
        err = esp[meth] - ref
        rmse, mae = _per_mol(err, seg_g, M)
        cols[f"{meth}_esp_rmse"] = rmse
        cols[f"{meth}_esp_mae"] = mae
        qsum = np.bincount(seg_a, weights=atom_q[meth], minlength=M)
        cols[f"{meth}_net_charge_error"] = qsum - data.net_charge
        dv = (dip[meth] - ref_dip) * EANGSTROM_TO_DEBYE
        for k, ax in enumerate("xyz"):
            cols[f"{meth}_dipole_error_{ax}"] = dv[:, k]
        cols[f"{meth}_dipole_error"] = np.linalg.norm(dv, axis=1)
        cols[f"{meth}_dipole_magnitude_error"] = (
            np.linalg.norm(dip[meth], axis=1) - np.linalg.norm(ref_dip, axis=1)) * EANGSTROM_TO_DEBYE
        ok = np.isfinite(err)
        by_element += [dict(method=meth, **r) for r in _group_rows(
            err[ok], nearest_Z[ok], seg_g[ok], z_order,
            lambda z: {"element": chemical_symbols[z], "Z": int(z)})]
        labels = _shell_labels(edges)
        by_shell += [dict(method=meth, **r) for r in _group_rows(
            err[ok], shell[ok], seg_g[ok], range(edges.size - 1),
            lambda s: {"shell": labels[s], "lo": float(edges[s]), "hi": float(edges[s + 1])})]
    for k, ax in enumerate("xyz"):
        cols[f"dcmnet_dipole_{ax}_D"] = dip["dcmnet"][:, k] * EANGSTROM_TO_DEBYE
        cols[f"reference_dipole_{ax}_D"] = ref_dip[:, k] * EANGSTROM_TO_DEBYE

    model_err = {"esp_rmse": cols["dcmnet_esp_rmse"], "esp_mae": cols["dcmnet_esp_mae"],
                 "dipole_error": cols["dcmnet_dipole_error"],
                 "net_charge_error": np.abs(cols["dcmnet_net_charge_error"])}
    if mono_err is None:
        mono_err = {"esp_rmse": np.full(M, np.nan), "esp_mae": np.full(M, np.nan),
                    "dipole_error": np.full(M, np.nan)}
    summary = dict(summarize(data, model_err, mono_err))
    pooled = {}
    for meth in esp:
        err = esp[meth] - ref
        ok = np.isfinite(err)
        pooled[meth] = {
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
    summary["methods"] = pooled
    summary["n_points"] = int(go[-1])
    if math.isfinite(prediction.seconds):
        summary["inference_seconds"] = float(prediction.seconds)
        summary["inference_ms_per_molecule"] = 1e3 * float(prediction.seconds) / M
        summary["compile_seconds"] = float(prediction.compile_seconds)
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


def analyze_model(model, params, data: Dataset, *, batch_size: int = 16,
                  baselines: bool = True, shell_edges=DEFAULT_SHELL_EDGES,
                  source: str = "<model>", checkpoint: dict | None = None,
                  esp_chunk_size: int | None = None) -> CheckpointAnalysis:
    """:func:`predict_dataset` followed by :func:`analyze_predictions`."""
    from dcmnet.model import count_parameters

    pred = predict_dataset(model, params, data, batch_size, esp_chunk_size)
    return analyze_predictions(data, pred, baselines=baselines, shell_edges=shell_edges,
                               source=source, checkpoint=checkpoint,
                               n_parameters=count_parameters(params))


def resolve_data(exp_dir, data=None, verbose: bool = False) -> tuple[Dataset, str]:
    """The dataset to analyse and a description of it.

    Args:
        exp_dir: experiment folder (used when ``data`` is None).
        data: a :class:`Dataset`, one path or a list of paths, or None for the experiment's
            validation molecules (its ``split.json`` applied to its training data).
    Raises:
        DataError, CheckpointError.
    """
    if isinstance(data, Dataset):
        return data, data.source
    from dcmnet.data.loader import load_dataset

    if data is not None and not (isinstance(data, (list, tuple)) and len(data) == 0):
        ds = load_dataset(data, verbose=verbose)
        return ds, ds.source
    from dcmnet.config import ExperimentConfig
    from dcmnet.data.split import load_split
    from dcmnet.experiment import CONFIG_NAME, SPLIT_NAME, find_experiment_dir

    exp = find_experiment_dir(exp_dir)
    cfg = ExperimentConfig.load(exp / CONFIG_NAME)
    full = load_dataset(cfg.data_files or None, verbose=verbose)
    if not (exp / SPLIT_NAME).exists():
        raise CheckpointError(f"{exp}: no {SPLIT_NAME}; pass the data to analyse explicitly.")
    split = load_split(exp / SPLIT_NAME, len(full))
    return full.subset(split.valid), f"validation set of {exp.name}"


def analyze_checkpoint(exp_dir_or_checkpoint, data=None, *, kind: str = "best",
                       batch_size: int = 16, baselines: bool = True,
                       shell_edges: Sequence[float] = DEFAULT_SHELL_EDGES,
                       esp_chunk_size: int | None = None) -> CheckpointAnalysis:
    """Analyse a trained checkpoint on ESP data.

    Args:
        exp_dir_or_checkpoint: experiment folder (``kind`` picks ``best`` or ``latest``) or
            a checkpoint folder inside it (``EXP/checkpoints/best/12``).
        data: :class:`Dataset`, path(s) of ESP files, or None for the experiment's
            validation set.
        batch_size: molecules per forward pass.
        baselines: evaluate fitted monopoles and reference ``mono`` charges on the same
            points.
        shell_edges: bins of the vdW-scaled distance of the points.
        esp_chunk_size: grid points per ESP chunk (memory), None = all.
    Returns:
        :class:`CheckpointAnalysis` (ESP in kcal/(mol·e), dipoles in D, charges in e).
    Raises:
        CheckpointError: no experiment or checkpoint; DataError: bad data.
    """
    from dcmnet.experiment import find_experiment_dir, load_experiment

    cfg, model, params, meta = load_experiment(exp_dir_or_checkpoint, kind=kind)
    ds, what = resolve_data(find_experiment_dir(exp_dir_or_checkpoint), data)
    res = analyze_model(model, params, ds, batch_size=batch_size, baselines=baselines,
                        shell_edges=shell_edges, esp_chunk_size=esp_chunk_size,
                        source=str(Path(exp_dir_or_checkpoint)),
                        checkpoint={"kind": kind, "epoch": int(meta.get("epoch", -1)),
                                    "name": cfg.name})
    res.data_source = what
    return res


# ------------------------------------------------------------------------------ comparison
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


# ------------------------------------------------------------------------------ history
def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        raise CheckpointError(f"{path}: no training history (train the experiment first).")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        row = {}
        for k, v in r.items():
            if k is None:
                continue
            try:
                row[k] = float(v) if v not in ("", None) else math.nan
            except ValueError:
                row[k] = v
        if "epoch" in row and isinstance(row["epoch"], float) and math.isfinite(row["epoch"]):
            row["epoch"] = int(row["epoch"])
        out.append(row)
    return out


def analyze_training_history(exp_dir, *, plateau_tol: float = 0.01,
                             overfit_tol: float = 0.05) -> dict:
    """The training history of an experiment, its best epoch and a diagnosis in words.

    Diagnosis (``status``), on the validation loss ``v`` and training loss ``t``:

    * ``too_short``: fewer than 3 epochs;
    * ``overfitting``: the last ``v`` exceeds its minimum by more than ``overfit_tol``
      (relative) while ``t`` kept falling after the best epoch;
    * ``plateau``: over the last ``w = max(3, n/5)`` epochs the best ``v`` improved by less
      than ``plateau_tol`` (relative) on the best before them;
    * ``improving``: otherwise.

    Args:
        exp_dir: experiment folder (holding ``training_history.csv``).
    Returns:
        dict ``{rows, columns, n_epochs, best_epoch, best_valid_loss, best (row),
        last (row), status, diagnosis (sentences), generalisation_gap}``.
    Raises:
        CheckpointError: no history file.
    """
    from dcmnet.experiment import HISTORY_NAME, find_experiment_dir

    exp = find_experiment_dir(exp_dir)
    rows = _read_history(exp / HISTORY_NAME)
    if not rows:
        raise CheckpointError(f"{exp / HISTORY_NAME}: the training history is empty.")
    columns = list(rows[0])
    v = np.array([r.get("valid_loss", math.nan) for r in rows], np.float64)
    t = np.array([r.get("train_loss", math.nan) for r in rows], np.float64)
    n = len(rows)
    vv = np.where(np.isfinite(v), v, np.inf)
    b = int(np.argmin(vv))
    best_epoch = int(rows[b].get("epoch", b + 1))
    words: list[str] = []
    gap = float(v[b] / t[b]) if t[b] > 0 and math.isfinite(v[b]) else None
    if n < 3:
        status = "too_short"
        words.append(f"Only {n} epoch(s): too few to judge convergence.")
    else:
        w = max(3, n // 5)
        best_before = float(np.min(vv[:-w])) if n > w else float(vv[0])
        best_recent = float(np.min(vv[-w:]))
        rel_gain = (best_before - best_recent) / abs(best_before) if best_before else 0.0
        rise = (v[-1] - v[b]) / abs(v[b]) if v[b] else 0.0
        train_fall = (t[b] - t[-1]) / abs(t[b]) if t[b] else 0.0
        if b < n - 1 and rise > overfit_tol and train_fall > 0:
            status = "overfitting"
            words.append(f"Overfitting: the validation loss rose {100 * rise:.1f} % above its "
                         f"minimum at epoch {best_epoch} while the training loss fell a further "
                         f"{100 * train_fall:.1f} %. Use the 'best' checkpoint, more data or a "
                         "smaller model.")
        elif rel_gain < plateau_tol:
            status = "plateau"
            words.append(f"Plateau: over the last {w} epochs the best validation loss improved "
                         f"by only {100 * max(rel_gain, 0):.2f} % (< {100 * plateau_tol:g} %). "
                         "More epochs at this learning rate will help little.")
        else:
            status = "improving"
            words.append(f"Still improving: the best validation loss fell {100 * rel_gain:.1f} % "
                         f"over the last {w} epochs; more epochs should help.")
    if gap is not None and gap > 1.5:
        words.append(f"At the best epoch the validation loss is {gap:.2f}× the training loss "
                     "(a generalisation gap).")
    lr = [r.get("lr") for r in rows if isinstance(r.get("lr"), float)]
    if lr and max(lr) > 0 and lr[-1] / max(lr) < 0.1:
        words.append(f"The learning rate has decayed to {lr[-1] / max(lr):.2g} of its peak.")
    return {"rows": rows, "columns": columns, "n_epochs": n, "best_epoch": best_epoch,
            "best_valid_loss": float(v[b]), "best": rows[b], "last": rows[-1],
            "status": status, "diagnosis": " ".join(words), "generalisation_gap": gap}


# ------------------------------------------------------------------------------ summaries
def batch_analysis_summary(exp_dir, data=None, *, kind: str = "best", batch_size: int = 16,
                           formats: Sequence[str] = (), analysis: CheckpointAnalysis | None = None
                           ) -> dict:
    """Analyse the best checkpoint and write the standard files under ``EXP/analysis/``.

    Files: ``best_analysis.json`` (header, summary, breakdowns, per-molecule rows, history
    diagnosis), ``predictions.csv`` (one row per molecule, see
    :meth:`CheckpointAnalysis.per_molecule_rows`), ``training_history.csv`` (the history
    with an ``is_best`` column), ``by_element.csv``, ``by_shell.csv``; plus
    ``best_analysis.<fmt>`` for every extra format in ``formats`` (csv, parquet, pkl).

    Args:
        exp_dir: experiment folder.
        data: as in :func:`analyze_checkpoint`.
        analysis: an analysis already computed (skips the forward pass).
    Returns:
        ``{"analysis": CheckpointAnalysis, "history": dict or None, "files": [paths]}``.
    """
    from dcmnet.experiment import find_experiment_dir
    from dcmnet.export import write_csv, write_json

    exp = find_experiment_dir(exp_dir)
    res = analysis or analyze_checkpoint(exp, data, kind=kind, batch_size=batch_size)
    out_dir = exp / "analysis"
    try:
        hist = analyze_training_history(exp)
    except CheckpointError:
        hist = None
    report = res.to_dict()
    if hist is not None:
        report["training"] = {k: hist[k] for k in ("n_epochs", "best_epoch", "best_valid_loss",
                                                   "status", "diagnosis",
                                                   "generalisation_gap")}
    files = [write_json(report, out_dir / "best_analysis.json"),
             write_csv(res.per_molecule_rows(), out_dir / "predictions.csv"),
             write_csv(res.by_element, out_dir / "by_element.csv"),
             write_csv(res.by_shell, out_dir / "by_shell.csv")]
    if hist is not None:
        rows = [{**r, "is_best": int(r.get("epoch") == hist["best_epoch"])}
                for r in hist["rows"]]
        files.append(write_csv(rows, out_dir / "training_history.csv"))
    for fmt in formats:
        if fmt != "json":
            files.append(export_analysis_report(res, out_dir / f"best_analysis.{fmt}", fmt))
    return {"analysis": res, "history": hist, "files": files}


def export_analysis_report(report, path, format: str | None = None) -> Path:
    """Write an analysis report as json, csv, parquet or pkl (pkl is output only).

    Args:
        report: a :class:`CheckpointAnalysis` (json: the full report; csv/parquet: the
            per-molecule table; pkl: the full report as plain Python containers), a list
            of row dicts (for example :func:`compare_checkpoints`), or a dict holding
            ``rows`` (for example :func:`analyze_training_history`).
        path: destination; ``format`` defaults to its suffix.
    Raises:
        ValueError: unknown format; OptionalDependencyError: parquet without pandas/pyarrow.
    """
    from dcmnet.export import write_json, write_table

    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if isinstance(report, CheckpointAnalysis):
        full = report.to_dict()
        rows = full.pop("per_molecule")
        if fmt == "json":
            return write_json({**full, "per_molecule": rows}, path)
        return write_table(rows, path, fmt, extra=full)
    if isinstance(report, Mapping):
        rows = report["rows"]
        extra = {k: v for k, v in report.items() if k != "rows"}
        return write_table(rows, path, fmt, extra=extra)
    return write_table(list(report), path, fmt)


# ------------------------------------------------------------------------------ tables
def _f(x, spec=".3f"):
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def analysis_table(res: CheckpointAnalysis, title: str | None = None):
    """A rich table: one column per method (DCM-net, fitted monopoles, reference mono)."""
    from rich.markup import escape
    from rich.table import Table

    names = {"dcmnet": f"DCM-net (n_dcm={res.n_dcm})", "fitted_monopoles": "fitted monopoles",
             "reference_mono": "reference mono"}
    meths = [m for m in METHODS if m in res.summary["methods"]]
    t = Table(title=escape(title or f"{res.source}: {res.summary['n_molecules']} molecules, "
                                    f"{res.summary['n_points']} points ({res.data_source})"),
              title_justify="left")
    t.add_column("metric")
    for m in meths:
        t.add_column(names[m], justify="right")
    S = res.summary["methods"]
    for key, label, spec in (
            ("esp_rmse_median_kcal_mol_e", "ESP RMSE median [kcal/(mol·e)]", ".3f"),
            ("esp_rmse_mean_kcal_mol_e", "ESP RMSE mean [kcal/(mol·e)]", ".3f"),
            ("esp_rmse_pooled_kcal_mol_e", "ESP RMSE all points [kcal/(mol·e)]", ".3f"),
            ("esp_mae_pooled_kcal_mol_e", "ESP MAE all points [kcal/(mol·e)]", ".3f"),
            ("dipole_mae_debye", "dipole error |Δμ| mean [D]", ".3f"),
            ("dipole_magnitude_mae_debye", "dipole | |μ|−|μref| | mean [D]", ".3f"),
            ("max_abs_net_charge_error_e", "max |Σq − Q| [e]", ".1e")):
        t.add_row(escape(label), *[_f(S[m][key], spec) for m in meths])
    for row_el in sorted({(r["Z"], r["element"]) for r in res.by_element}):
        cells = []
        for m in meths:
            r = next((r for r in res.by_element if r["method"] == m and r["Z"] == row_el[0]),
                     None)
            cells.append(_f(r["rmse"]) if r else "—")
        t.add_row(escape(f"  RMSE, closest atom {row_el[1]} [kcal/(mol·e)]"), *cells)
    shells = []
    for r in res.by_shell:
        if r["shell"] not in shells:
            shells.append(r["shell"])
    for s in shells:
        cells = []
        for m in meths:
            r = next((r for r in res.by_shell if r["method"] == m and r["shell"] == s), None)
            cells.append(_f(r["rmse"]) if r else "—")
        t.add_row(escape(f"  RMSE, shell {s} × r_vdW [kcal/(mol·e)]"), *cells)
    if "inference_ms_per_molecule" in res.summary:
        t.add_row(escape("inference [ms/molecule]"), _f(res.summary["inference_ms_per_molecule"], ".2f"),
                  *([""] * (len(meths) - 1)))
    return t


def comparison_table(rows: Sequence[Mapping], title: str = "checkpoint comparison"):
    """A rich table of :func:`compare_checkpoints` rows."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(title), title_justify="left")
    for c in ("checkpoint", "epoch", "n_dcm", "params", "ESP RMSE med", "ESP RMSE mean",
              "ESP MAE", "dipole MAE [D]", "max|Σq−Q| [e]", "ms/mol"):
        t.add_column(escape(c), justify="left" if c == "checkpoint" else "right")
    for r in rows:
        t.add_row(escape(str(r["name"])), "" if r["epoch"] is None else str(r["epoch"]),
                  str(r["n_dcm"]), "" if r["n_parameters"] is None else f"{r['n_parameters']:,}",
                  _f(r["esp_rmse_median"]), _f(r["esp_rmse_mean"]), _f(r["esp_mae_pooled"]),
                  _f(r["dipole_mae_debye"]), _f(r["max_abs_net_charge_error_e"], ".1e"),
                  _f(r["inference_ms_per_molecule"], ".2f"))
    t.caption = escape("ESP errors in kcal/(mol·e); median/mean over molecules, MAE over all points")
    return t


def history_table(hist: Mapping, every: int | None = None):
    """A rich table of the training history (every ``every``-th epoch, best epoch marked)."""
    from rich.markup import escape
    from rich.table import Table

    rows = hist["rows"]
    every = every or max(1, len(rows) // 15)
    t = Table(title=escape(f"training history: best epoch {hist['best_epoch']} "
                           f"({hist['status']})"), title_justify="left")
    cols = [("epoch", "epoch", "d"), ("lr", "lr", ".2e"), ("train_loss", "train loss", ".4g"),
            ("valid_loss", "valid loss", ".4g"),
            ("train_esp_rmse", "train ESP RMSE [kcal/(mol·e)]", ".3f"),
            ("valid_esp_rmse", "valid ESP RMSE [kcal/(mol·e)]", ".3f")]
    cols = [c for c in cols if c[0] in hist["columns"]]
    for _, label, _ in cols:
        t.add_column(escape(label), justify="right")
    for i, r in enumerate(rows):
        if i % every and i != len(rows) - 1 and r.get("epoch") != hist["best_epoch"]:
            continue
        mark = " *" if r.get("epoch") == hist["best_epoch"] else ""
        t.add_row(*[(_f(r.get(k), s) if k != "epoch" else f"{r.get(k)}{mark}")
                    for k, _, s in cols])
    t.caption = escape(hist["diagnosis"])
    return t
