"""Rich tables of analysis results (``rich`` is imported inside each function).

Every table is laid out for an 80-column terminal: short column headers, units and
abbreviations in legend lines under the table (one entry a line), numbers never wrapped
(no cell is cut with "…"); :func:`comparison_table` splits its columns over several
tables when they do not fit the given width. Each function returns a rich renderable
(``console.print`` it): the table, or a group of the table and its legend."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from dcmnet.analysis.result import METHODS, CheckpointAnalysis

#: Short column headers of the methods (explained in each table's legend line).
SHORT = {"dcmnet": "DCM-net", "fitted_monopoles": "fitted q", "fitted_dipoles": "q+μ",
         "fitted_quadrupoles": "q+μ+Θ", "reference_mono": "ref q"}
#: Legend of :data:`SHORT` (the baselines are fitted to each conformer's own ESP).
LEGEND = {"fitted_monopoles": "fitted q = fitted monopoles: atomic charges fitted to each "
                              "conformer's ESP",
          "fitted_dipoles": "q+μ = fitted monopoles + dipoles",
          "fitted_quadrupoles": "q+μ+Θ = fitted monopoles + dipoles + quadrupoles",
          "reference_mono": "ref q = the data's reference mono charges"}
ESP_UNIT = "kcal/(mol·e)"


def _f(x, spec=".3f"):
    bad = x is None or (isinstance(x, float) and not math.isfinite(x))
    return "—" if bad else format(x, spec)


def _legend(meths, merged: bool) -> list[str]:
    parts = [LEGEND[m] for m in meths if m in LEGEND]
    if merged:
        parts.append("  (fitted q = reference mono: the data's mono charges give the same "
                     "errors)")
    return parts


def _merged(res: CheckpointAnalysis) -> bool:
    from dcmnet.analysis.compare import baselines_identical
    return "reference_mono" in res.summary["methods"] and baselines_identical(res)


def _table(title: str):
    from rich.markup import escape
    from rich.table import Table
    return Table(title=escape(title), title_justify="left")


def _with_legend(table, lines: Sequence[str]):
    """``table`` followed by its legend, one entry a line (wrapped at the console width)."""
    from rich.console import Group
    from rich.text import Text
    lines = [ln for ln in lines if ln]
    return Group(table, Text("\n".join(lines), style="dim")) if lines else table


def analysis_table(res: CheckpointAnalysis, title: str | None = None):
    """A rich table (80 columns): one column per method (DCM-net, fitted monopoles,
    reference mono), one row per metric; units in the row labels or the legend line.

    When the reference ``mono`` charges give the same errors as the fitted monopoles
    (:func:`dcmnet.analysis.compare.baselines_identical`) they share one column. With the
    fitted multipoles present, a second table (:func:`multipole_table`) follows."""
    from rich.markup import escape

    S = res.summary["methods"]
    multipoles = [m for m in ("fitted_monopoles", "fitted_dipoles", "fitted_quadrupoles")
                  if m in S]
    meths = [m for m in METHODS if m in S and m not in ("fitted_dipoles", "fitted_quadrupoles")]
    merged = "reference_mono" in meths and _merged(res)
    if merged:
        meths.remove("reference_mono")
    t = _table(title or f"{res.source}: {res.summary['n_molecules']} molecules, "
                        f"{res.summary['n_points']} points ({res.data_source})")
    legend = [f"ESP in {ESP_UNIT}; DCM-net: n_dcm={res.n_dcm} charges per atom"]
    legend += _legend(meths, merged)
    t.add_column("metric", overflow="fold")
    for m in meths:
        t.add_column(SHORT[m], justify="right", no_wrap=True)
    for key, label, spec in (
            ("esp_rmse_median_kcal_mol_e", "ESP RMSE median", ".3f"),
            ("esp_rmse_mean_kcal_mol_e", "ESP RMSE mean", ".3f"),
            ("esp_rmse_pooled_kcal_mol_e", "ESP RMSE all points", ".3f"),
            ("esp_mae_pooled_kcal_mol_e", "ESP MAE all points", ".3f"),
            ("dipole_mae_debye", "dipole |Δμ| mean [D]", ".3f"),
            ("dipole_magnitude_mae_debye", "dipole ||μ|−|μref|| [D]", ".3f"),
            ("max_abs_net_charge_error_e", "max |Σq − Q| [e]", ".1e"),
            ("n_values_per_molecule_mean", "values per molecule", ".1f")):
        t.add_row(escape(label), *[_f(S[m].get(key), spec) for m in meths])
    for row_el in sorted({(r["Z"], r["element"]) for r in res.by_element}):
        cells = [next((_f(r["rmse"]) for r in res.by_element
                       if r["method"] == m and r["Z"] == row_el[0]), "—") for m in meths]
        t.add_row(escape(f"RMSE, closest atom {row_el[1]}"), *cells)
    shells = list(dict.fromkeys(r["shell"] for r in res.by_shell))
    for s in shells:
        cells = [next((_f(r["rmse"]) for r in res.by_shell
                       if r["method"] == m and r["shell"] == s), "—") for m in meths]
        t.add_row(escape(f"RMSE, shell {s} r_vdW"), *cells)
    if "inference_ms_per_molecule" in res.summary:
        t.add_row(escape("inference [ms/molecule]"),
                  _f(res.summary["inference_ms_per_molecule"], ".2f"), *([""] * (len(meths) - 1)))
    t = _with_legend(t, legend)
    if len(multipoles) > 1:
        from rich.console import Group
        return Group(t, multipole_table(res))
    return t


def multipole_table(res: CheckpointAnalysis):
    """A rich table (80 columns): DCM-net next to ESP-fitted atomic monopoles (q), + dipoles
    (q+μ) and + traceless quadrupoles (q+μ+Θ) (same points, net charge exact), each with
    its fitted values per molecule (mean; DCM-net 4·n_dcm·N: charge and position of each
    site; multipoles N, 4N, 9N for N atoms, one fixed by the net charge)."""
    from rich.markup import escape

    S = res.summary["methods"]
    t = _table("atomic multipoles fitted to each conformer's ESP")
    for c in ("model", "values/mol", "ESP RMSE median", "ESP RMSE mean", "|Δμ| [D]"):
        t.add_column(escape(c), justify="left" if c == "model" else "right",
                     no_wrap=c != "model" and not c.startswith("ESP"))
    for m in ("dcmnet", "fitted_monopoles", "fitted_dipoles", "fitted_quadrupoles"):
        if m not in S:
            continue
        r = S[m]
        label = f"DCM-net (n_dcm={res.n_dcm})" if m == "dcmnet" else SHORT[m].replace(
            "fitted ", "")
        t.add_row(escape(label), _f(r.get("n_values_per_molecule_mean"), ".1f"),
                  _f(r["esp_rmse_median_kcal_mol_e"]), _f(r["esp_rmse_mean_kcal_mol_e"]),
                  _f(r["dipole_mae_debye"]))
    return _with_legend(t, [f"ESP RMSE over molecules in {ESP_UNIT}",
                            "q, μ, Θ: atomic monopoles, dipoles, quadrupoles",
                            "values/mol: N, 4N, 9N for N atoms (one fixed by the net charge)"])


def worst_molecules(res: CheckpointAnalysis, n: int = 10) -> np.ndarray:
    """Indices of the ``n`` molecules with the largest DCM-net ESP RMSE, worst first
    (molecules without a finite RMSE last)."""
    rmse = np.asarray(res.per_molecule["dcmnet_esp_rmse"], float)
    return np.argsort(-np.where(np.isfinite(rmse), rmse, -np.inf), kind="stable")[:max(n, 0)]


def worst_molecules_table(res: CheckpointAnalysis, n: int = 10, csv_path=None):
    """The ``n`` molecules with the largest DCM-net ESP RMSE (worst first), with the
    fitted-monopole and fitted-quadrupole RMSE on the same molecule (and reference mono
    when it differs); kcal/(mol·e). Fits 80 columns; ``csv_path`` (the full per-molecule
    CSV) is named in the legend line."""
    from rich.markup import escape

    cols = res.per_molecule
    order = worst_molecules(res, n)
    meths = [m for m in ("dcmnet", "fitted_monopoles", "fitted_quadrupoles", "reference_mono")
             if f"{m}_esp_rmse" in cols]
    merged = "reference_mono" in meths and _merged(res)
    if merged:
        meths.remove("reference_mono")
    t = _table(f"worst {len(order)} of {len(cols['index'])} molecules by DCM-net ESP RMSE "
               f"[{ESP_UNIT}]")
    legend = ["Q: net charge"] + _legend(meths, merged)
    if csv_path:
        legend.append(f"all {len(cols['index'])} molecules: {csv_path}")
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("molecule", overflow="fold")
    t.add_column(escape("Q [e]"), justify="right", no_wrap=True)
    for m in meths:
        t.add_column(SHORT[m], justify="right", no_wrap=True)
    for i in order:
        q = float(cols["net_charge"][i])
        t.add_row(str(int(cols["index"][i])), escape(str(cols["name"][i])),
                  f"{q:+g}" if q else "0", *[_f(float(cols[f"{m}_esp_rmse"][i])) for m in meths])
    return _with_legend(t, legend)


_BASELINE_KEY = {"fitted monopoles": "fitted_monopoles",
                 "fitted monopoles + dipoles": "fitted_dipoles",
                 "fitted monopoles + dipoles + quadrupoles": "fitted_quadrupoles",
                 "reference mono": "reference_mono"}
_CMP_LINES = (
    ("epoch", lambda r: "" if r["epoch"] is None else str(r["epoch"])),
    ("n_dcm", lambda r: "" if r["n_dcm"] is None else str(r["n_dcm"])),
    ("parameters", lambda r: "" if r["n_parameters"] is None else f"{r['n_parameters']:,}"),
    ("values/mol", lambda r: _f(r.get("n_values_per_molecule"), ".1f")),
    ("ESP RMSE median", lambda r: _f(r["esp_rmse_median"])),
    ("ESP RMSE mean", lambda r: _f(r["esp_rmse_mean"])),
    ("ESP MAE", lambda r: _f(r["esp_mae_pooled"])),
    ("dipole MAE [D]", lambda r: _f(r["dipole_mae_debye"])),
    ("max|Σq−Q| [e]", lambda r: _f(r["max_abs_net_charge_error_e"], ".1e")),
    ("ms/mol", lambda r: _f(r["inference_ms_per_molecule"], ".2f")))
_CMP_NOTE = (f"ESP errors in {ESP_UNIT}; median/mean over molecules, MAE over all points",
             "values/mol: fitted values per molecule: DCM-net 4·n_dcm·N, multipoles N, 4N, 9N")


def _headers(rows, max_len: int = 12) -> tuple[list[str], list[str]]:
    """Short column headers of the comparison rows and the legend entries they need."""
    from dcmnet.analysis.compare import MERGED_BASELINE_LABEL

    heads, legend, k = [], [], 0
    names = [str(r["name"]) for r in rows if r.get("kind") != "baseline"]
    for r in rows:
        name = str(r["name"])
        if r.get("kind") == "baseline":
            m = _BASELINE_KEY.get(name.replace(" (= reference mono)", ""))
            heads.append(SHORT[m] if m else name[:max_len])
            if m:
                legend.append(LEGEND[m])
            if name == MERGED_BASELINE_LABEL:
                legend.append("  (fitted q = reference mono: the data's mono charges give the "
                              "same errors)")
            continue
        k += 1
        if len(name) <= max_len and names.count(name) == 1 and " " not in name:
            heads.append(name)
        else:
            heads.append(f"#{k}")
            legend.append(f"#{k} = {name}" + (f" ({r['path']})" if r.get("path") else ""))
    return heads, legend


def _cell_len(s: str) -> int:
    from rich.cells import cell_len
    return cell_len(s)


def comparison_table(rows: Sequence[Mapping], title: str = "checkpoint comparison",
                     width: int | None = None):
    """A rich table of :func:`compare_checkpoints` rows (identical fitted-monopole and
    reference-mono baselines are shown as one column, see
    :func:`dcmnet.analysis.compare.collapse_baselines`).

    ``width``: the console width (None: 80). When the one-row-per-checkpoint table fits
    it is used; otherwise the table is transposed (one row per metric, one column per
    checkpoint or baseline, short headers explained in the legend line) and its columns are
    split over as many tables as needed, so no cell is wrapped or cut.
    """
    from rich.markup import escape

    from dcmnet.analysis.compare import collapse_baselines

    rows = collapse_baselines(rows)
    width = width or 80
    wide = _wide_comparison(rows, title)
    if _natural_width(wide) <= width:
        return _with_legend(wide, _CMP_NOTE)
    heads, legend = _headers(rows)
    cells = [[fn(r) for r in rows] for _, fn in _CMP_LINES]
    w0 = max(_cell_len(label) for label, _ in _CMP_LINES)
    widths = [max([_cell_len(h)] + [_cell_len(c[j]) for c in cells]) for j, h in enumerate(heads)]
    chunks, cur, used = [], [], w0 + 4
    for j, w in enumerate(widths):
        if cur and used + w + 3 > width:
            chunks.append(cur)
            cur, used = [], w0 + 4
        cur.append(j)
        used += w + 3
    chunks.append(cur)
    tables = []
    for c, chunk in enumerate(chunks):
        last = c == len(chunks) - 1
        t = _table(title if c == 0 else f"{title} (continued)")
        t.add_column("metric", no_wrap=True)
        for j in chunk:
            t.add_column(escape(heads[j]), justify="right", no_wrap=True, min_width=widths[j])
        for (label, _), line in zip(_CMP_LINES, cells):
            t.add_row(escape(label), *[escape(line[j]) for j in chunk])
        tables.append(_with_legend(t, list(_CMP_NOTE) + legend) if last else t)
    if len(tables) == 1:
        return tables[0]
    from rich.console import Group
    return Group(*tables)


def _natural_width(renderable) -> int:
    from rich.console import Console
    from rich.measure import Measurement
    con = Console(width=100_000)
    return Measurement.get(con, con.options, renderable).maximum


def _wide_comparison(rows, title):
    from rich.markup import escape

    t = _table(title)
    t.add_column("checkpoint", no_wrap=True)
    for label, _ in _CMP_LINES:
        t.add_column(escape(label), justify="right", no_wrap=True)
    for r in rows:
        t.add_row(escape(str(r["name"])), *[fn(r) for _, fn in _CMP_LINES])
    return t


def history_table(hist: Mapping, every: int | None = None):
    """A rich table of the training history (every ``every``-th epoch, best epoch marked
    ``*``; 80 columns, ESP RMSE in kcal/(mol·e) named in the legend line)."""
    from rich.markup import escape

    rows = hist["rows"]
    every = every or max(1, len(rows) // 15)
    t = _table(f"training history: best epoch {hist['best_epoch']} ({hist['status']})")
    cols = [("epoch", "epoch", "d"), ("lr", "lr", ".2e"), ("train_loss", "train loss", ".4g"),
            ("valid_loss", "valid loss", ".4g"), ("train_esp_rmse", "train ESP RMSE", ".3f"),
            ("valid_esp_rmse", "valid ESP RMSE", ".3f")]
    cols = [c for c in cols if c[0] in hist["columns"]]
    for _, label, _ in cols:
        t.add_column(escape(label), justify="right")
    for i, r in enumerate(rows):
        if i % every and i != len(rows) - 1 and r.get("epoch") != hist["best_epoch"]:
            continue
        mark = " *" if r.get("epoch") == hist["best_epoch"] else ""
        t.add_row(*[(_f(r.get(k), s) if k != "epoch" else f"{r.get(k)}{mark}")
                    for k, _, s in cols])
    return _with_legend(t, [f"ESP RMSE in {ESP_UNIT}; * best epoch; valid: EMA parameters "
                            "with --use-ema (the default), train: running parameters",
                            str(hist.get("diagnosis") or "")])
