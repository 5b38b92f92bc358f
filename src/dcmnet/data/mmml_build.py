"""The rules of the mmml layout: padded arrays → the canonical ragged dataset.

:func:`_build` checks and converts the strict padded layout of :mod:`dcmnet.data.mmml`
(also the target of :mod:`dcmnet.data.readers.npz_layout`), one function per section:
shapes, atom counts, grid counts, finite values, reference charges, net charge, flattening
and the dipole (moved to the centre of mass). Every decision goes to ``note``/``warn``;
every error names the file, field, molecule and the fix.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.errors import DataError, data_error
from dcmnet.units import EBOHR_TO_EANGSTROM, MAX_ATOMIC_NUMBER

_COM_TOL = 1e-3      # Å: a 'com' closer than this to the mass-weighted centre is "the same"


_MONO_INT_TOL = 0.1  # e: mono sums further than this from an integer get a warning


def _err(path, field, msg, fix=None, mol=None) -> DataError:
    """:func:`dcmnet.errors.data_error` for ``field`` (of molecule ``mol``)."""
    return data_error(path, msg, fix, field=field, mol=mol)


def _first_bad(rows: np.ndarray) -> int:
    return int(np.flatnonzero(rows)[0])


def _per_molecule(arr: np.ndarray, n: int, path, key: str, allow_2d_one=True) -> np.ndarray:
    """A per-molecule scalar field as shape (n,), accepting (n, 1)."""
    if allow_2d_one and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise _err(path, key, f"has shape {arr.shape}, expected ({n},) (one value per molecule).",
                   "Store one entry per molecule, in the same order as 'R'.")
    return arr


def _numeric(path, key, arr) -> np.ndarray:
    if arr.dtype.kind not in ("f", "i", "u"):
        raise _err(path, key, f"has dtype {arr.dtype}, expected a numeric array.",
                   "Re-save it as a plain float/int array.")
    return arr


def _build(path: Path, raw: dict, note, warn) -> Dataset:
    """The canonical dataset of a strict padded mmml layout; ``note``/``warn`` get the report.

    Sections (one function each): shapes, atom counts, grid counts, finite values, reference
    charges, net charge, flattening, dipole.

    Raises:
        DataError: naming the file, field, molecule and the fix.
    """
    R, Z, esp, vdw = _shapes(path, raw)
    n = R.shape[0]
    real, N = _atom_counts(path, raw, Z, note)
    ng, gmask = _grid_counts(path, raw, esp, vdw, note)
    _check_finite(path, R, esp, vdw, real, gmask)
    has_mono, mono2d = _reference_charges(path, raw, real, N, note, warn)
    net = _net_charge(path, raw, n, has_mono, mono2d, note, warn)
    ds = _flatten(path, raw, R, Z, esp, vdw, real, N, ng, gmask, net, mono2d, has_mono)
    if "Dxyz" in raw:
        _dipole(path, raw, ds, net, note, warn)
    else:
        note("no 'Dxyz' key: no reference dipoles.")

    ds.validate()
    note(f"mmml-style padded NPZ: {n} molecules, {int(N.min())}..{int(N.max())} atoms, "
         f"{int(ng.min())}..{int(ng.max())} grid points.")
    return ds


def _shapes(path, raw):
    """``(R, Z, esp, vdw)`` with their shapes checked; Z as int64."""
    R = _numeric(path, "R", raw["R"]).astype(np.float64)
    Zr = _numeric(path, "Z", raw["Z"])
    esp = _numeric(path, "esp", raw["esp"])
    vdw = _numeric(path, "vdw_surface", raw["vdw_surface"])

    if R.ndim != 3 or R.shape[-1] != 3:
        hint = ("It looks like a ragged (flat) file; canonical dcmnet files carry a 'format' "
                "key." if R.ndim == 2 else "")
        raise _err(path, "R", f"has shape {R.shape}, expected (n_molecules, n_atoms_padded, 3)"
                   " in Å.", hint or "Pad every molecule to the same number of atom slots.")
    n, n_slots = R.shape[:2]
    if n == 0:
        raise DataError(f"{path}: the file holds no molecules.")
    if Zr.shape != (n, n_slots):
        raise _err(path, "Z", f"has shape {Zr.shape}, expected {(n, n_slots)} to match 'R'.",
                   "Give one atomic number per atom slot, 0 for padding.")
    if Zr.dtype.kind == "f":
        if not np.isfinite(Zr).all() or (Zr != np.round(Zr)).any():
            i = _first_bad((~np.isfinite(Zr) | (Zr != np.round(Zr))).any(axis=1))
            raise _err(path, "Z", "holds non-integer atomic numbers.",
                       "Store integer atomic numbers (0 = padding).", mol=i)
    Z = np.round(Zr).astype(np.int64) if Zr.dtype.kind == "f" else Zr.astype(np.int64)
    if esp.ndim != 2 or esp.shape[0] != n:
        raise _err(path, "esp", f"has shape {esp.shape}, expected ({n}, n_grid_padded) in "
                   "Hartree/e.", "Pad every molecule's ESP with zeros to the same length.")
    n_gslots = esp.shape[1]
    if vdw.shape != (n, n_gslots, 3):
        raise _err(path, "vdw_surface", f"has shape {vdw.shape}, expected {(n, n_gslots, 3)} "
                   "to match 'esp'.", "Give one point (Å) per ESP value.")
    bad = (Z < 0) | (Z > MAX_ATOMIC_NUMBER)
    if bad.any():
        i = _first_bad(bad.any(axis=1))
        raise _err(path, "Z", f"holds atomic number {Z[i][bad[i]][0]}; atomic numbers must be "
                   "1..118 (0 for padding).", mol=i)
    return R, Z, esp, vdw


def _atom_counts(path, raw, Z, note):
    """``(real, N)``: the real-atom mask (Z > 0) and atoms per molecule (checked vs 'N')."""
    n, n_slots = Z.shape
    real = Z > 0
    count = real.sum(axis=1)
    if "N" in raw:
        Nf = _per_molecule(_numeric(path, "N", raw["N"]), n, path, "N")
        if Nf.dtype.kind == "f" and (~np.isfinite(Nf) | (Nf != np.round(Nf))).any():
            raise _err(path, "N", "holds non-integer atom counts.", mol=_first_bad(
                ~np.isfinite(Nf) | (Nf != np.round(Nf))))
        N = np.round(Nf).astype(np.int64) if Nf.dtype.kind == "f" else Nf.astype(np.int64)
        bad = N != count
        if bad.any():
            i = _first_bad(bad)
            raise _err(path, "N", f"says {N[i]} atoms but 'Z' has {count[i]} non-zero entries "
                       f"({int(bad.sum())} molecule(s) disagree).",
                       "Padded atom slots must have Z = 0 and real atoms Z > 0; fix 'Z' or "
                       "set 'N' to the number of real atoms.", mol=i)
    else:
        N = count
        note("no 'N' key: atom counts computed from Z > 0.")
    if (N == 0).any():
        raise _err(path, "Z", "has no real atom (all Z = 0).", "Remove that molecule.",
                   mol=_first_bad(N == 0))
    prefix = np.arange(n_slots)[None, :] < N[:, None]
    if not (prefix == real).all():
        note("real atoms are not all at the front of their rows; selected by Z > 0.")
    return real, N


def _grid_counts(path, raw, esp, vdw, note):
    """``(ng, gmask)``: grid points per molecule ('n_grid' or trailing zero rows), mask."""
    n, n_gslots = esp.shape
    if "n_grid" in raw:
        ngf = _per_molecule(_numeric(path, "n_grid", raw["n_grid"]), n, path, "n_grid")
        if ngf.dtype.kind == "f" and (~np.isfinite(ngf) | (ngf != np.round(ngf))).any():
            raise _err(path, "n_grid", "holds non-integer counts.", mol=_first_bad(
                ~np.isfinite(ngf) | (ngf != np.round(ngf))))
        ng = np.round(ngf).astype(np.int64)
        bad = (ng < 1) | (ng > n_gslots)
        if bad.any():
            i = _first_bad(bad)
            raise _err(path, "n_grid", f"is {ng[i]}, outside 1..{n_gslots} (the padded length "
                       "of 'esp').", "Give the number of real ESP points of each molecule.",
                       mol=i)
    else:
        nonzero = (vdw != 0).any(axis=2) | (esp != 0) | ~np.isfinite(esp)
        ng = np.where(nonzero.any(axis=1),
                      n_gslots - np.argmax(nonzero[:, ::-1], axis=1), 0).astype(np.int64)
        if (ng == 0).any():
            raise _err(path, "vdw_surface", "has only zero rows (no ESP points).",
                       "Remove that molecule or regenerate its ESP.", mol=_first_bad(ng == 0))
        note(f"no 'n_grid' key: grid counts computed from trailing zero rows of "
             f"'vdw_surface'/'esp' ({int(ng.min())}..{int(ng.max())} points per molecule).")
    gmask = np.arange(n_gslots)[None, :] < ng[:, None]
    return ng, gmask


def _check_finite(path, R, esp, vdw, real, gmask):
    """NaN/Inf in a real atom or grid point is an error."""
    n = R.shape[0]
    for key, arr, mask in (("R", R, real), ("esp", esp, gmask), ("vdw_surface", vdw, gmask)):
        fin = np.isfinite(arr).reshape(n, arr.shape[1], -1).all(axis=2)
        bad = (mask & ~fin).any(axis=1)
        if bad.any():
            raise _err(path, key, "contains NaN or Inf.", "Fix or drop that molecule.",
                       mol=_first_bad(bad))


def _reference_charges(path, raw, real, N, note, warn):
    """``(has_mono, mono2d)``: reference charges; an all-NaN molecule has none."""
    n, n_slots = real.shape
    if "mono" in raw:
        mono_raw = _numeric(path, "mono", raw["mono"]).astype(np.float64)
        if mono_raw.shape != (n, n_slots):
            raise _err(path, "mono", f"has shape {mono_raw.shape}, expected {(n, n_slots)} to "
                       "match 'Z'.", "Give one charge (e) per atom slot.")
        nan = np.isnan(mono_raw) & real
        all_nan = nan.sum(axis=1) == N
        partial = nan.any(axis=1) & ~all_nan
        if partial.any() or (~np.isfinite(mono_raw) & ~np.isnan(mono_raw) & real).any():
            bad = partial | (np.isinf(mono_raw) & real).any(axis=1)
            raise _err(path, "mono", "contains NaN or Inf for some atoms.",
                       "Fix the charges, or set all of that molecule's charges to NaN to mark "
                       "them as absent.", mol=_first_bad(bad))
        has_mono = ~all_nan
        mono2d = np.where(real & has_mono[:, None], mono_raw, 0.0)
        if all_nan.any():
            note(f"'mono' all-NaN for {int(all_nan.sum())} molecule(s): no reference charges "
                 "for those.")
    else:
        has_mono = np.zeros(n, bool)
        mono2d = np.zeros((n, n_slots))
        warn("no 'mono' key: no reference atomic charges; the charge loss and charge "
             "metrics are switched off for these molecules (never trained against zeros).")
    return has_mono, mono2d


def _net_charge(path, raw, n, has_mono, mono2d, note, warn):
    """(n,) net charges: from 'Q', else the rounded sum of 'mono', else 0 (each reported)."""
    q_source = None
    if "Q" in raw:
        Qr = raw["Q"]
        if Qr.ndim == 1 or (Qr.ndim == 2 and Qr.shape[1] == 1):
            Qv = _per_molecule(_numeric(path, "Q", Qr).astype(np.float64), n, path, "Q")
            if not np.isfinite(Qv).all():
                raise _err(path, "Q", "contains NaN or Inf.", "Give the total charge in e.",
                           mol=_first_bad(~np.isfinite(Qv)))
            frac = np.abs(Qv - np.round(Qv))
            if (frac > 1e-3).any():
                i = int(np.argmax(frac))
                raise _err(path, "Q", f"is {Qv[i]}, not an integer.",
                           "'Q' must be the molecule's total charge in e.", mol=i)
            net = np.round(Qv)
            q_source = "Q"
            note("net charge from 'Q' (" + _charge_summary(net) + ").")
            if has_mono.any():
                s = mono2d.sum(axis=1)
                dev = np.abs(s - net) * has_mono
                if (dev > _MONO_INT_TOL).any():
                    i = int(np.argmax(dev))
                    warn(f"'mono' of molecule {i} sums to {s[i]:.4f} e but 'Q' is {net[i]:g} e "
                         f"({int((dev > _MONO_INT_TOL).sum())} molecule(s) differ by more than "
                         f"{_MONO_INT_TOL} e).")
        else:
            note(f"'Q' has shape {Qr.shape}: not a per-molecule net charge (a quadrupole?); "
                 "ignored.")
    if q_source is None:
        if has_mono.any():
            s = mono2d.sum(axis=1)
            net = np.where(has_mono, np.round(s), 0.0)
            dev = np.abs(s - np.round(s)) * has_mono
            note(f"net charge from the rounded sum of 'mono' (largest deviation from an "
                 f"integer {dev.max():.3f} e; " + _charge_summary(net) + ").")
            if (~has_mono).any():
                warn(f"{int((~has_mono).sum())} molecule(s) have neither 'Q' nor 'mono'; "
                     "assumed neutral (0 e).")
            if (dev > _MONO_INT_TOL).any():
                i = int(np.argmax(dev))
                warn(f"'mono' of molecule {i} sums to {s[i]:.4f} e, far from an integer; "
                     "add a 'Q' key with the net charges.")
        else:
            net = np.zeros(n)
            note("no 'Q' and no 'mono': all molecules assumed neutral (net charge 0 e).")
    net = net + 0.0  # no negative zeros
    return net


def _flatten(path, raw, R, Z, esp, vdw, real, N, ng, gmask, net, mono2d, has_mono):
    """The ragged :class:`Dataset` (no dipoles yet)."""
    n = R.shape[0]
    counts_a = N.astype(np.int32)
    counts_g = ng.astype(np.int32)
    if "name" in raw:
        nm = raw["name"]
        if nm.shape != (n,):
            raise _err(path, "name", f"has shape {nm.shape}, expected ({n},).",
                       "Give one name per molecule or drop the key.")
        names = nm.astype(str)
    else:
        names = np.array([f"{path.stem}:{i}" for i in range(n)])
    ds = Dataset(
        n_atoms=counts_a, n_grid=counts_g,
        Z=Z[real].astype(np.int32), R=R[real],
        grid=vdw[gmask].astype(np.float32), esp=esp[gmask].astype(np.float32),
        net_charge=net.astype(np.float64), mono=mono2d[real], has_mono=has_mono,
        dipole=np.zeros((n, 3)), has_dipole=np.zeros(n, bool), name=names, source=str(path))
    return ds


def _dipole(path, raw, ds, net, note, warn):
    """'Dxyz' (e·Bohr, origin 'com') → ``ds.dipole`` (e·Å about the centre of mass)."""
    n = len(ds)
    D = _numeric(path, "Dxyz", raw["Dxyz"]).astype(np.float64)
    if D.shape != (n, 3):
        if D.size == 3 * n:
            note(f"'Dxyz' of shape {D.shape} reshaped to ({n}, 3).")
            D = D.reshape(n, 3)
        else:
            raise _err(path, "Dxyz", f"has shape {D.shape}, expected ({n}, 3) (dipole "
                       "vector in e·Bohr).", "Store one 3-vector per molecule.")
    nan = np.isnan(D)
    absent = nan.all(axis=1)
    bad = (nan.any(axis=1) & ~absent) | np.isinf(D).any(axis=1)
    if bad.any():
        raise _err(path, "Dxyz", "contains NaN or Inf.", "Fix it, or set the whole row "
                   "to NaN to mark the dipole as absent.", mol=_first_bad(bad))
    has_dip = ~absent
    mu = np.where(has_dip[:, None], D, 0.0) * EBOHR_TO_EANGSTROM
    com_true = ds.centre_of_mass()
    charged = (net != 0) & has_dip
    if "com" in raw:
        com_f = _numeric(path, "com", raw["com"]).astype(np.float64)
        if com_f.shape != (n, 3):
            raise _err(path, "com", f"has shape {com_f.shape}, expected ({n}, 3) in Å.",
                       "Store the dipole origin of each molecule.")
        if not np.isfinite(com_f[has_dip]).all():
            raise _err(path, "com", "contains NaN or Inf.", mol=_first_bad(
                ~np.isfinite(com_f).all(axis=1) & has_dip))
        shift = com_true - np.where(has_dip[:, None], com_f, com_true)
        off = np.linalg.norm(shift, axis=1) > _COM_TOL
        mu = mu - net[:, None] * shift
        note("'Dxyz' (e·Bohr) converted to e·Å; origin taken from 'com'.")
        if off.any():
            moved = off & charged
            note(f"'com' differs from the mass-weighted centre of mass by up to "
                 f"{np.linalg.norm(shift, axis=1).max():.3g} Å in {int(off.sum())} "
                 f"molecule(s); dipoles of {int(moved.sum())} charged molecule(s) moved "
                 "to the centre of mass (mu_com = mu - Q (com_mass - com)); neutral "
                 "molecules need no shift.")
    else:
        note("'Dxyz' (e·Bohr) converted to e·Å; no 'com' key: origin assumed to be the "
             "centre of mass.")
        if charged.any():
            warn(f"{int(charged.sum())} charged molecule(s) have a dipole but no 'com': "
                 "the dipole of an ion depends on the origin, which is unknown; assumed "
                 "to be the centre of mass. Add a 'com' key (Å) to be sure.")
    if absent.any():
        note(f"'Dxyz' all-NaN for {int(absent.sum())} molecule(s): no reference dipole for "
             "those.")
    ds.dipole = mu
    ds.has_dipole = has_dip
    _check_dipole_units(ds, note, warn)


def _charge_summary(net: np.ndarray) -> str:
    vals, cnt = np.unique(net, return_counts=True)
    return ", ".join(f"{int(c)} × {v:+g} e" for v, c in zip(vals, cnt))


def _check_dipole_units(ds: Dataset, note, warn) -> None:
    """Compare 'Dxyz' with the dipole of 'mono' to catch a file stored in Debye or e·Å."""
    use = ds.has_dipole & ds.has_mono & (ds.net_charge == 0)
    if use.sum() < 3:
        return
    seg = np.repeat(np.arange(len(ds)), ds.n_atoms)
    com = ds.centre_of_mass()
    rel = ds.R - com[seg]
    mu_mono = np.stack([np.bincount(seg, weights=ds.mono * rel[:, k], minlength=len(ds))
                        for k in range(3)], axis=1)
    a = np.linalg.norm(mu_mono, axis=1)
    b = np.linalg.norm(ds.dipole, axis=1)
    sel = use & (a > 0.05)
    if sel.sum() < 3:
        return
    ratio = float(np.median(b[sel] / a[sel]))
    if not 0.6 < ratio < 1.6:
        warn(f"the converted 'Dxyz' is {ratio:.2f} × the dipole of 'mono' (median over "
             f"{int(sel.sum())} neutral molecules); expected about 1. 'Dxyz' must be in e·Bohr "
             "(a ratio near 2.5 suggests Debye, near 0.53 suggests e·Å).")
