"""The layouts and shapes of NPZ archives read by :func:`dcmnet.data.readers.npz.read_npz`.

:func:`harmonize` translates aliased, ragged, flat or single-molecule arrays to the strict
padded mmml layout of :mod:`dcmnet.data.mmml` (``_build`` then applies the padding,
net-charge and dipole rules); every decision goes to the report. The rules are listed in
:mod:`dcmnet.data.readers.npz`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcmnet.data.dataset import centre_of_mass
from dcmnet.data.readers.options import ReadOptions, resolve_esp, resolve_length
from dcmnet.data.readers.chemistry import element_number
from dcmnet.data.readers.report import ReadReport
from dcmnet.errors import DataError, data_error
from dcmnet.units import DEBYE_TO_EBOHR, EBOHR_TO_EANGSTROM

#: |coordinate| from which a grid row counts as a padding sentinel (Å).
SENTINEL = 999.0


class _Ctx:
    """The file being harmonized, its report, and whether its layout was translated."""

    def __init__(self, path: Path, rep: ReadReport):
        self.path, self.rep = path, rep
        #: a field was renamed, reshaped or reinterpreted (not the plain mmml layout)
        self.translation = False

    def translated(self, text: str) -> None:
        """Report a translation of the layout (renamed, reshaped or reinterpreted field)."""
        self.translation = True
        self.rep.note(text)

    def translated_warning(self, text: str, fix: str | None = None,
                           field: str | None = None) -> None:
        """Report a translation of the layout that the user should fix, as a warning."""
        self.translation = True
        self.rep.warn(text, fix, field=field, stacklevel=4)

    def err(self, field, msg, fix=None, mol=None) -> DataError:
        """:func:`dcmnet.errors.data_error` for ``field`` of this file."""
        return data_error(self.path, msg, fix, field=field, mol=mol)



# ---------------------------------------------------------------------------- helpers
def _numeric(ctx: _Ctx, key: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "fiub":
        raise ctx.err(key, f"has dtype {arr.dtype}, expected numbers.",
                      "Re-save it as a plain float/int array.")
    return arr


def _z_from(raw_z: np.ndarray, ctx: _Ctx, key: str = "Z") -> np.ndarray:
    """Atomic numbers from numbers or element symbols ('' / 'X' = padding)."""
    if raw_z.dtype.kind in "US":
        flat = raw_z.astype(str).reshape(-1)
        out = np.zeros(flat.shape, np.int64)
        lead = raw_z.shape[0] if raw_z.ndim > 1 else 1
        per = max(flat.size // max(lead, 1), 1)
        for i, s in enumerate(flat):
            s = s.strip()
            if s in ("", "X", "x", "0"):
                continue
            try:
                out[i] = element_number(s, ctx.path)
            except DataError:
                mol = i // per if raw_z.ndim > 1 else 0
                raise ctx.err(key, f"holds the unknown element symbol {s!r}.",
                              "Use standard element symbols (H, C, N, O, ...), atomic "
                              "numbers, or '' / 'X' for padding.", mol=mol) from None
        ctx.rep.note(f"element symbols in '{key}' converted to atomic numbers.")
        return out.reshape(raw_z.shape)
    return _numeric(ctx, key, raw_z)


def _reshape(ctx: _Ctx, key: str, arr: np.ndarray, target: tuple) -> np.ndarray:
    if arr.shape == target:
        return arr
    if arr.size == int(np.prod(target)) and arr.size > 0:
        ctx.translated(f"'{key}' of shape {arr.shape} reshaped from flat storage to {target}.")
        return arr.reshape(target)
    raise ctx.err(key, f"has shape {arr.shape}, expected {target}.",
                  "Store one entry per atom/point of each molecule, padded to the same "
                  "length.")


def _pad(ctx, flat: np.ndarray, counts: np.ndarray, width: int, tail: tuple, key: str):
    if flat.shape[0] != counts.sum():
        raise ctx.err(key, f"has {flat.shape[0]} rows but the counts add up to "
                      f"{int(counts.sum())}.", "Make the counts match the flat arrays.")
    out = np.zeros((len(counts), width) + tail, dtype=flat.dtype)
    off = 0
    for i, c in enumerate(counts):
        out[i, :c] = flat[off:off + c]
        off += c
    return out


def _counts(ctx, arr, key) -> np.ndarray:
    a = _numeric(ctx, key, np.asarray(arr)).reshape(-1)
    if a.dtype.kind == "f" and (~np.isfinite(a) | (a != np.round(a))).any():
        raise ctx.err(key, "holds non-integer counts.")
    return np.round(a).astype(np.int64)


def harmonize(raw: dict, ctx: _Ctx, options: ReadOptions) -> dict:
    """Translate aliased/reshaped arrays to the strict mmml layout understood by ``_build``.

    Sections: layout (padded, ragged or single molecule), units, grid padding (sentinel rows
    and counts), ``mono``/``com``/``name``, ``Q`` and net charge by shape, ``D`` by shape.
    """
    Z = _z_from(raw["Z"], ctx)
    R = _numeric(ctx, "R", raw["R"])
    esp = _numeric(ctx, "esp", raw["esp"])
    grid = _numeric(ctx, "vdw_surface", raw["vdw_surface"])
    out: dict = {}
    N_raw = _counts(ctx, raw["N"], "N") if "N" in raw else None
    G_raw = _counts(ctx, raw["n_grid"], "n_grid") if "n_grid" in raw else None
    n, A, Z, R, esp, grid, G_raw = _layout(raw, ctx, Z, R, esp, grid, N_raw, G_raw)
    G = esp.shape[1]

    # ------------------------------------------------------------ units
    lf = resolve_length("angstrom", options, ctx.rep)
    ef = resolve_esp("hartree", options, ctx.rep)
    R = R.astype(np.float64) * lf
    grid = grid.astype(np.float64)
    esp = esp.astype(np.float64) * ef
    grid, esp, G_raw = _grid_padding(ctx, grid, esp, G_raw, n, G)
    grid = grid * lf
    if G_raw is not None:
        if G_raw.shape != (n,):
            raise ctx.err("n_grid", f"has {G_raw.size} entries, expected {n}.")
        out["n_grid"] = G_raw
    if N_raw is not None:
        if N_raw.shape != (n,):
            raise ctx.err("N", f"has {N_raw.size} entries, expected {n}.")
        out["N"] = N_raw
    out.update(R=R, Z=Z, esp=esp, vdw_surface=grid)

    # ------------------------------------------------------------ mono, com, name
    if "mono" in raw:
        out["mono"] = _reshape(ctx, "mono", _numeric(ctx, "mono", np.asarray(raw["mono"])),
                               (n, A))
    if "com" in raw:
        out["com"] = _reshape(ctx, "com", _numeric(ctx, "com", np.asarray(raw["com"])),
                              (n, 3)).astype(np.float64) * lf
    if "name" in raw:
        nm = np.asarray(raw["name"])
        out["name"] = nm.reshape(-1) if nm.size == n else nm

    # ------------------------------------------------------------ Q by shape
    if "_Q" in raw:
        _interpret_Q(ctx, raw["_Q"], n, A, Z > 0, out)
    if "Qnet" in raw:
        _net_charge(ctx, raw, n, A, out)

    # ------------------------------------------------------------ D by shape
    if "Dxyz" in raw:
        out["Dxyz"] = _numeric(ctx, "Dxyz", np.asarray(raw["Dxyz"]))
    if "_D" in raw:
        _interpret_D(ctx, raw["_D"], n, A, out, R, Z)
    return out


def _layout(raw, ctx, Z, R, esp, grid, N_raw, G_raw):
    """Padded ``(n, A[, 3])`` arrays from the padded, ragged flat or single-molecule layout.

    Returns ``(n, A, Z, R, esp, grid, G_raw)``; ``raw["mono"]`` is padded in place.
    """
    if Z.ndim == 2:
        n, A = Z.shape
    elif Z.ndim == 1 and N_raw is not None and len(N_raw) >= 1 and \
            N_raw.sum() == Z.shape[0] and (len(N_raw) > 1 or R.ndim == 2):
        n, A = len(N_raw), int(N_raw.max())
        ctx.translated(f"ragged flat layout: {n} molecules with per-molecule counts "
                 f"('N' {int(N_raw.min())}..{int(N_raw.max())} atoms); padded internally.")
        Z = _pad(ctx, Z, N_raw, A, (), "Z")
        R = _pad(ctx, _reshape(ctx, "R", R, (int(N_raw.sum()), 3)), N_raw, A, (3,), "R")
        for key in ("mono",):
            if key in raw:
                raw[key] = _pad(ctx, np.asarray(raw[key]).reshape(-1), N_raw, A, (), key)
        if esp.ndim == 1:
            if G_raw is None:
                if n == 1:
                    G_raw = np.array([esp.shape[0]])
                else:
                    raise ctx.err("n_grid", "is needed: the ESP is stored flat for several "
                                  "molecules.", "Add 'n_grid' (points per molecule).")
            G = int(G_raw.max())
            esp = _pad(ctx, esp, G_raw, G, (), "esp")
            grid = _pad(ctx, _reshape(ctx, "vdw_surface", grid, (int(G_raw.sum()), 3)),
                        G_raw, G, (3,), "vdw_surface")
    elif Z.ndim == 1:
        n, A = 1, Z.shape[0]
        ctx.translated("single molecule without a leading molecule axis; one added.")
        Z = Z[None]
        R = R.reshape((1,) + R.shape) if R.ndim == 2 else R
        if esp.ndim == 1:
            esp = esp[None]
        if grid.ndim == 2:
            grid = grid[None]
        for key in ("mono",):
            if key in raw and np.asarray(raw[key]).ndim == 1:
                raw[key] = np.asarray(raw[key])[None]
    else:
        raise ctx.err("Z", f"has shape {Z.shape}; expected (n_molecules, n_atoms_padded), "
                      "(n_atoms,) for one molecule, or flat with counts in 'N'.")
    R = _reshape(ctx, "R", R, (n, A, 3))
    if esp.ndim != 2:
        if esp.size % n:
            raise ctx.err("esp", f"has {esp.size} values, not a multiple of the {n} "
                          "molecules.", "Pad every molecule's ESP to the same length.")
        esp = _reshape(ctx, "esp", esp, (n, esp.size // n))
    G = esp.shape[1]
    grid = _reshape(ctx, "vdw_surface", grid, (n, G, 3))
    return n, A, Z, R, esp, grid, G_raw


def _grid_padding(ctx, grid, esp, G_raw, n, G):
    """Drop sentinel rows (|x| ≥ :data:`SENTINEL`) and trailing zero rows; counts from them.

    Returns ``(grid, esp, G_raw)`` with real rows first, in order.
    """
    rep = ctx.rep
    sentinel = (np.abs(grid) >= SENTINEL).all(axis=2)
    if sentinel.any():
        vals = np.unique(np.abs(grid[sentinel]))
        if G_raw is not None:
            bad = (sentinel & (np.arange(G)[None, :] < G_raw[:, None])).any(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ctx.err("n_grid", f"says {G_raw[i]} points but row(s) within them hold "
                              f"the padding sentinel {vals[0]:g}.",
                              "Fix 'n_grid' or the padding.", mol=i)
        # compact: real rows first, in order
        real = ~sentinel
        nonzero = (grid != 0).any(axis=2) | (esp != 0)
        ng = np.zeros(n, np.int64)
        g2, e2 = np.zeros_like(grid), np.zeros_like(esp)
        for i in range(n):
            rows = np.flatnonzero(real[i])
            nz = rows[nonzero[i, rows]]
            last = nz[-1] + 1 if nz.size else 0
            rows = rows[rows < last] if G_raw is None else rows[rows < G_raw[i]]
            ng[i] = rows.size
            g2[i, :rows.size], e2[i, :rows.size] = grid[i, rows], esp[i, rows]
        if (ng == 0).any():
            i = int(np.flatnonzero(ng == 0)[0])
            raise ctx.err("vdw_surface", "has no ESP points (only padding rows).",
                          "Remove that molecule or regenerate its ESP.", mol=i)
        grid, esp = g2, e2
        if G_raw is None:
            G_raw = ng
            rep.note(f"no 'n_grid' key: grid counts computed from the padding (sentinel "
                     f"coordinate{'s' if len(vals) > 1 else ''} "
                     f"{', '.join(f'{v:g}' for v in vals[:3])} in {int(sentinel.sum())} rows, "
                     f"plus trailing zero rows): {int(ng.min())}..{int(ng.max())} points per "
                     "molecule.")
    return grid, esp, G_raw


def _net_charge(ctx, raw, n, A, out):
    """The net charge under a ``Qnet`` alias: checked against ``Q``, or per-atom → ``mono``."""
    rep = ctx.rep
    key = raw["_Qnet_key"]
    q = _numeric(ctx, key, np.asarray(raw["Qnet"], dtype=np.float64).reshape(-1))
    if q.size == 1 and n > 1:
        q = np.full(n, float(q[0]))
    if q.size == n * A and q.size != n:
        # per-atom values under a net-charge name: atomic charges, like a (n, A) 'Q'
        if "mono" in out:
            rep.warn(f"'{key}' holds one value per atom (atomic charges?) and 'mono' "
                     "exists; ignored.", field=key)
        else:
            out["mono"] = q.reshape(n, A)
            ctx.translated_warning(f"'{key}' holds one value per atom: interpreted as atomic "
                                   "charges and used as 'mono'; store reference atomic "
                                   "charges under 'mono'.", field=key)
        q = None
    elif q.shape != (n,):
        raise ctx.err(key, f"has {q.size} entries, expected one net charge per molecule "
                      f"({n}).")
    if q is None:
        pass
    elif "Q" in out:
        if not np.allclose(out["Q"], q):
            i = int(np.flatnonzero(~np.isclose(out["Q"], q))[0])
            raise ctx.err(key, f"is {q[i]:g} but 'Q' says {out['Q'][i]:g}.",
                          "Keep one consistent net charge.", mol=i)
        rep.note(f"'{key}' agrees with 'Q'.")
    else:
        out["Q"] = q
        rep.note(f"net charge read from '{key}' (as 'Q').")


def _interpret_Q(ctx: _Ctx, Q: np.ndarray, n: int, A: int, real: np.ndarray, out: dict):
    rep = ctx.rep
    Q = _numeric(ctx, "Q", np.asarray(Q)).astype(np.float64)
    size = Q.size
    shaped = Q.ndim > 1 or (Q.ndim == 1 and size == n)
    cand = []
    if size == n:
        cand.append("net")
    if size == n * A and A > 1:
        cand.append("atomic")
    if size == 6 * n:
        cand.append("quad6")
    if size == 9 * n:
        cand.append("quad9")
    if Q.ndim > 1:  # the shape decides
        if Q.shape in ((n,), (n, 1)):
            cand = ["net"]
        elif Q.shape == (n, 3, 3):
            cand = ["quad9"]
        elif Q.shape == (n, A) and A not in (6, 9):
            cand = ["atomic"]
        elif Q.shape == (n, 6) and A != 6:
            cand = ["quad6"]
        elif Q.shape == (n, 9) and A != 9:
            cand = ["quad9"]
    if not cand:
        raise ctx.err("Q", f"has shape {Q.shape}: neither a net charge ({n},), quadrupole "
                      f"components ({n}, 6), a quadrupole tensor ({n}, 9)/({n}, 3, 3) nor "
                      f"atomic charges ({n}, {A}).", "Fix its shape or rename the key.")
    choice = cand[0]
    if len(cand) > 1:
        # ambiguous: atomic charges have zeros on padded atoms and near-integer sums
        a = Q.reshape(n, A)
        looks_atomic = (np.abs(a[~real]) < 1e-12).all() and \
            (np.abs(a.sum(1) - np.round(a.sum(1))) < 0.05).all()
        choice = "atomic" if ("atomic" in cand and looks_atomic) else \
            next(c for c in cand if c != "atomic")
        ctx.translated_warning(f"'Q' of shape {Q.shape} is ambiguous ({' or '.join(cand)}); "
                               f"interpreted as {_Q_TEXT[choice]} from its content.",
                               "Use distinct keys to be sure.", field="Q")
    how = "" if shaped else " (from flat storage)"
    if choice == "net":
        out["Q"] = Q.reshape(n)
        ctx.translated(f"'Q' {Q.shape} interpreted as the net charge per molecule{how}.")
    elif choice == "atomic":
        q = Q.reshape(n, A)
        if "mono" in out:
            rep.warn(f"'Q' {Q.shape} holds atomic charges but 'mono' exists; 'Q' ignored.",
                     field="Q")
        else:
            out["mono"] = q
            ctx.translated_warning(f"'Q' {Q.shape} interpreted as atomic charges{how} and "
                                   "used as 'mono'; store reference atomic charges under "
                                   "'mono'.", field="Q")
    elif choice == "quad6":
        rep.extras["quadrupole_components"] = Q.reshape(n, 6)
        ctx.translated(f"'Q' {Q.shape} interpreted as 6 quadrupole components per molecule{how} "
                 f"(molecule 0: {np.array2string(Q.reshape(n, 6)[0], precision=4)}); kept as "
                 "extra information (not used for training).")
    else:
        rep.extras["quadrupole_tensor"] = Q.reshape(n, 3, 3)
        t = Q.reshape(n, 3, 3)[0]
        ctx.translated(f"'Q' {Q.shape} interpreted as a 3×3 quadrupole tensor per molecule{how} "
                 f"(molecule 0: trace {np.trace(t):.4g}, diagonal "
                 f"{np.array2string(np.diag(t), precision=4)}); kept as extra information "
                 "(not used for training).")


_Q_TEXT = {"net": "net charges", "atomic": "atomic charges", "quad6": "quadrupole components",
           "quad9": "quadrupole tensors"}


def _interpret_D(ctx: _Ctx, D: np.ndarray, n: int, A: int, out: dict, R, Z):
    rep = ctx.rep
    D = _numeric(ctx, "D", np.asarray(D)).astype(np.float64)
    shaped = D.ndim > 1 or D.size == n
    how = "" if shaped else " (from flat storage)"
    if D.size == n and D.ndim <= 2 and (D.ndim < 2 or D.shape[1] == 1):
        rep.extras["dipole_magnitude"] = D.reshape(n)
        mag = D.reshape(n)
        ctx.translated(f"'D' {D.shape} interpreted as the dipole magnitude per molecule{how} "
                 f"(range {np.nanmin(mag):.4g}..{np.nanmax(mag):.4g}, unit not stated); kept "
                 "as extra information (a vector is needed for the dipole loss).")
        return
    if D.shape == (n, 3) or (D.ndim == 1 and D.size == 3 * n):
        vec = D.reshape(n, 3)
        if "Dxyz" in out:
            ctx.translated(f"'D' {D.shape} interpreted as the molecular dipole vector; 'Dxyz' "
                     "present and used instead.")
            return
        unit, ratio = _guess_dipole_unit(vec, out, R, Z)
        if unit == "debye":
            vec = vec * DEBYE_TO_EBOHR
        elif unit == "eangstrom":
            vec = vec / EBOHR_TO_EANGSTROM
        out["Dxyz"] = vec
        if ratio is None:
            ctx.translated(f"'D' {D.shape} interpreted as the molecular dipole vector{how}, assumed "
                     "in e·Bohr like 'Dxyz' (no reference charges to check the unit).")
        else:
            label = {"ebohr": "e·Bohr", "eangstrom": "e·Å", "debye": "Debye"}[unit]
            ctx.translated(f"'D' {D.shape} interpreted as the molecular dipole vector{how}, in "
                     f"{label} (judged from the dipole of 'mono': ratio {ratio:.2f} in that "
                     "unit).")
        return
    if D.shape == (n, A, 3) or (D.ndim <= 2 and D.size == 3 * n * A):
        rep.extras["atomic_dipoles"] = D.reshape(n, A, 3)
        ad = D.reshape(n, A, 3)
        ctx.translated(f"'D' {D.shape} interpreted as atom-centred dipoles{how} (largest |d| "
                 f"{np.nanmax(np.linalg.norm(ad, axis=-1)):.4g}); kept as extra information "
                 "(not used for training).")
        return
    raise ctx.err("D", f"has shape {D.shape}: neither a magnitude ({n},), a molecular dipole "
                  f"({n}, 3) nor atom-centred dipoles ({n}, {A}, 3).",
                  "Fix its shape or rename the key.")


def _guess_dipole_unit(vec: np.ndarray, out: dict, R, Z) -> tuple[str, float | None]:
    """Unit of a dipole-vector field, judged against the dipole of ``mono`` (neutral only)."""
    if "mono" not in out:
        return "ebohr", None
    mono = np.nan_to_num(np.asarray(out["mono"], float))
    real = Z > 0
    com = centre_of_mass(Z, R)
    mu = (mono[..., None] * (R - com[:, None, :]) * real[..., None]).sum(1)  # e·Å
    q = mono.sum(1)
    a = np.linalg.norm(mu, axis=1)
    b = np.linalg.norm(vec, axis=1)
    sel = (np.abs(q) < 0.5) & (a > 0.05) & np.isfinite(b) & (b > 0)
    if sel.sum() < 1:
        return "ebohr", None
    ratio_eA = float(np.median(b[sel] / a[sel]))  # 1 for e·Å; larger for e·Bohr, Debye
    cands = {"eangstrom": 1.0, "ebohr": 1.0 / EBOHR_TO_EANGSTROM,
             "debye": 1.0 / (DEBYE_TO_EBOHR * EBOHR_TO_EANGSTROM)}
    best = min(cands, key=lambda k: abs(np.log(ratio_eA / cands[k])))
    if abs(np.log(ratio_eA / cands[best])) > np.log(1.3):
        return "ebohr", None
    return best, ratio_eA / cands[best]

