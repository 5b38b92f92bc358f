"""Three-dimensional pictures of one molecule: the ESP on its grid, and its charge sites.

:func:`plot_esp_surface` (reference, prediction and error on the grid points, one shared
symmetric scale) and :func:`plot_charges_3d` (atoms, bonds and the DCM sites coloured by
charge); rotatable HTML with plotly when installed, PNG/PDF with matplotlib.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from dcmnet.analysis import plot_style
from dcmnet.analysis.plot_style import (
    CHARGE_CMAP,
    ERROR_CMAP,
    ESP_CMAP,
    ESP_UNIT,
    Plot,
    _figure,
    _finish,
    _sym_limit,
    _write_html,
)
from dcmnet.analysis.result import CheckpointAnalysis
from dcmnet.data.connectivity import bond_pairs


def _molecule_arrays(res: CheckpointAnalysis, i: int, inner_shell: bool):
    data = res.data
    ao, go = data.atom_offsets, data.grid_offsets
    g = slice(go[i], go[i + 1])
    pts = np.asarray(data.grid[g], np.float64)
    ref = res.points["esp_ref"][g]
    pred = res.points["esp_dcmnet"][g]
    if inner_shell:
        ratio = res.points["shell_ratio"][g]
        keep = ratio <= ratio.min() + 0.1
        if keep.sum() >= 50:
            pts, ref, pred = pts[keep], ref[keep], pred[keep]
    a = slice(ao[i], ao[i + 1])
    return pts, ref, pred, data.Z[a], data.R[a], res.sites["charges"][a], res.sites["positions"][a]


def _default_molecule(res: CheckpointAnalysis) -> int:
    r = res.per_molecule["dcmnet_esp_rmse"]
    return int(np.argsort(r)[len(r) // 2])


def _set_equal_3d(ax, xyz):
    c = xyz.mean(0)
    h = float(np.max(np.ptp(xyz, axis=0))) / 2 or 1.0
    ax.set_xlim(c[0] - h, c[0] + h)
    ax.set_ylim(c[1] - h, c[1] + h)
    ax.set_zlim(c[2] - h, c[2] + h)
    ax.set_box_aspect((1, 1, 1))


def plot_esp_surface(res: CheckpointAnalysis, out, molecule: int | None = None, *,
                     formats: Sequence[str] = ("png",), dpi: int = 100, html: bool = False,
                     inner_shell: bool = False, include_plotlyjs="cdn") -> Plot:
    """A molecule's ESP points coloured by reference ESP, predicted ESP and error.

    Three 3D panels side by side; reference and prediction share one symmetric colour
    scale (``RdBu_r``, centred at 0), the error has its own (``PuOr_r``). With
    ``inner_shell`` only the innermost vdW shell is drawn (default: every point).

    Args:
        res: an analysis (holds the dataset).
        molecule: index in the analysed data (default: the molecule of median ESP RMSE).
        html: also write a rotatable plotly HTML (``out.html``).
    """
    from matplotlib.colors import Normalize

    i = _default_molecule(res) if molecule is None else int(molecule)
    pts, ref, pred, Z, R, _, _ = _molecule_arrays(res, i, inner_shell)
    err = pred - ref
    v = _sym_limit(ref, pred, q=100)
    ve = _sym_limit(err, q=100)
    name = str(res.data.name[i])
    rmse = math.sqrt(float(np.mean(err ** 2)))
    fig = _figure(13, 4.4)
    panels = (("reference ESP", ref, ESP_CMAP, v, f"ESP [{ESP_UNIT}]"),
              ("DCM-net ESP", pred, ESP_CMAP, v, f"ESP [{ESP_UNIT}]"),
              (f"error (RMSE {rmse:.2f} {ESP_UNIT})", err, ERROR_CMAP, ve,
               f"ESP error [{ESP_UNIT}]"))
    for k, (title, val, cmap, lim, clab) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1, projection="3d")
        sc = ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], c=val, cmap=cmap, s=9,
                        norm=Normalize(-lim, lim), depthshade=False, linewidths=0)
        ax.scatter(R[:, 0], R[:, 1], R[:, 2], c="k", s=12)
        _set_equal_3d(ax, pts)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x [Å]")
        ax.set_ylabel("y [Å]")
        ax.set_zlabel("z [Å]", labelpad=2)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="z", pad=1)
        cb = fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.16)
        cb.set_label(clab)
    fig.suptitle(f"{name} (molecule {i})", fontsize=10)
    plot = _finish(fig, out, formats, dpi)
    if html:
        go, make_subplots = plot_style._plotly()
        pf = make_subplots(rows=1, cols=3, specs=[[{"type": "scene"}] * 3],
                           subplot_titles=[p[0] for p in panels])
        for k, (title, val, cmap, lim, clab) in enumerate(panels):
            pf.add_trace(go.Scatter3d(
                x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=title,
                marker=dict(size=3, color=val, colorscale="RdBu" if cmap == ESP_CMAP else "PuOr",
                            reversescale=True, cmin=-lim, cmax=lim,
                            colorbar=dict(title=clab, x=0.30 + 0.35 * k, len=0.7)),
                hovertemplate="%{marker.color:.3f} " + ESP_UNIT), row=1, col=k + 1)
            pf.add_trace(go.Scatter3d(x=R[:, 0], y=R[:, 1], z=R[:, 2], mode="markers",
                                      marker=dict(size=5, color="black"), showlegend=False),
                         row=1, col=k + 1)
        axis = dict(xaxis_title="x [Å]", yaxis_title="y [Å]", zaxis_title="z [Å]",
                    aspectmode="data")
        pf.update_layout(title=f"{name} (molecule {i}): ESP [{ESP_UNIT}]", showlegend=False,
                         scene=axis, scene2=axis, scene3=axis, height=500, width=1400)
        plot.paths.append(_write_html(pf, Path(out).with_suffix(".html"), include_plotlyjs))
    return plot


def _element_greys(Z: np.ndarray) -> dict:
    """Neutral grey (a matplotlib grey-level string) per element, never the charge colours."""
    elements = sorted(set(Z.tolist()))
    return {z: str(round(0.85 - 0.45 * k / max(len(elements) - 1, 1), 2))
            for k, z in enumerate(elements)}


def _draw_charges(ax, Z, R, q, x, parent, lim, grey):
    """The matplotlib picture of :func:`plot_charges_3d` on the 3D axes ``ax``: bonds,
    site-to-atom lines, translucent atoms with their symbols, sites coloured by charge
    (e) and the legend. Returns the sites' scatter (for the colour bar)."""
    from ase.data import chemical_symbols, covalent_radii
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    ax.computed_zorder = False          # draw in call order: atoms, then sites on top
    for i, j in bond_pairs(Z, R):
        ax.plot(*R[[i, j]].T, color="0.6", lw=2, zorder=1)
    for s in range(len(q)):
        ax.plot(*np.stack([R[parent[s]], x[s]]).T, color="0.3", lw=0.6, ls=":", zorder=2)
    ax.scatter(R[:, 0], R[:, 1], R[:, 2], s=900 * covalent_radii[Z],
               c=[grey[z] for z in Z.tolist()], edgecolors="0.3", linewidths=0.8, alpha=0.25,
               depthshade=False, zorder=3)
    for z, r in zip(Z.tolist(), R):
        ax.text(r[0], r[1], r[2], f"  {chemical_symbols[z]}", fontsize=8, color="0.2",
                zorder=4)
    sc = ax.scatter(x[:, 0], x[:, 1], x[:, 2], c=q, cmap=CHARGE_CMAP, norm=Normalize(-lim, lim),
                    s=28, edgecolors="k", linewidths=0.5, depthshade=False, zorder=5)
    _set_equal_3d(ax, np.concatenate([R, x]))
    ax.set_xlabel("x [Å]")
    ax.set_ylabel("y [Å]")
    ax.set_zlabel("z [Å]")
    ax.tick_params(labelsize=7)
    handles = [Line2D([], [], ls="", marker="o", ms=16, mfc="0.7", mec="0.3", alpha=0.5,
                      label="atom (grey by element, labelled)"),
               Line2D([], [], ls="", marker="o", ms=6, mfc="#d6604d", mec="k", mew=0.5,
                      label="charge site (colour = charge)"),
               Line2D([], [], color="0.3", lw=0.6, ls=":", label="site → its atom")]
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.8,
              labelspacing=1.1, borderpad=0.8)
    return sc


def _charges_plotly(Z, R, q, x, atom_q, lim, grey, title: str):
    """The rotatable plotly figure of :func:`plot_charges_3d` (Å, e)."""
    from ase.data import chemical_symbols, covalent_radii

    go, _ = plot_style._plotly()
    traces = []
    for i, j in bond_pairs(Z, R):
        traces.append(go.Scatter3d(x=R[[i, j], 0], y=R[[i, j], 1], z=R[[i, j], 2],
                                   mode="lines", line=dict(color="grey", width=6),
                                   hoverinfo="skip", showlegend=False))
    cols = ["rgb({0:.0f},{0:.0f},{0:.0f})".format(255 * float(grey[z])) for z in Z.tolist()]
    traces.append(go.Scatter3d(
        x=R[:, 0], y=R[:, 1], z=R[:, 2], mode="markers+text", name="atoms",
        text=[chemical_symbols[z] for z in Z],
        marker=dict(size=14 * covalent_radii[Z] / 0.76, color=cols, opacity=0.5,
                    line=dict(color="black", width=1)),
        customdata=atom_q, hovertemplate="%{text}: atom charge %{customdata:.3f} e"))
    traces.append(go.Scatter3d(
        x=x[:, 0], y=x[:, 1], z=x[:, 2], mode="markers", name="charge sites",
        marker=dict(size=5, color=q, colorscale="RdBu", reversescale=True, cmin=-lim,
                    cmax=lim, colorbar=dict(title="site charge [e]"),
                    line=dict(color="black", width=1)),
        hovertemplate="q = %{marker.color:.4f} e"))
    pf = go.Figure(traces)
    pf.update_layout(title=title or "DCM-net charge sites",
                     scene=dict(xaxis_title="x [Å]", yaxis_title="y [Å]",
                                zaxis_title="z [Å]", aspectmode="data"),
                     height=650, width=800)
    return pf


def plot_charges_3d(Z, R, charges, positions, out, *, title: str = "",
                    formats: Sequence[str] = ("png",), dpi: int = 100, html: bool = False,
                    include_plotlyjs="cdn") -> Plot:
    """A molecule with its charge sites coloured by charge (3D; rotatable in the HTML).

    Atoms are large translucent grey circles (a shade per element, labelled with the
    symbol), charge sites small dots coloured by charge (``RdBu_r``, centred at 0) and
    drawn on top, each joined to its atom by a dotted line; a legend says which is which.

    Args:
        Z: (N,) atomic numbers; R: (N, 3) positions, Å.
        charges: (N, n_dcm) site charges, e; positions: (N, n_dcm, 3) site positions, Å.
        html: also write ``out.html`` (plotly, rotatable).
    """
    Z = np.asarray(Z)
    R = np.asarray(R, np.float64)
    q = np.asarray(charges, np.float64).reshape(-1)
    x = np.asarray(positions, np.float64).reshape(-1, 3)
    n = np.asarray(charges).shape[1]
    parent = np.repeat(np.arange(len(Z)), n)
    lim = _sym_limit(q, q=100)
    grey = _element_greys(Z)
    fig = _figure(6.4, 5.2)
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    sc = _draw_charges(ax, Z, R, q, x, parent, lim, grey)
    cb = fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.12)
    cb.set_label("site charge [e]")
    ax.set_title(title or f"{len(Z)} atoms × {n} charges", fontsize=10)
    plot = _finish(fig, out, formats, dpi)
    if html:
        pf = _charges_plotly(Z, R, q, x, np.asarray(charges, np.float64).sum(1), lim, grey,
                             title)
        plot.paths.append(_write_html(pf, Path(out).with_suffix(".html"), include_plotlyjs))
    return plot
