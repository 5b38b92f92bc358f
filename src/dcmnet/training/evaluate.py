"""Per-molecule evaluation of a trained DCM-net against reference ESPs and baselines.

Per molecule: ESP RMSE and MAE over its real grid points in kcal/(mol·e), dipole error in
Debye where a reference dipole exists, and |Σq − net charge|. The baseline is the best
possible atom-centred point-charge model for that very geometry: charges fitted to the
molecule's own reference ESP by net-charge-constrained least squares
(:func:`dcmnet.fitting.fit_monopoles`). Two richer baselines sit next to it, fitted the
same way on the same points: atomic monopoles + dipoles and monopoles + dipoles + traceless
quadrupoles (:func:`dcmnet.fitting.fit_multipoles`); each is reported with its number of
fitted values per molecule (N, 4N, 9N for N atoms; DCM-net places 4·n_dcm·N: a charge
and a position per site), since more parameters fit the ESP better by construction.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dcmnet.data.batching import iter_predictions
from dcmnet.data.dataset import Dataset
from dcmnet.fileio import atomic_write_json
from dcmnet.fitting import (MULTIPOLE_BASELINES, IllPosedFitWarning, fit_monopoles,
                            fit_multipoles, monopole_esp)
from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL


def model_errors(model, params, data: Dataset, batch_size: int = 16,
                 esp_chunk_size: int | None = None) -> dict:
    """Per-molecule errors of a model on a dataset.

    Returns:
        dict of (M,) arrays: ``esp_rmse``, ``esp_mae`` (kcal/(mol·e)), ``dipole_error``
        (D, |μ_pred − μ_ref|, NaN without reference), ``net_charge_error`` (e), and
        ``dipole`` (M, 3) predicted dipole in e·Å about the centre of mass.
    """
    import jax

    from dcmnet.model import check_atomic_numbers, predict_batch

    check_atomic_numbers(data.Z, model.max_atomic_number)
    fn = jax.jit(lambda p, b: predict_batch(model, p, b, esp_chunk_size))
    M = len(data)
    out = {k: np.full(M, np.nan) for k in ("esp_rmse", "esp_mae", "dipole_error",
                                           "net_charge_error")}
    out["dipole"] = np.full((M, 3), np.nan)
    go = data.grid_offsets
    for i, pred in iter_predictions(lambda b: jax.device_get(fn(params, b)), data, batch_size):
        ref = np.asarray(data.esp[go[i]:go[i + 1]], np.float32)  # as the batch holds it
        err = (pred["esp"].astype(np.float64) - ref) * HARTREE_TO_KCAL_MOL
        out["esp_rmse"][i] = math.sqrt(float(np.mean(err**2)))
        out["esp_mae"][i] = float(np.mean(np.abs(err)))
        out["net_charge_error"][i] = abs(float(pred["charges"].astype(np.float64).sum())
                                         - float(np.float32(data.net_charge[i])))
        out["dipole"][i] = pred["dipole"]
        if data.has_dipole[i]:
            out["dipole_error"][i] = float(np.linalg.norm(
                pred["dipole"] - data.dipole[i])) * EANGSTROM_TO_DEBYE
    return out


def fitted_monopole_errors(data: Dataset) -> dict:
    """Per-molecule errors of ESP-fitted monopoles (the point-charge baseline).

    Returns:
        dict of (M,) arrays ``esp_rmse``, ``esp_mae`` (kcal/(mol·e)), ``dipole_error`` (D,
        NaN without reference), and ``charges`` (sum n_atoms,) fitted charges in e.
    """
    M = len(data)
    out = {k: np.full(M, np.nan) for k in ("esp_rmse", "esp_mae", "dipole_error")}
    charges = []
    com = data.centre_of_mass()
    for i in range(M):
        m = data.molecule(i)
        q = fit_monopoles(m["R"], m["grid"], m["esp"], m["net_charge"])
        err = (monopole_esp(m["R"], q, m["grid"]) - m["esp"]) * HARTREE_TO_KCAL_MOL
        out["esp_rmse"][i] = math.sqrt(float(np.mean(err**2)))
        out["esp_mae"][i] = float(np.mean(np.abs(err)))
        if m["dipole"] is not None:
            mu = (q[:, None] * (m["R"] - com[i])).sum(0)
            out["dipole_error"][i] = float(np.linalg.norm(mu - m["dipole"])) * EANGSTROM_TO_DEBYE
        charges.append(q)
    out["charges"] = np.concatenate(charges)
    return out


def fitted_multipole_errors(data: Dataset, order: int = 2) -> dict:
    """Per-molecule errors of ESP-fitted atomic multipoles up to ``order`` (0, 1, 2).

    Conformers with fewer ESP points than free parameters are skipped (NaN) with an
    :class:`~dcmnet.fitting.IllPosedFitWarning` naming them; ``n_skipped`` counts them.

    Returns:
        dict of (M,) arrays ``esp_rmse``, ``esp_mae`` (kcal/(mol·e)), ``dipole_error`` (D;
        molecular dipole Σ q (R − com) + Σ μ about the centre of mass, NaN without
        reference), ``n_parameters`` (fitted values), ``esp`` (sum n_grid,) fitted ESP in
        Hartree/e (NaN where skipped), ``charges`` (sum n_atoms,) e, ``dipoles``
        (sum n_atoms, 3) e·Å, ``quadrupoles`` (sum n_atoms, 3, 3) e·Å², ``n_skipped``.
    """
    import warnings

    from dcmnet.fitting import multipole_parameter_count

    M = len(data)
    out = {k: np.full(M, np.nan) for k in ("esp_rmse", "esp_mae", "dipole_error")}
    out["n_parameters"] = np.array([multipole_parameter_count(n, order)
                                    for n in data.n_atoms], np.int64)
    ao, go = data.atom_offsets, data.grid_offsets
    esp = np.full(int(go[-1]), np.nan)
    q_all = np.full(int(ao[-1]), np.nan)
    d_all = np.full((int(ao[-1]), 3), np.nan)
    Q_all = np.full((int(ao[-1]), 3, 3), np.nan)
    com = data.centre_of_mass()
    skipped = []
    for i in range(M):
        m = data.molecule(i)
        if len(m["esp"]) < out["n_parameters"][i] - 1:
            skipped.append(i)
            warnings.warn(
                f"{data.source}: molecule {i} ({m.get('name', '?')}) has {len(m['esp'])} ESP "
                f"points for {out['n_parameters'][i] - 1} free parameters of the order-"
                f"{order} multipole fit; it is skipped (NaN) in that baseline.",
                IllPosedFitWarning, stacklevel=2)
            continue
        f = fit_multipoles(m["R"], m["grid"], m["esp"], m["net_charge"], order)
        err = (f["esp"] - m["esp"]) * HARTREE_TO_KCAL_MOL
        out["esp_rmse"][i] = math.sqrt(float(np.mean(err**2)))
        out["esp_mae"][i] = float(np.mean(np.abs(err)))
        if m["dipole"] is not None:
            mu = (f["charges"][:, None] * (m["R"] - com[i])).sum(0) + f["dipoles"].sum(0)
            out["dipole_error"][i] = float(np.linalg.norm(mu - m["dipole"])) * EANGSTROM_TO_DEBYE
        esp[go[i]:go[i + 1]] = f["esp"]
        q_all[ao[i]:ao[i + 1]] = f["charges"]
        d_all[ao[i]:ao[i + 1]] = f["dipoles"]
        Q_all[ao[i]:ao[i + 1]] = f["quadrupoles"]
    out.update(esp=esp, charges=q_all, dipoles=d_all, quadrupoles=Q_all,
               n_skipped=len(skipped))
    return out


def multipole_summary(data: Dataset, errs: dict) -> dict:
    """``{baseline name: {order, esp_rmse_kcal_mol_e: {median, mean}, dipole_mae_debye,
    n_parameters_per_molecule_mean, n_molecules, n_skipped}}`` for the JSON summary;
    ``errs`` maps order → :func:`fitted_multipole_errors`."""
    out = {}
    for order, e in errs.items():
        dip = e["dipole_error"]
        out[MULTIPOLE_BASELINES[order]] = {
            "order": int(order),
            "esp_rmse_kcal_mol_e": _stats(e["esp_rmse"]),
            "dipole_mae_debye": float(np.nanmean(dip)) if np.isfinite(dip).any() else None,
            "n_parameters_per_molecule_mean": float(np.mean(e["n_parameters"])),
            "n_molecules": int(np.isfinite(e["esp_rmse"]).sum()),
            "n_skipped": int(e["n_skipped"]),
        }
    return out


def _stats(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"median": None, "mean": None}
    return {"median": float(np.median(x)), "mean": float(np.mean(x))}


def summarize(data: Dataset, model_err: dict, mono_err: dict) -> dict:
    """The evaluation summary (the JSON of ``dcmnet evaluate``).

    Keys: ``n_molecules``, ``esp_rmse_kcal_mol_e`` {median, mean},
    ``fitted_monopole_esp_rmse_kcal_mol_e`` {median, mean}, ``dipole_mae_debye`` (or None),
    ``fitted_monopole_dipole_mae_debye`` (or None), ``max_net_charge_error_e``,
    ``esp_mae_kcal_mol_e`` {median, mean}, ``fraction_better_than_monopoles``.
    """
    dip = model_err["dipole_error"]
    mdip = mono_err["dipole_error"]
    better = model_err["esp_rmse"] < mono_err["esp_rmse"]
    return {
        "n_molecules": int(len(data)),
        "esp_rmse_kcal_mol_e": _stats(model_err["esp_rmse"]),
        "esp_mae_kcal_mol_e": _stats(model_err["esp_mae"]),
        "fitted_monopole_esp_rmse_kcal_mol_e": _stats(mono_err["esp_rmse"]),
        "dipole_mae_debye": float(np.nanmean(dip)) if np.isfinite(dip).any() else None,
        "fitted_monopole_dipole_mae_debye":
            float(np.nanmean(mdip)) if np.isfinite(mdip).any() else None,
        "max_net_charge_error_e": float(np.max(model_err["net_charge_error"])),
        "fraction_better_than_monopoles": float(np.mean(better)),
    }


def fitted_dcm_summary(data: Dataset, model_rmse: np.ndarray, n_dcm: int,
                       max_displacement: float, steps: int | None = None,
                       batch_size: int = 16) -> dict:
    """The fitted-DCM limit (:func:`dcmnet.fitting_dcm.fit_dcm_dataset`) beside a model.

    Args:
        data: the evaluated molecules; model_rmse: (M,) the model's ESP RMSE per molecule,
            kcal/(mol·e); n_dcm, max_displacement (Å): the model's; steps: L-BFGS
            iterations (default :data:`dcmnet.fitting_dcm.DEFAULT_STEPS`).
    Returns:
        ``{n_dcm, max_displacement_angstrom, steps, esp_rmse_kcal_mol_e: {median, mean},
        fitted_monopole_esp_rmse_kcal_mol_e: {median, mean}, ratio_to_monopoles,
        model_ratio_to_fitted_dcm}``; the ratios are of the medians (model/limit ≥ 1 up to
        the fit's local optima: the limit is an upper bound of the best possible).
    """
    from dcmnet.fitting_dcm import DEFAULT_STEPS, fit_dcm_dataset

    r = fit_dcm_dataset(data, n_dcm, max_displacement,
                        DEFAULT_STEPS if steps is None else steps, batch_size=batch_size)
    lim, mono = _stats(r["esp_rmse_dcm"]), _stats(r["esp_rmse_monopoles"])
    med = _stats(np.asarray(model_rmse, np.float64))["median"]
    return {"n_dcm": int(n_dcm), "max_displacement_angstrom": float(max_displacement),
            "steps": r["steps"], "esp_rmse_kcal_mol_e": lim,
            "fitted_monopole_esp_rmse_kcal_mol_e": mono,
            "ratio_to_monopoles": lim["median"] / mono["median"],
            "model_ratio_to_fitted_dcm": None if med is None else med / lim["median"]}


def evaluate_model(model, params, data: Dataset, batch_size: int = 16,
                   multipoles: bool = True, fit_dcm: bool = False,
                   fit_dcm_steps: int | None = None) -> dict:
    """:func:`summarize` of a model and the fitted-monopole baseline on ``data``, plus
    (``multipoles``) the multipole baselines under ``fitted_multipoles``
    (:func:`multipole_summary`), the DCM-net values per molecule
    (``dcmnet_values_per_molecule_mean`` = 4·n_dcm·N: charge and position of each site)
    and (``fit_dcm``, slow) the fitted-DCM limit with the model's n_dcm and displacement
    bound under ``fitted_dcm`` (:func:`fitted_dcm_summary`)."""
    model_err = model_errors(model, params, data, batch_size)
    out = summarize(data, model_err, fitted_monopole_errors(data))
    if fit_dcm:
        out["fitted_dcm"] = fitted_dcm_summary(data, model_err["esp_rmse"], model.n_dcm,
                                               model.max_displacement, fit_dcm_steps,
                                               batch_size)
    out["dcmnet_values_per_molecule_mean"] = float(4 * int(model.n_dcm) * np.mean(data.n_atoms))
    if multipoles:
        out["fitted_multipoles"] = multipole_summary(
            data, {k: fitted_multipole_errors(data, k) for k in (0, 1, 2)})
    return out


def write_json(obj: dict, path) -> Path:
    """Write JSON atomically (see :mod:`dcmnet.fileio`)."""
    return atomic_write_json(path, obj)


def summary_table(summary: dict, title: str = "evaluation"):
    """A rich table of an evaluation summary: DCM-net next to fitted monopoles."""
    from rich.markup import escape
    from rich.table import Table

    def f(x):
        return "—" if x is None else f"{x:.4f}"

    t = Table(title=escape(f"{title}: {summary['n_molecules']} molecules"), title_justify="left")
    t.add_column("metric")
    t.add_column("DCM-net", justify="right")
    t.add_column("fitted monopoles", justify="right")
    e, m = summary["esp_rmse_kcal_mol_e"], summary["fitted_monopole_esp_rmse_kcal_mol_e"]
    t.add_row(escape("ESP RMSE median [kcal/(mol·e)]"), f(e["median"]), f(m["median"]))
    t.add_row(escape("ESP RMSE mean [kcal/(mol·e)]"), f(e["mean"]), f(m["mean"]))
    t.add_row(escape("dipole MAE [D]"), f(summary["dipole_mae_debye"]),
              f(summary["fitted_monopole_dipole_mae_debye"]))
    t.add_row(escape("max |Σq − net charge| [e]"), f"{summary['max_net_charge_error_e']:.2e}", "0 (exact)")
    t.add_row("molecules where DCM-net beats monopoles",
              f"{100 * summary['fraction_better_than_monopoles']:.1f} %", "")
    fd = summary.get("fitted_dcm")
    if fd:
        t.add_row(escape(f"fitted DCM (n_dcm {fd['n_dcm']}): ESP RMSE median"), "",
                  f(fd["esp_rmse_kcal_mol_e"]["median"]))
        t.add_row("DCM-net / fitted-DCM limit (medians)", f(fd["model_ratio_to_fitted_dcm"]), "")
    mp = summary.get("fitted_multipoles")
    if mp:
        t.add_section()
        t.add_row(escape("values per molecule (mean)"),
                  _n(summary.get("dcmnet_values_per_molecule_mean")),
                  _n(mp["fitted_monopoles"]["n_parameters_per_molecule_mean"]))
        for key, label in (("fitted_dipoles", "fitted monopoles + dipoles"),
                           ("fitted_quadrupoles", "fitted monopoles + dipoles + quadrupoles")):
            r = mp[key]
            skip = f", {r['n_skipped']} skipped (ill-posed)" if r["n_skipped"] else ""
            t.add_row(escape(f"{label}: ESP RMSE median [kcal/(mol·e)]"), "",
                      f(r["esp_rmse_kcal_mol_e"]["median"]))
            t.add_row(escape(f"  values per molecule (mean){skip}"), "",
                      _n(r["n_parameters_per_molecule_mean"]))
    return t


def _n(x):
    return "—" if x is None else f"{x:.0f}"
