"""Rich tables of analysis results (``rich`` is imported inside each function)."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from dcmnet.analysis.result import METHODS, CheckpointAnalysis


def _f(x, spec=".3f"):
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def analysis_table(res: CheckpointAnalysis, title: str | None = None):
    """A rich table: one column per method (DCM-net, fitted monopoles, reference mono).

    When the reference ``mono`` charges give the same errors as the fitted monopoles
    (:func:`dcmnet.analysis.compare.baselines_identical`) they share one column,
    ``fitted monopoles (= reference mono)``."""
    from rich.markup import escape
    from rich.table import Table

    from dcmnet.analysis.compare import MERGED_BASELINE_LABEL, baselines_identical

    names = {"dcmnet": f"DCM-net (n_dcm={res.n_dcm})", "fitted_monopoles": "fitted monopoles",
             "fitted_dipoles": "fitted q+μ", "fitted_quadrupoles": "fitted q+μ+Θ",
             "reference_mono": "reference mono"}
    multipoles = [m for m in ("fitted_monopoles", "fitted_dipoles", "fitted_quadrupoles")
                  if m in res.summary["methods"]]
    meths = [m for m in METHODS if m in res.summary["methods"]
             and m not in ("fitted_dipoles", "fitted_quadrupoles")]
    if "reference_mono" in meths and baselines_identical(res):
        # the data's mono charges are ESP-fitted: one column stands for both baselines
        meths.remove("reference_mono")
        names["fitted_monopoles"] = MERGED_BASELINE_LABEL
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
            ("max_abs_net_charge_error_e", "max |Σq − Q| [e]", ".1e"),
            ("n_values_per_molecule_mean", "fitted values per molecule (mean)", ".0f")):
        t.add_row(escape(label), *[_f(S[m].get(key), spec) for m in meths])
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
    if len(multipoles) > 1:
        from rich.console import Group
        return Group(t, multipole_table(res))
    return t


def multipole_table(res: CheckpointAnalysis):
    """A rich table: DCM-net next to ESP-fitted atomic monopoles, + dipoles and
    + traceless quadrupoles (same points, net charge exact), each with its fitted values
    per molecule (mean; DCM-net 4·n_dcm·N: charge and position of each site)."""
    from rich.markup import escape
    from rich.table import Table

    S = res.summary["methods"]
    t = Table(title=escape("atomic multipoles fitted to each conformer's ESP"),
              title_justify="left")
    for c in ("model", "values/mol", "ESP RMSE median", "ESP RMSE mean",
              "dipole |Δμ| [D]"):
        t.add_column(escape(c), justify="left" if c == "model" else "right")
    for m, label in (("dcmnet", f"DCM-net (n_dcm={res.n_dcm})"),
                     ("fitted_monopoles", "monopoles"),
                     ("fitted_dipoles", "monopoles + dipoles"),
                     ("fitted_quadrupoles", "monopoles + dipoles + quadrupoles")):
        if m not in S:
            continue
        r = S[m]
        t.add_row(escape(label), _f(r.get("n_values_per_molecule_mean"), ".0f"),
                  _f(r["esp_rmse_median_kcal_mol_e"]), _f(r["esp_rmse_mean_kcal_mol_e"]),
                  _f(r["dipole_mae_debye"]))
    t.caption = escape("ESP RMSE in kcal/(mol·e) over molecules; values/molecule: N, 4N, 9N "
                       "for N atoms (one fixed by the net charge)")
    return t


def worst_molecules_table(res: CheckpointAnalysis, n: int = 10):
    """The ``n`` molecules with the largest DCM-net ESP RMSE (worst first), with each
    baseline's RMSE on the same molecule; kcal/(mol·e). Fits 80 columns."""
    from rich.markup import escape
    from rich.table import Table

    cols = res.per_molecule
    meths = [k[:-len("_esp_rmse")] for k in cols if k.endswith("_esp_rmse")]
    meths = ["dcmnet"] + [m for m in meths if m != "dcmnet"]
    rmse = np.asarray(cols["dcmnet_esp_rmse"], float)
    order = np.argsort(-np.where(np.isfinite(rmse), rmse, -np.inf))[:n]
    t = Table(title=escape(f"worst {len(order)} of {len(rmse)} molecules by DCM-net ESP RMSE "
                           "[kcal/(mol·e)]"), title_justify="left")
    for c in ["#", "molecule", "Q [e]"] + ["DCM-net" if m == "dcmnet" else m for m in meths]:
        t.add_column(escape(c), justify="left" if c == "molecule" else "right",
                     overflow="fold")
    for i in order:
        t.add_row(str(int(cols["index"][i])), escape(str(cols["name"][i])),
                  f"{float(cols['net_charge'][i]):+g}",
                  *[_f(float(cols[f"{m}_esp_rmse"][i])) for m in meths])
    return t


def comparison_table(rows: Sequence[Mapping], title: str = "checkpoint comparison",
                     width: int | None = None):
    """A rich table of :func:`compare_checkpoints` rows (identical fitted-monopole and
    reference-mono baselines are shown as one row, see
    :func:`dcmnet.analysis.compare.collapse_baselines`).

    ``width``: the console width; below 130 columns the table is transposed (one row per
    metric, one column per checkpoint) so no cell is truncated at 80 columns.
    """
    from rich.markup import escape
    from rich.table import Table

    from dcmnet.analysis.compare import collapse_baselines

    rows = collapse_baselines(rows)
    if width is not None and width < 130:
        t = Table(title=escape(title), title_justify="left")
        t.add_column("metric", no_wrap=True)
        for r in rows:
            t.add_column(escape(str(r["name"])), justify="right", overflow="fold")
        lines = [("epoch", lambda r: "" if r["epoch"] is None else str(r["epoch"])),
                 ("n_dcm", lambda r: "" if r["n_dcm"] is None else str(r["n_dcm"])),
                 ("parameters", lambda r: "" if r["n_parameters"] is None
                  else f"{r['n_parameters']:,}"),
                 ("values/mol", lambda r: _f(r.get("n_values_per_molecule"), ".0f")),
                 ("ESP RMSE median", lambda r: _f(r["esp_rmse_median"])),
                 ("ESP RMSE mean", lambda r: _f(r["esp_rmse_mean"])),
                 ("ESP MAE", lambda r: _f(r["esp_mae_pooled"])),
                 ("dipole MAE [D]", lambda r: _f(r["dipole_mae_debye"])),
                 ("max|Σq−Q| [e]", lambda r: _f(r["max_abs_net_charge_error_e"], ".1e")),
                 ("ms/mol", lambda r: _f(r["inference_ms_per_molecule"], ".2f"))]
        for label, fn in lines:
            t.add_row(escape(label), *[fn(r) for r in rows])
        t.caption = escape("ESP errors in kcal/(mol·e); median/mean over molecules, MAE over "
                           "all points")
        return t

    t = Table(title=escape(title), title_justify="left")
    for c in ("checkpoint", "epoch", "n_dcm", "params", "values/mol", "ESP RMSE med",
              "ESP RMSE mean",
              "ESP MAE", "dipole MAE [D]", "max|Σq−Q| [e]", "ms/mol"):
        t.add_column(escape(c), justify="left" if c == "checkpoint" else "right")
    for r in rows:
        t.add_row(escape(str(r["name"])), "" if r["epoch"] is None else str(r["epoch"]),
                  "" if r["n_dcm"] is None else str(r["n_dcm"]),
                  "" if r["n_parameters"] is None else f"{r['n_parameters']:,}",
                  _f(r.get("n_values_per_molecule"), ".0f"),
                  _f(r["esp_rmse_median"]), _f(r["esp_rmse_mean"]), _f(r["esp_mae_pooled"]),
                  _f(r["dipole_mae_debye"]), _f(r["max_abs_net_charge_error_e"], ".1e"),
                  _f(r["inference_ms_per_molecule"], ".2f"))
    t.caption = escape("ESP errors in kcal/(mol·e); median/mean over molecules, MAE over all "
                       "points; values/mol: fitted values per molecule (DCM-net: 4·n_dcm·N, "
                       "charge and position of each site; atomic multipoles N, 4N, 9N)")
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
