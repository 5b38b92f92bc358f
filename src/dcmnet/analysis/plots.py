"""Pictures of trained DCM-net models (matplotlib and plotly are imported here, in
:mod:`.plots3d` and :mod:`.plot_style` only).

Every function writes its files atomically and returns a :class:`Plot` with the paths and
the axis labels (each carries its unit in brackets, or is a count such as "epoch"); the
colour maps, labels and saving are :mod:`.plot_style`'s, the 3D pictures :mod:`.plots3d`'s.
Static pictures use matplotlib's object API (no pyplot state, no display needed) in PNG
and/or PDF; interactive, rotatable pictures use plotly (HTML; ``pip install
'dcmnet[analysis]'``, else :class:`dcmnet.errors.OptionalDependencyError`).

Colour maps (fixed, centred at zero): ESP and charges ``RdBu_r`` (positive red, negative
blue) with one symmetric scale shared by reference and prediction; ESP errors ``PuOr_r``
with their own symmetric scale. Units: ESP in kcal/(mol·e), charges in e, lengths in Å,
dipoles in D.

Functions: :func:`plot_training_curves`, :func:`plot_esp_parity`,
:func:`plot_error_histogram`, :func:`plot_esp_surface`, :func:`plot_charges_3d`,
:func:`plot_element_errors`, :func:`plot_checkpoint_comparison`, and
:func:`make_all_plots` (all of them for an experiment, under ``EXP/plots/``), and
:func:`write_study_plots` (Optuna's figures of a ``dcmnet tune`` study).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dcmnet.analysis.history import analyze_training_history
from dcmnet.analysis import plot_style
from dcmnet.analysis.plot_style import (
    _METHOD_COLOR,
    CHARGE_CMAP,
    DIMENSIONLESS,
    ERROR_CMAP,
    ESP_CMAP,
    ESP_UNIT,
    Plot,
    _figure,
    _finish,
    _methods,
    _shown_methods,
    _sym_limit,
    plotly_available,
)
from dcmnet.analysis.plots3d import (
    _default_molecule,
    _molecule_arrays,
    plot_charges_3d,
    plot_esp_surface,
)
from dcmnet.analysis.result import CheckpointAnalysis
from dcmnet.fileio import atomic_path

__all__ = [
    "Plot", "ESP_CMAP", "ERROR_CMAP", "CHARGE_CMAP", "ESP_UNIT", "DIMENSIONLESS",
    "plot_training_curves", "plot_esp_parity", "plot_error_histogram", "plot_esp_surface",
    "plot_charges_3d", "plot_element_errors", "plot_checkpoint_comparison", "make_all_plots",
    "write_study_plots", "plotly_available",
]


# ---------------------------------------------------------------------------- helpers


# ---------------------------------------------------------------------------- training
#: Legend of the training curves: validation uses the EMA parameters (``--use-ema``, the
#: default), training metrics are epoch means with the running parameters.
CURVE_LABELS = {"train": "train (running parameters, epoch mean)",
                "valid": "valid (EMA parameters with --use-ema, the default)"}


def plot_training_curves(history, out, *, formats: Sequence[str] = ("png",),
                         dpi: int = 100) -> Plot:
    """Loss, ESP RMSE and learning rate against the epoch (train and valid).

    Args:
        history: an experiment folder or the dict of
            :func:`dcmnet.analysis.analyze_training_history`.
        out: output path without suffix (or with .png/.pdf).
    Returns:
        :class:`Plot`.
    Raises:
        CheckpointError: no training history.
    """
    from matplotlib.ticker import MaxNLocator

    hist = history if isinstance(history, Mapping) else analyze_training_history(history)
    rows = hist["rows"]
    ep = np.array([r.get("epoch", i + 1) for i, r in enumerate(rows)], np.float64)

    def col(k):
        return np.array([r.get(k, math.nan) for r in rows], np.float64)

    fig = _figure(12, 3.6)
    axs = fig.subplots(1, 3)
    for ax, key, lab, log in ((axs[0], "loss", "loss [weighted, (kcal/(mol·e))²]", True),
                              (axs[1], "esp_rmse", f"ESP RMSE [{ESP_UNIT}]", True)):
        for split, st in (("train", "-"), ("valid", "--")):
            y = col(f"{split}_{key}")
            if np.isfinite(y).any():
                ax.plot(ep, y, st, marker="o", ms=3, label=CURVE_LABELS[split])
        ax.axvline(hist["best_epoch"], color="grey", lw=0.8, ls=":",
                   label=f"best epoch {hist['best_epoch']}")
        if log and np.nanmin(np.r_[col(f"train_{key}"), col(f"valid_{key}")]) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(lab)
        ax.legend(fontsize=8)
    lr = col("lr")
    axs[2].plot(ep, lr, color="k", marker="o", ms=3)
    axs[2].set_xlabel("epoch")
    axs[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axs[2].set_ylabel("learning rate [dimensionless]")
    axs[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig.suptitle(f"training history — {hist['status']}", fontsize=10)
    return _finish(fig, out, formats, dpi)


# ---------------------------------------------------------------------------- ESP errors


def plot_esp_parity(res: CheckpointAnalysis, out, *, formats: Sequence[str] = ("png",),
                    dpi: int = 100, methods: Sequence[str] = ("dcmnet", "fitted_monopoles"),
                    max_points: int = 20000, seed: int = 0) -> Plot:
    """Predicted against reference ESP on all real grid points, with RMSE and R².

    ``R² = 1 − Σ(V_pred − V_ref)² / Σ(V_ref − mean V_ref)²``, RMSE over the points
    (:func:`dcmnet.analysis.parity.fit_stats`). One panel per method (DCM-net and fitted
    monopoles by default). When the data hold both ions and neutral molecules, a second row
    shows the neutral molecules only, on their own scale, with their R² (the ions' large
    ESP dominates the pooled R²). At most ``max_points`` points are drawn per panel (random
    subset; the statistics use all). ``Plot.stats`` holds
    :func:`dcmnet.analysis.parity.parity_stats` of the drawn methods.
    """
    from dcmnet.analysis.parity import ION_THRESHOLD_E, parity_stats

    meths = [m for m in methods if m in _methods(res)]
    labels = _shown_methods(res)[1]
    stats = parity_stats(res, meths)
    ref = res.points["esp_ref"]
    ion = np.abs(np.asarray(res.per_molecule["net_charge"], np.float64)) > ION_THRESHOLD_E
    ion_pt = ion[np.asarray(res.points["molecule"], np.int64)]
    split = stats["n_ions"] > 0 and stats["n_neutral"] > 0
    panels = [("all", np.ones(ref.shape, bool))] + ([("neutral", ~ion_pt)] if split else [])
    fig = _figure(4.2 * len(meths), 4.0 * len(panels))
    axs = np.asarray(fig.subplots(len(panels), len(meths), squeeze=False))
    rng = np.random.default_rng(seed)
    for row, (part, sel_pt) in zip(axs, panels):
        lim = _sym_limit(ref[sel_pt], *[res.points[f"esp_{m}"][sel_pt] for m in meths], q=100)
        for ax, m in zip(row, meths):
            pred = res.points[f"esp_{m}"]
            ok = np.isfinite(pred) & sel_pt
            r, p = ref[ok], pred[ok]
            st = stats[m][part]
            sel = rng.choice(r.size, min(max_points, r.size), replace=False)
            ax.scatter(r[sel], p[sel], s=2, alpha=0.3, color=_METHOD_COLOR[m],
                       rasterized=True, linewidths=0)
            ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            what = (f"neutral molecules only ({stats['n_neutral']} of {stats['n_molecules']})"
                    if part == "neutral" else "")
            ax.set_title(labels[m] + (f"\n{what}" if what else ""), fontsize=10)
            text = f"RMSE {st['rmse']:.3f} {ESP_UNIT}\nR² {st['r2']:.4f}\n{r.size} points"
            if split and part == "all":
                text += f"\nR² neutral only {stats[m]['neutral']['r2']:.4f}"
            ax.text(0.04, 0.96, text, transform=ax.transAxes, va="top", fontsize=8,
                    bbox=dict(boxstyle="round", fc="white", alpha=0.8))
            ax.set_xlabel(f"reference ESP [{ESP_UNIT}]")
            ax.set_ylabel(f"predicted ESP [{ESP_UNIT}]")
    plot = _finish(fig, out, formats, dpi)
    plot.stats = stats
    return plot


def plot_error_histogram(res: CheckpointAnalysis, out, *, formats: Sequence[str] = ("png",),
                         dpi: int = 100, bins: int = 80) -> Plot:
    """Histogram of point-wise ESP errors (predicted − reference) of every method, and of
    the per-molecule ESP RMSE.

    The error axis spans the 99.9th percentile of |error|; the few points beyond it are
    counted in the two end bins, which the x label says. Identical fitted-monopole and
    reference-mono baselines are drawn as one curve."""
    meths, labels = _shown_methods(res)
    ref = res.points["esp_ref"]
    errs = {m: (res.points[f"esp_{m}"] - ref) for m in meths}
    lim = _sym_limit(*errs.values(), q=99.9)
    fig = _figure(10, 3.8)
    ax, ax2 = fig.subplots(1, 2)
    edges = np.linspace(-lim, lim, bins + 1)
    n_out = n_all = 0
    for m in meths:
        e = errs[m][np.isfinite(errs[m])]
        n_out += int(np.sum(np.abs(e) > lim))
        n_all += e.size
        w = np.full(e.size, 100.0 / max(e.size, 1))
        ax.hist(np.clip(e, -lim, lim), bins=edges, weights=w, histtype="step", lw=1.5,
                color=_METHOD_COLOR[m], label=f"{labels[m]} (RMSE "
                                              f"{math.sqrt(float(np.mean(e ** 2))):.3f})")
    ax.axvline(0, color="k", lw=0.6)
    xlabel = f"ESP error, predicted − reference [{ESP_UNIT}]"
    if n_out:
        xlabel += (f"\n{100.0 * n_out / max(n_all, 1):.2g} % of values beyond ±{lim:.2g} "
                   "clipped into the end bins")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("grid points [%]")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)      # room for the legend above the peak
    ax.legend(fontsize=8, loc="upper left")
    per = {m: res.per_molecule[f"{m}_esp_rmse"] for m in meths}
    top = max(float(np.nanmax(v)) for v in per.values())
    edges2 = np.linspace(0, top * 1.02, 40)
    for m in meths:
        v = per[m][np.isfinite(per[m])]
        ax2.hist(v, bins=edges2, histtype="step", lw=1.5, color=_METHOD_COLOR[m],
                 label=f"{labels[m]} (median {np.median(v):.3f})")
    ax2.set_xlabel(f"ESP RMSE of a molecule [{ESP_UNIT}]")
    ax2.set_ylabel("molecules [count]")
    ax2.set_ylim(0, ax2.get_ylim()[1] * 1.25)
    ax2.legend(fontsize=8, loc="upper right")
    return _finish(fig, out, formats, dpi)


def plot_element_errors(res: CheckpointAnalysis, out, *, formats: Sequence[str] = ("png",),
                        dpi: int = 100) -> Plot:
    """ESP RMSE by the element of the closest atom and by distance shell, per method
    (bars; the number of grid points of each group, ``n``, is printed under its name).
    Identical fitted-monopole and reference-mono baselines are drawn as one bar."""
    meths, labels = _shown_methods(res)
    fig = _figure(11, 3.8)
    axs = fig.subplots(1, 2)
    for ax, rows, key, xlabel in ((axs[0], res.by_element, "element",
                                   "element of the closest atom"),
                                  (axs[1], res.by_shell, "shell",
                                   "distance shell [× vdW radius of the closest atom]")):
        groups = []
        for r in rows:
            if r[key] not in groups:
                groups.append(r[key])
        w = 0.8 / max(len(meths), 1)
        xs = np.arange(len(groups))
        for k, m in enumerate(meths):
            vals = [next((r["rmse"] for r in rows if r["method"] == m and r[key] == g),
                         np.nan) for g in groups]
            ax.bar(xs + (k - (len(meths) - 1) / 2) * w, vals, w, color=_METHOD_COLOR[m],
                   label=labels[m])
        counts = [next(r["n_points"] for r in rows if r[key] == g) for g in groups]
        ax.set_xticks(xs, [f"{g}\nn = {n:,}" for g, n in zip(groups, counts)])
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(f"{xlabel}\n(n = grid points in the group)")
        ax.set_ylabel(f"ESP RMSE [{ESP_UNIT}]")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.2)   # room for the legend above the bars
        ax.legend(fontsize=8, loc="upper right")
    return _finish(fig, out, formats, dpi)


def plot_checkpoint_comparison(rows: Sequence[Mapping], out, *,
                               formats: Sequence[str] = ("png",), dpi: int = 100) -> Plot:
    """Bars of :func:`dcmnet.analysis.compare_checkpoints` rows: ESP RMSE (median and
    mean over molecules), dipole MAE and inference time per molecule. Identical
    fitted-monopole and reference-mono baseline rows are drawn as one bar."""
    from dcmnet.analysis.compare import collapse_baselines

    rows = collapse_baselines(rows)
    names = [f"{r['name']}" + (f" epoch {r['epoch']} (n_dcm={r['n_dcm']})"
                               if r.get("kind") != "baseline" else "") for r in rows]
    y = np.arange(len(rows))
    fig = _figure(12, 0.9 + 0.45 * len(rows))
    axs = fig.subplots(1, 3, sharey=True)
    med = np.array([r["esp_rmse_median"] or np.nan for r in rows], np.float64)
    mean = np.array([r["esp_rmse_mean"] or np.nan for r in rows], np.float64)
    axs[0].barh(y - 0.2, med, 0.4, label="median", color="#1f77b4")
    axs[0].barh(y + 0.2, mean, 0.4, label="mean", color="#aec7e8")
    axs[0].set_xlabel(f"ESP RMSE [{ESP_UNIT}]")
    axs[0].legend(fontsize=8)
    dip = np.array([np.nan if r["dipole_mae_debye"] is None else r["dipole_mae_debye"]
                    for r in rows], np.float64)
    axs[1].barh(y, dip, 0.6, color="#9467bd")
    axs[1].set_xlabel("dipole MAE [D]")
    ms = np.array([np.nan if r["inference_ms_per_molecule"] is None
                   else r["inference_ms_per_molecule"] for r in rows], np.float64)
    axs[2].barh(y, ms, 0.6, color="#8c564b")
    axs[2].set_xlabel("inference [ms/molecule]")
    axs[0].set_yticks(y, names)
    axs[0].invert_yaxis()
    axs[0].set_ylabel("checkpoint")
    return _finish(fig, out, formats, dpi)


# ---------------------------------------------------------------------------- all
def make_all_plots(experiment, data=None, *, kind: str = "best",
                   formats: Sequence[str] = ("png",), html: bool = True,
                   molecule: int | None = None, dpi: int = 100, batch_size: int = 16,
                   evaluate: bool = True, analysis: CheckpointAnalysis | None = None,
                   include_plotlyjs="cdn") -> list[Path]:
    """All pictures of an experiment under ``EXP/plots/``.

    Files: ``training_curves``, and unless ``evaluate`` is False: ``esp_parity``,
    ``error_histogram``, ``esp_surface`` (+ .html), ``charges_3d`` (+ .html),
    ``element_errors``; each in every format of ``formats``.

    Args:
        experiment: experiment folder (or checkpoint folder inside it).
        data: as in :func:`dcmnet.analysis.analyze_checkpoint` (None: validation set).
        analysis: an analysis already computed (skips the model evaluation).
        molecule: molecule index for the surface and charge pictures.
        html: also write the rotatable HTML pictures (needs plotly; checked before any
            picture is drawn).
    Returns:
        the paths written.
    Raises:
        OptionalDependencyError: ``html`` without plotly (before anything is written).
    """
    from dcmnet.analysis import analyze_checkpoint
    from dcmnet.errors import CheckpointError
    from dcmnet.training.experiment import find_experiment_dir

    if html and evaluate:
        plot_style._plotly()    # fail before any work, not after half of the pictures
    exp = find_experiment_dir(experiment)
    out = exp / "plots"
    paths: list[Path] = []
    try:
        paths += plot_training_curves(exp, out / "training_curves", formats=formats,
                                      dpi=dpi).paths
    except CheckpointError:
        pass
    if not evaluate:
        return paths
    res = analysis or analyze_checkpoint(experiment, data, kind=kind, batch_size=batch_size)
    i = _default_molecule(res) if molecule is None else int(molecule)
    if not 0 <= i < len(res.data):
        from dcmnet.errors import DataError
        raise DataError(f"molecule {i} out of range: the data hold {len(res.data)} molecules.")
    paths += plot_esp_parity(res, out / "esp_parity", formats=formats, dpi=dpi).paths
    paths += plot_error_histogram(res, out / "error_histogram", formats=formats, dpi=dpi).paths
    paths += plot_esp_surface(res, out / "esp_surface", i, formats=formats, dpi=dpi,
                              html=html, include_plotlyjs=include_plotlyjs).paths
    _, _, _, Z, R, q, x = _molecule_arrays(res, i, False)
    paths += plot_charges_3d(Z, R, q, x, out / "charges_3d",
                             title=f"{res.data.name[i]} (molecule {i}): DCM-net charges",
                             formats=formats, dpi=dpi, html=html,
                             include_plotlyjs=include_plotlyjs).paths
    paths += plot_element_errors(res, out / "element_errors", formats=formats, dpi=dpi).paths
    return paths


# ---------------------------------------------------------------------------- tuning
def write_study_plots(study, study_dir) -> dict[str, Any]:
    """Optuna's optimization history, intermediate values and parameter importances as PNG.

    Files ``optimization_history.png``, ``intermediate_values.png`` and
    ``param_importances.png`` in ``study_dir`` (y axes: validation ESP RMSE in kcal/(mol·e)),
    drawn with ``optuna.visualization.matplotlib``.

    Returns ``{figure name: Path}`` for written figures and ``{figure name: reason}`` (a
    string) for those that could not be drawn (importance needs ≥ 2 complete trials with
    different values). Never raises for a degenerate study.
    """
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    figures = {"optimization_history": ovm.plot_optimization_history,
               "intermediate_values": ovm.plot_intermediate_values,
               "param_importances": ovm.plot_param_importances}
    n_done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out: dict[str, Any] = {}
    for name, fn in figures.items():
        need = 2 if name == "param_importances" else 1
        if n_done < need:
            out[name] = f"needs {need} complete trial(s), the study has {n_done}"
            continue
        try:
            import matplotlib.pyplot as plt
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = fn(study)
            ax0 = ax.flat[0] if hasattr(ax, "flat") else ax
            if name != "param_importances":
                ax0.set_ylabel(f"validation ESP RMSE [{ESP_UNIT}]")
            if name == "intermediate_values":
                ax0.set_xlabel("epoch")
            fig = ax0.figure
            fig.set_size_inches(8, 5)
            path = Path(study_dir) / f"{name}.png"
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
            plt.close(fig)
            out[name] = path
        except Exception as exc:  # noqa: BLE001 - a figure must never end the study
            out[name] = f"{type(exc).__name__}: {exc}".strip()
    return out
