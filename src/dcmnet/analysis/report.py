"""Report files of an analysis: :func:`batch_analysis_summary` (``EXP/analysis/``) and
:func:`export_analysis_report` (json, csv, parquet or pkl)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from dcmnet.analysis.checkpoint import analyze_checkpoint
from dcmnet.analysis.history import analyze_training_history
from dcmnet.analysis.result import CheckpointAnalysis
from dcmnet.errors import CheckpointError


def analysis_dir(exp) -> Path:
    """Where the analysis of an experiment is written: ``EXP/analysis/``; for a shipped
    model (inside the installed package) ``./<name>-analysis/`` in the working directory."""
    from dcmnet.models import MODELS_DIR

    exp = Path(exp)
    if exp.resolve().parent == MODELS_DIR:
        return Path.cwd() / f"{exp.name}-analysis"
    return exp / "analysis"


def batch_analysis_summary(exp_dir, data=None, *, kind: str = "best", batch_size: int = 16,
                           formats: Sequence[str] = (), analysis: CheckpointAnalysis | None = None
                           ) -> dict:
    """Analyse the best checkpoint and write the standard files under ``EXP/analysis/``
    (for a shipped model: ``./<name>-analysis/``, see :func:`analysis_dir`).

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
    from dcmnet.training.experiment import find_experiment_dir
    from dcmnet.fileio.tables import write_csv, write_json

    exp = find_experiment_dir(exp_dir)
    res = analysis or analyze_checkpoint(exp, data, kind=kind, batch_size=batch_size)
    out_dir = analysis_dir(exp)
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
    from dcmnet.fileio.tables import write_json, write_table

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
