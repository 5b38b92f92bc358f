"""Results of a search: the trials table, ``trials.csv``, ``best_config.json`` and the
figures (:func:`summarize_study`)."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from dcmnet.config import ExperimentConfig, create_default_config, provenance
from dcmnet.errors import ConfigError
from dcmnet.tune.space import SHORT, TUNABLE, _fmt


def trial_rows(study) -> list[dict]:
    """One dict per trial, best first: number, state, value (kcal/(mol·e)), epochs, seconds,
    parameters, experiment folder and a note (pruning epoch, divergence, retry)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried_as = {r.system_attrs["retry_history"][-1]: r.number for r in trials
                  if r.system_attrs.get("retry_history")}
    rows = []
    for t in trials:
        ua = t.user_attrs
        if t.state == TrialState.COMPLETE:
            value = t.value
        elif t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        else:
            value = None
        note = ""
        if "diverged" in ua:
            note = "diverged"
        elif t.state == TrialState.PRUNED:
            note = f"pruned at epoch {ua.get('pruned_at_epoch', len(t.intermediate_values))}"
        elif t.state == TrialState.FAIL:
            note = (f"lost (no heartbeat), retried as {retried_as[t.number]}"
                    if t.number in retried_as else "failed")
        if t.system_attrs.get("retry_history"):
            note = (note + "; " if note else "") + f"retry of {t.system_attrs['retry_history'][-1]}"
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if (
            t.datetime_complete and t.datetime_start) else None
        rows.append({"number": t.number, "state": t.state.name, "valid_esp_rmse": value,
                     "best_epoch": ua.get("best_epoch"),
                     "epochs": ua.get("epochs_run", len(t.intermediate_values)),
                     "duration_s": duration, "params": dict(t.params),
                     "experiment_dir": ua.get("experiment_dir", ""), "note": note})
    order = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}
    rows.sort(key=lambda r: (order.get(r["state"], 5),
                             math.inf if r["valid_esp_rmse"] is None else r["valid_esp_rmse"],
                             r["number"]))
    return rows


def _param_names(rows) -> list[str]:
    names: list[str] = []
    for r in rows:
        names += [n for n in r["params"] if n not in names]
    return sorted(names, key=lambda n: list(TUNABLE).index(n) if n in TUNABLE else 999)


def results_table(study, max_rows: int = 25):
    """A rich table of the trials, best first (COMPLETE by value, then PRUNED, ...)."""
    from rich.markup import escape
    from rich.table import Table

    rows = trial_rows(study)
    names = _param_names(rows)
    title = f"study {study.study_name}: validation ESP RMSE [kcal/(mol·e)], best first"
    if len(rows) > max_rows:
        title += f" (top {max_rows} of {len(rows)}; all in trials.csv)"
    t = Table(title=escape(title), title_justify="left", show_edge=False, header_style="bold")
    for c in ["#", "state", "ESP RMSE", "ep"] + [SHORT.get(n, n) for n in names] + ["s", "note"]:
        t.add_column(c, justify="left" if c in ("state", "note") else "right")
    for r in rows[:max_rows]:
        v = r["valid_esp_rmse"]
        t.add_row(str(r["number"]), r["state"].lower(), "" if v is None else f"{v:.4f}",
                  str(r["epochs"]),
                  *[_fmt(r["params"][n]) if n in r["params"] else "" for n in names],
                  "" if r["duration_s"] is None else f"{r['duration_s']:.0f}", r["note"])
    return t


def write_results_csv(study, path) -> Path:
    """All trials as CSV (best first); returns the path."""
    from dcmnet.fileio.tables import write_bytes

    rows = trial_rows(study)
    names = _param_names(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "state", "valid_esp_rmse_kcal_mol_e", "best_epoch", "epochs",
                "duration_s"] + names + ["experiment_dir", "note"])
    for r in rows:
        w.writerow([r["number"], r["state"], r["valid_esp_rmse"], r["best_epoch"],
                    r["epochs"], r["duration_s"]]
                   + [r["params"].get(n, "") for n in names]
                   + [r["experiment_dir"], r["note"]])
    return write_bytes(buf.getvalue().encode(), path)


def best_config(study, name: str | None = None) -> ExperimentConfig:
    """The best COMPLETE trial's configuration, named ``<study>_best`` in ``./experiments``.

    Rebuilt from the settings stored in the study (so it works for trials run on another
    machine whose folders are not here).

    Raises:
        ConfigError: the study has no complete trial yet.
    """
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise ConfigError(f"study {study.study_name!r} has no complete trial yet.")
    best = min(done, key=lambda t: t.value)
    flat = dict(best.user_attrs.get("config") or best.params)
    flat.pop("name", None)
    flat.pop("output_dir", None)
    return create_default_config(name or f"{study.study_name}_best", **flat)


def write_best_config(study, path, name: str | None = None) -> Path:
    """Save :func:`best_config` as JSON (``dcmnet train --config PATH``); returns the path.

    Raises:
        ConfigError: no complete trial yet.
    """
    return best_config(study, name).save(path, extra=provenance())


def write_study_plots(study, study_dir) -> dict[str, Any]:
    """Optuna's figures of the study as PNG; see :func:`dcmnet.analysis.plots.write_study_plots`
    (figures live in :mod:`dcmnet.analysis.plots`, the only module that imports matplotlib)."""
    from dcmnet.analysis.plots import write_study_plots as _write

    return _write(study, study_dir)


def summarize_study(study, study_dir, *, console=None, plots: bool = True,
                    max_rows: int = 25) -> dict[str, Any]:
    """Print the results table and write ``trials.csv``, ``best_config.json`` and figures.

    Returns ``{"trials_csv": Path, "best_config": Path | None, <figure>: Path | reason}``.
    Raises nothing for an empty or all-pruned study (it says so instead).
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    study_dir = Path(study_dir)
    files: dict[str, Any] = {"trials_csv": write_results_csv(study, study_dir / "trials.csv")}
    console.print(results_table(study, max_rows=max_rows))
    try:
        files["best_config"] = write_best_config(study, study_dir / "best_config.json")
        best = study.best_trial
        console.print(f"best trial {best.number}: validation ESP RMSE {best.value:.4f} "
                      f"kcal/(mol·e); re-run it with: dcmnet train --config "
                      f"{files['best_config']} --num-epochs N", highlight=False,
                      soft_wrap=True)
    except ConfigError as exc:
        files["best_config"] = None
        console.print(f"no best_config.json: {exc}")
    if plots:
        for name, res in write_study_plots(study, study_dir).items():
            files[name] = res
            if not isinstance(res, Path):
                console.print(f"[yellow]{name} figure not drawn:[/] {res}", highlight=False)
    console.print(f"study folder: {study_dir}", highlight=False)
    return files
