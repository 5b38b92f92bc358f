"""Unit sanity checks: catch the classic mistakes before a model trains on them.

Each check looks at a read :class:`~dcmnet.data.dataset.Dataset` (Å, e, Hartree/e) and
returns :class:`Finding` objects with an actionable message:

=======================  ==============================================================
check                    what it catches (and how)
=======================  ==============================================================
``atoms_overlap``        two atoms closer than 0.4 Å (no chemical bond is that short)
``bond_lengths``         coordinates in Bohr read as Å (or the reverse): the median ratio
                         of nearest-neighbour distances to the sum of covalent radii
                         (ASE, Cordero et al. 2008) is ≈1 for real molecules, ≈1.89 for
                         Bohr read as Å, ≈0.53 for Å read as Bohr
``esp_units``            ESP in kcal/(mol·e), kJ/(mol·e) or V instead of Hartree/e:
                         charges fitted to the ESP (net charge constrained,
                         :func:`dcmnet.fitting.fit_monopoles`) are then 627×, 2625× or
                         27× too large (|q| ≤ ~2 e for real molecules)
``grid_units``           grid and atoms in different units or frames: atom-centred
                         charges fitted to the ESP explain it more than twice better
                         (relative RMSE) once the grid is scaled by the Bohr/Å factor, or
                         the grid's centroid lies far from the molecule
``grid_inside_atoms``    grid points inside atoms' vdW spheres (nuclear cusps dominate
                         the ESP there): a warning, an error when most points are inside
``net_charge_esp``       a net charge that the ESP contradicts (unconstrained fit total
                         more than 0.5 e away): a warning
``esp_magnitude``        |ESP| above 2 Hartree/e outside the vdW spheres: the grid's frame
                         does not match the atoms (e.g. a shifted cube origin); an error
=======================  ==============================================================

Before the checks, the loader drops grid points inside the atoms' vdW spheres
(:func:`drop_points_inside_atoms`) and reports how many per file; canonical files get the
cheap checks (overlap, ESP magnitude) too (:func:`check_canonical`).

Checks that need fits use an evenly spaced sample of at most ``sample`` molecules, so the
cost stays small for large datasets. When the user stated a unit explicitly
(``--length-unit``/``--esp-unit``) the matching findings are downgraded to warnings.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from ase.data import covalent_radii, vdw_radii

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.report import ReadReport
from dcmnet.errors import DataError
from dcmnet.units import (
    ANGSTROM_TO_BOHR,
    BOHR_TO_ANGSTROM,
    HARTREE_PER_E_TO_VOLT,
    HARTREE_TO_KCAL_MOL,
    HARTREE_TO_KJ_MOL,
)

#: Closest allowed distance between two atoms, Å.
MIN_ATOM_DISTANCE = 0.4
#: Median bond-length ratio above which coordinates look like Bohr read as Å.
BOND_RATIO_HIGH = 1.45
#: ... and below which they look like Å read as Bohr.
BOND_RATIO_LOW = 0.7
#: Largest plausible |ESP-fitted charge|, e (median over molecules of the per-molecule max).
MAX_FITTED_CHARGE = 6.0
#: ESP units whose factor a too-large ESP is compared with: name → Hartree/e in that unit.
_ESP_SCALES = {"kcal/mol": HARTREE_TO_KCAL_MOL, "kj/mol": HARTREE_TO_KJ_MOL,
               "volt": HARTREE_PER_E_TO_VOLT}
_TYPICAL_MAX_Q = 0.8
#: Grid points closer than this × vdW radius to an atom are dropped at read time.
INSIDE_SCALE = 1.0
#: Largest plausible |ESP| (Hartree/e) at a point outside every atom's vdW sphere.
MAX_ESP_OUTSIDE = 2.0


@dataclasses.dataclass(frozen=True)
class Finding:
    """One result of a check: ``level`` is ``"error"`` or ``"warning"``."""

    level: str
    check: str
    message: str


def _sample(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).astype(int)) if n else np.zeros(0, int)


def _radii(table, Z) -> np.ndarray:
    r = np.asarray(table, float)[np.asarray(Z, int)]
    return np.where(np.isfinite(r), r, 2.0)


def check_atoms_overlap(ds: Dataset) -> list[Finding]:
    """Error for every molecule with two atoms closer than :data:`MIN_ATOM_DISTANCE` (first
    few named)."""
    out, bad = [], []
    ao = ds.atom_offsets
    for i in range(len(ds)):
        R = ds.R[ao[i]:ao[i + 1]]
        if len(R) < 2:
            continue
        d = np.linalg.norm(R[:, None] - R[None], axis=-1)
        d[np.diag_indices(len(R))] = np.inf
        if d.min() < MIN_ATOM_DISTANCE:
            a, b = np.unravel_index(np.argmin(d), d.shape)
            bad.append((i, int(min(a, b)), int(max(a, b)), float(d.min())))
    if bad:
        i, a, b, dist = bad[0]
        out.append(Finding("error", "atoms_overlap",
                           f"atoms {a} and {b} of molecule {i} are {dist:.3f} Å apart (on top "
                           f"of each other; {len(bad)} molecule(s) affected). Fix or remove "
                           "those geometries (duplicated atoms? coordinates in a wrong unit?)."))
    return out


def bond_length_ratio(ds: Dataset, idx) -> tuple[float | None, int]:
    """Median over molecules (≥ 3 atoms) of the median nearest-neighbour distance divided by
    the sum of covalent radii; ``(None, 0)`` when no molecule qualifies."""
    ao = ds.atom_offsets
    vals = []
    for i in idx:
        Z, R = ds.Z[ao[i]:ao[i + 1]], ds.R[ao[i]:ao[i + 1]]
        if len(Z) < 3:
            continue
        d = np.linalg.norm(R[:, None] - R[None], axis=-1)
        d[np.diag_indices(len(R))] = np.inf
        j = np.argmin(d, axis=1)
        rc = _radii(covalent_radii, Z)
        vals.append(np.median(d[np.arange(len(Z)), j] / (rc + rc[j])))
    return (float(np.median(vals)), len(vals)) if vals else (None, 0)


def check_bond_lengths(ds: Dataset, idx, unit_given: bool = False) -> list[Finding]:
    """Bohr-read-as-Å (ratio ≈ 1.89) or Å-read-as-Bohr (≈ 0.53) coordinates."""
    ratio, n = bond_length_ratio(ds, idx)
    if ratio is None:
        return []
    level = "warning" if unit_given else "error"
    if ratio > BOND_RATIO_HIGH:
        hint = (f" (close to {ANGSTROM_TO_BOHR:.2f}: Bohr read as Å)"
                if abs(ratio / ANGSTROM_TO_BOHR - 1) < 0.15
                else "")
        return [Finding(level, "bond_lengths",
                        f"bonds are {ratio:.2f}× longer than covalent radii predict (median "
                        f"over {n} molecules){hint}; the coordinates are probably in Bohr. "
                        "Pass --length-unit bohr (Python: length_unit='bohr').")]
    if ratio < BOND_RATIO_LOW:
        hint = (f" (close to {BOHR_TO_ANGSTROM:.2f}: Å read as Bohr)"
                if abs(ratio / BOHR_TO_ANGSTROM - 1) < 0.15
                else "")
        return [Finding(level, "bond_lengths",
                        f"bonds are {ratio:.2f}× the length covalent radii predict (median "
                        f"over {n} molecules){hint}; the coordinates are probably in Å but "
                        "were converted as Bohr. Pass --length-unit angstrom (Python: "
                        "length_unit='angstrom').")]
    return []


def fitted_charges(ds: Dataset, i: int) -> np.ndarray | None:
    """ESP-fitted charges (net charge constrained) of molecule ``i``; None if impossible."""
    from dcmnet.fitting import fit_monopoles
    m = ds.molecule(i)
    if len(m["esp"]) < len(m["Z"]) + 1:
        return None
    grid, esp = m["grid"].astype(np.float64), m["esp"].astype(np.float64)
    if len(esp) > 2000:
        k = np.linspace(0, len(esp) - 1, 2000).astype(int)
        grid, esp = grid[k], esp[k]
    try:
        return fit_monopoles(m["R"], grid, esp, m["net_charge"])
    except (DataError, np.linalg.LinAlgError):
        return None


def check_esp_units(ds: Dataset, idx, unit_given: bool = False) -> list[Finding]:
    """ESP values 27×/627×/2625× too large (V, kcal/mol, kJ/mol) or far too small."""
    qmax = []
    for i in idx:
        q = fitted_charges(ds, i)
        if q is not None:
            qmax.append(np.abs(q).max())
    if not qmax:
        return []
    med = float(np.median(qmax))
    level = "warning" if unit_given else "error"
    if med > MAX_FITTED_CHARGE:
        guess = min(_ESP_SCALES, key=lambda k: abs(np.log(med / _ESP_SCALES[k] / _TYPICAL_MAX_Q)))
        return [Finding(level, "esp_units",
                        f"the ESP is far too large for Hartree/e: point charges fitted to it "
                        f"reach {med:.3g} e (median over {len(qmax)} molecules; real "
                        f"molecules stay below ~2 e). It is probably in {guess}: pass "
                        f"--esp-unit {guess} (Python: esp_unit='{guess}').")]
    small = []
    for i in idx:
        z = ds.Z[ds.atom_offsets[i]:ds.atom_offsets[i + 1]]
        if len(np.unique(z)) > 1 and ds.net_charge[i] == 0:
            q = fitted_charges(ds, i)
            if q is not None:
                small.append(np.abs(q).max())
    if small and float(np.median(small)) < 2e-3:
        return [Finding("warning", "esp_units",
                        f"the ESP is very small: point charges fitted to it stay below "
                        f"{float(np.median(small)):.2g} e (median over {len(small)} polar "
                        "molecules). Was it converted twice? The canonical unit is Hartree/e; "
                        "check --esp-unit.")]
    return []


def _scaled_distance(Z, R, grid) -> np.ndarray:
    """min_j |p − R_j| / r_vdW(Z_j) for every point p (float64)."""
    r = _radii(vdw_radii, Z)
    d = np.linalg.norm(grid[:, None, :] - R[None, :, :], axis=-1)
    return (d / r[None, :]).min(axis=1)


def _fit_rel_rmse(R, grid, esp, q) -> float:
    """Relative RMSE of the constrained point-charge fit (``rms(fit − V) / rms(V)``)."""
    from dcmnet.fitting import fit_monopoles, monopole_esp
    c = fit_monopoles(R, grid, esp, q)
    return float(np.sqrt(np.mean((monopole_esp(R, c, grid) - esp) ** 2))
                 / max(np.sqrt(np.mean(esp ** 2)), 1e-300))


def check_grid(ds: Dataset, idx, unit_given: bool = False) -> list[Finding]:
    """Grid/atom unit or frame mismatch, and points inside atoms.

    Unit mismatch: atom-centred charges fitted to the ESP explain it far better (relative
    RMSE less than half) when the grid is scaled by the Bohr/Å factor, i.e. the ESP was
    computed at the scaled points.
    """
    out = []
    fits, cen, inside, total, deep = [], [], 0, 0, 0
    worst = None
    for i in idx:
        m = ds.molecule(i)
        Z, R, g = m["Z"], m["R"].astype(np.float64), m["grid"].astype(np.float64)
        v = m["esp"].astype(np.float64)
        if len(g) > 2000:
            k = np.linspace(0, len(g) - 1, 2000).astype(int)
            g, v = g[k], v[k]
        if len(g) > len(Z) + 1:
            try:
                fits.append([_fit_rel_rmse(R, g * f, v, m["net_charge"])
                             for f in (1.0, BOHR_TO_ANGSTROM, ANGSTROM_TO_BOHR)])
            except (DataError, np.linalg.LinAlgError):
                pass
        s0 = _scaled_distance(Z, R, g)
        extent = np.linalg.norm(R - R.mean(0), axis=1).max() if len(R) > 1 else 0.0
        cen.append((float(np.linalg.norm(g.mean(0) - R.mean(0))), float(extent), int(i)))
        n_in = int((s0 < 1.0).sum())
        inside += n_in
        deep += int((s0 < 0.5).sum())
        total += len(s0)
        if n_in and worst is None:
            worst = (int(i), n_in, len(s0))
    level = "warning" if unit_given else "error"
    if fits:
        r0, ra, rc = np.median(np.array(fits), axis=0)
        if min(ra, rc) < 0.5 * r0 and r0 > 0.15:
            if ra <= rc:
                what = ("the grid looks like it is in Bohr while the atoms are in Å: with the "
                        f"grid scaled by {BOHR_TO_ANGSTROM:.3f} the ESP fits")
            else:
                what = ("the grid looks like it is in Å but was converted as Bohr: with the "
                        f"grid scaled by {ANGSTROM_TO_BOHR:.2f} the ESP fits")
            out.append(Finding(level, "grid_units",
                               f"{what} {r0 / min(ra, rc):.1f}× better (relative RMSE of "
                               f"fitted atomic charges {min(ra, rc):.2f} instead of {r0:.2f}, "
                               f"median over {len(fits)} molecules). Grid and atoms must share "
                               "one unit: fix the file or pass the right --length-unit."))
            return out
    far = [c for c in cen if c[0] > 3.0 + 0.5 * c[1]]
    if cen and len(far) > len(cen) / 2:
        d, e, i = max(far)
        out.append(Finding(level, "grid_units",
                           f"the grid's centroid is {d:.1f} Å from the molecule's (molecule "
                           f"{i}, molecular radius {e:.1f} Å; {len(far)} of {len(cen)} checked "
                           "molecules): grid and atoms are in different units or frames. Write "
                           "both in the same unit and orientation."))
        return out
    if inside:
        frac = inside / max(total, 1)
        i, n_in, n_tot = worst
        lvl = "error" if frac > 0.5 else "warning"
        out.append(Finding(lvl, "grid_inside_atoms",
                           f"{inside} of {total} checked grid points ({100 * frac:.1f} %) lie "
                           f"inside the atoms' vdW spheres ({deep} within half a radius of a "
                           f"nucleus; e.g. molecule {i}: {n_in} of {n_tot}), where the ESP is "
                           "dominated by the nuclear cusps. Use points on vdW shells (≥ 1.4 × "
                           "r_vdW, e.g. the cube reader's shells) or drop the inner points."))
    return out


def drop_points_inside_atoms(ds: Dataset, scale: float = INSIDE_SCALE
                             ) -> tuple[Dataset, np.ndarray]:
    """Remove grid points inside the atoms' vdW spheres (``|p − R_j| < scale · r_vdW(Z_j)``).

    At such points the ESP is dominated by the nuclear cusp (it diverges at a nucleus), so a
    point-charge model cannot and should not fit it, and a point on a nucleus makes
    :func:`dcmnet.fitting.fit_monopoles` singular. Radii: ``ase.data.vdw_radii`` (Bondi).

    Args:
        ds: the dataset (Å).
        scale: points closer than ``scale`` × vdW radius to an atom are dropped.
    Returns:
        ``(dataset, dropped)``: ``dataset`` is ``ds`` itself when nothing is dropped;
        ``dropped`` (M,) int counts per molecule.
    Raises:
        DataError: a molecule with no grid point left (names molecule index and name).
    """
    ao, go = ds.atom_offsets, ds.grid_offsets
    keep = np.ones(len(ds.esp), bool)
    dropped = np.zeros(len(ds), int)
    for i in range(len(ds)):
        g = ds.grid[go[i]:go[i + 1]].astype(np.float64)
        if not len(g):
            continue
        s0 = _scaled_distance(ds.Z[ao[i]:ao[i + 1]], ds.R[ao[i]:ao[i + 1]], g)
        k = s0 >= scale
        if not k.any():
            raise DataError(f"molecule {i} ({ds.name[i]}): all {len(g)} grid points lie inside "
                            "the atoms' vdW spheres; the grid and the atoms do not belong "
                            "together (different frames or units?). Fix the file.")
        keep[go[i]:go[i + 1]] = k
        dropped[i] = int((~k).sum())
    if not dropped.any():
        return ds, dropped
    return dataclasses.replace(ds, n_grid=(ds.n_grid - dropped).astype(ds.n_grid.dtype),
                               grid=ds.grid[keep], esp=ds.esp[keep]), dropped


def check_esp_magnitude(ds: Dataset) -> list[Finding]:
    """Error when the ESP outside the vdW spheres exceeds :data:`MAX_ESP_OUTSIDE` anywhere.

    Outside the vdW spheres the ESP of any molecule or small ion stays well below 1
    Hartree/e (a +2 e point charge at 1.4 × r_vdW(H) = 1.5 Å gives 0.7 Hartree/e); values of
    tens or hundreds come from a grid that does not match the atoms (shifted origin, other
    frame), so points that are really at the nuclei carry the cusp values.
    """
    go = ds.grid_offsets
    bad = []
    for i in range(len(ds)):
        v = np.abs(ds.esp[go[i]:go[i + 1]])
        if len(v) and float(v.max()) > MAX_ESP_OUTSIDE:
            bad.append((i, float(v.max()), int((v > MAX_ESP_OUTSIDE).sum()), len(v)))
    if not bad:
        return []
    i, vmax, n, tot = bad[0]
    return [Finding("error", "esp_magnitude",
                    f"molecule {i} ({ds.name[i]}): the ESP reaches {vmax:.3g} Hartree/e on "
                    f"{n} of {tot} points outside the vdW spheres ({len(bad)} molecule(s) "
                    f"affected; real molecules stay below {MAX_ESP_OUTSIDE:g}): the grid's "
                    "frame does not match the atoms (a shifted cube origin, atoms from "
                    "another geometry, grid and atoms in different units, or an ESP not in "
                    "Hartree/e). Write grid and atoms in one frame and unit.")]


def check_net_charge(ds: Dataset, idx) -> list[Finding]:
    """Warning when the ESP's monopole contradicts a molecule's net charge."""
    from dcmnet.data.readers.chemistry import estimate_net_charge
    bad = []
    for i in idx:
        m = ds.molecule(i)
        if len(m["esp"]) <= len(m["Z"]):
            continue
        est = estimate_net_charge(m["Z"], m["R"], m["grid"], m["esp"])
        if abs(est - m["net_charge"]) > 0.5:
            bad.append((i, est, m["net_charge"]))
    if not bad:
        return []
    i, est, q = bad[0]
    return [Finding("warning", "net_charge_esp",
                    f"molecule {i} has net charge {q:+g} e but its ESP looks like that of a "
                    f"{est:+.2f} e molecule ({len(bad)} of {len(idx)} checked molecules "
                    "disagree). Check the charges (--net-charge, 'Q', the file header).")]


def check_dataset(ds: Dataset, length_unit_given: bool = False, esp_unit_given: bool = False,
                  sample: int = 32) -> list[Finding]:
    """Run every check on a dataset; see the module docstring.

    Args:
        ds: the dataset as read (Å, e, Hartree/e).
        length_unit_given, esp_unit_given: the user stated the unit; its findings become
            warnings.
        sample: at most this many molecules go into the fit-based checks.
    Returns:
        The findings, errors first.
    """
    idx = _sample(len(ds), sample)
    out = check_atoms_overlap(ds)
    if out:
        return out
    out = check_bond_lengths(ds, idx, length_unit_given)
    if any(f.level == "error" for f in out):
        return out
    g = check_grid(ds, idx, length_unit_given)
    out += g
    if any(f.check == "grid_units" and f.level == "error" for f in g):
        return out
    e = check_esp_units(ds, idx, esp_unit_given)
    out += e
    if not any(f.check == "esp_units" for f in e):
        out += check_esp_magnitude(ds)
        out += check_net_charge(ds, idx)
    return sorted(out, key=lambda f: f.level != "error")


def apply_checks(ds: Dataset, path, report, length_unit_given: bool = False,
                 esp_unit_given: bool = False) -> list[Finding]:
    """Run :func:`check_dataset`; add its warnings to ``report``; raise on errors.

    Args:
        report: a :class:`~dcmnet.data.readers.report.ReadReport` (warnings become records)
            or a list of report lines (``"NAME: WARNING: ..."`` is appended).
    Raises:
        DataError: one message listing every error finding, prefixed with the file.
    """
    findings = check_dataset(ds, length_unit_given, esp_unit_given)
    rep = report if isinstance(report, ReadReport) else ReadReport(path)
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        if f.level == "warning":
            rep.warn(f.message)
    if errors:
        raise DataError(f"{path}: " + " Also: ".join(f.message for f in errors))
    if not findings:
        rep.note("unit sanity checks passed (bond lengths, ESP magnitude, grid placement, "
                 "net charges).")
    if rep is not report:
        report.extend(rep.lines())
    return findings


def check_canonical(ds: Dataset) -> list[Finding]:
    """The cheap checks for canonical files (already harmonized): atom overlap and the ESP
    magnitude outside the vdW spheres. Cost: one distance matrix per molecule."""
    return check_atoms_overlap(ds) + check_esp_magnitude(ds)


__all__ = ["Finding", "check_dataset", "check_canonical", "check_esp_magnitude",
           "drop_points_inside_atoms", "apply_checks", "check_atoms_overlap",
           "check_bond_lengths", "check_esp_units", "check_grid", "check_net_charge",
           "bond_length_ratio", "fitted_charges"]
