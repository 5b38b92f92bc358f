"""The common ground of dcmnet's pictures: colour maps, labels, :class:`Plot`, saving.

Colour maps (fixed, centred at zero): ESP and charges ``RdBu_r`` (positive red, negative
blue) with one symmetric scale shared by reference and prediction; ESP errors ``PuOr_r``
with their own symmetric scale. Every axis label carries its unit in brackets or starts
with a word of :data:`DIMENSIONLESS`. Files are written atomically (PNG/PDF through
matplotlib's object API, HTML through plotly, which is optional).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from dcmnet.analysis.result import CheckpointAnalysis
from dcmnet.errors import OptionalDependencyError
from dcmnet.fileio import atomic_path

ESP_CMAP = "RdBu_r"


ERROR_CMAP = "PuOr_r"


CHARGE_CMAP = "RdBu_r"


ESP_UNIT = "kcal/(mol·e)"


#: Axis labels without a unit must start with one of these words (counts and categories).
DIMENSIONLESS = ("epoch", "element", "checkpoint", "method")


_METHOD_LABEL = {"dcmnet": "DCM-net", "fitted_monopoles": "fitted monopoles",
                 "reference_mono": "reference mono"}


_METHOD_COLOR = {"dcmnet": "#1f77b4", "fitted_monopoles": "#ff7f0e",
                 "reference_mono": "#2ca02c"}


@dataclasses.dataclass
class Plot:
    """Files written by one plotting function and the labels of its axes."""

    paths: list
    axis_labels: list
    #: numbers shown in the picture (e.g. :func:`plot_esp_parity`'s RMSE and R²)
    stats: dict = dataclasses.field(default_factory=dict)


def _figure(w: float, h: float):
    from matplotlib.figure import Figure
    return Figure(figsize=(w, h), layout="constrained")


def _plotly():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:
        raise OptionalDependencyError(
            "interactive HTML pictures need plotly: pip install 'dcmnet[analysis]' "
            "(or pass --no-html / html=False).") from exc
    return go, make_subplots


def plotly_available() -> bool:
    """True when the interactive HTML pictures can be drawn (plotly importable)."""
    try:
        _plotly()
    except OptionalDependencyError:
        return False
    return True


def _labels(fig) -> list[str]:
    """Non-empty axis labels of every axes (colour bars: their long axis)."""
    out = []
    for ax in fig.axes:
        if not ax.axison and getattr(ax, "name", "") != "3d":  # 3D axes draw their own
            continue
        if getattr(ax, "_colorbar", None) is not None:
            lab = ax.get_ylabel() or ax.get_xlabel()
            out.append(lab)
            continue
        out += [ax.get_xlabel(), ax.get_ylabel()]
        if hasattr(ax, "get_zlabel"):
            out.append(ax.get_zlabel())
    return [lab for lab in out if lab]


def _save(fig, out, formats: Sequence[str], dpi: int) -> list[Path]:
    out = Path(out)
    base = out.with_suffix("") if out.suffix.lower() in (".png", ".pdf") else out
    if out.suffix.lower() in (".png", ".pdf") and not formats:
        formats = (out.suffix[1:].lower(),)
    paths = []
    for fmt in formats or ("png",):
        path = base.with_name(base.name + f".{fmt}")
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
        paths.append(path)
    return paths


def _write_html(fig, path, include_plotlyjs) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".html") as tmp:
        fig.write_html(str(tmp), include_plotlyjs=include_plotlyjs, full_html=True)
    return path


def _finish(fig, out, formats, dpi) -> Plot:
    labels = _labels(fig)
    return Plot(paths=_save(fig, out, formats, dpi), axis_labels=labels)


def _sym_limit(*arrays, q: float = 99.5) -> float:
    vals = np.concatenate([np.abs(np.asarray(a, np.float64)).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    v = float(np.percentile(vals, q)) if vals.size else 1.0
    return v if v > 0 else 1.0


def _methods(res: CheckpointAnalysis) -> list[str]:
    return [m for m in ("dcmnet", "fitted_monopoles", "reference_mono")
            if f"esp_{m}" in res.points]


def _shown_methods(res: CheckpointAnalysis) -> tuple[list[str], dict[str, str]]:
    """Methods to draw and their labels: the reference ``mono`` baseline is folded into
    ``fitted monopoles (= reference mono)`` when both give the same ESP (one curve would
    hide the other)."""
    from dcmnet.analysis.compare import MERGED_BASELINE_LABEL, baselines_identical

    meths, labels = _methods(res), dict(_METHOD_LABEL)
    if "reference_mono" in meths and "fitted_monopoles" in meths and baselines_identical(res):
        meths.remove("reference_mono")
        labels["fitted_monopoles"] = MERGED_BASELINE_LABEL
    return meths, labels
