"""NPZ harmonization: any reasonable NumPy archive of ESP data → the canonical dataset.

The group's files and earlier scripts use many names and shapes for the same things.
:func:`read_npz` translates them to the mmml layout of :mod:`dcmnet.data.mmml` (whose
builder applies the padding, net-charge and dipole rules) and reports every decision.
Rules (each one is written to the report):

* **Field aliases** (exact key, or case-insensitive for names longer than one letter):

  ====================  ===========================================================
  role                  accepted keys, in order of preference
  ====================  ===========================================================
  positions (Å)         ``R``, ``positions``, ``coordinates``, ``coords``, ``xyz``, ``pos``
  atomic numbers        ``Z``, ``atomic_numbers``, ``numbers``, ``elements``, ``species``,
                        ``symbols`` (strings are element symbols; ``''``/``'X'`` = padding)
  grid points (Å)       ``vdw_surface``, ``esp_grid``, ``vdw_grid``, ``grid``,
                        ``surface_points``, ``grid_points``, ``points``
  ESP (Hartree/e)       ``esp``, ``esp_values``, ``potential``, ``esp_ref``, ``V``, ``vpot``
  atoms per molecule    ``N``, ``n_atoms``, ``natoms``, ``num_atoms``
  points per molecule   ``n_grid``, ``ngrid``, ``n_points``, ``num_grid``, ``n_esp``
  reference charges     ``mono``, ``monopoles``, ``charges``, ``atomic_charges``,
                        ``partial_charges``, ``esp_charges``
  dipole (e·Bohr)       ``Dxyz``, ``dipole``, ``dipoles``, ``dipole_vector``, ``D_xyz``
  dipole origin (Å)     ``com``, ``center_of_mass``, ``centre_of_mass``, ``dipole_origin``
  net charge (e)        ``Q`` (by shape, below), ``total_charge``, ``net_charge``, ``charge``
  name                  ``name``, ``names``, ``mol_name``, ``id``
  ====================  ===========================================================

* **Layouts**: padded ``(n, A[, 3])`` arrays (the mmml layout); ragged flat arrays with
  per-molecule counts (``Z`` (ΣN,) + ``N`` (n,), ``esp`` (ΣG,) + ``n_grid`` (n,)); one
  molecule without a leading axis; per-molecule arrays stored flat (``(n·A·3,)``,
  ``(n, A·3)``) are reshaped.
* **Counts**: missing ``N`` → from ``Z > 0`` (padded atoms are recognised by Z = 0, never by
  position); missing ``n_grid`` → from the padding: rows whose three coordinates are a
  sentinel (|x| ≥ 999 Å, e.g. 1e4 or 1e6 written by some tools) and trailing all-zero rows.
* **``D`` by shape**: (n,) → dipole magnitude (report only); (n, 3) → molecular dipole
  vector (used when there is no ``Dxyz``; its unit is inferred from ``mono`` when possible,
  else e·Bohr as ``Dxyz``); (n, A, 3) → atom-centred dipoles (report only).
* **``Q`` by shape**: (n,) → net charge; (n, 6) → quadrupole components; (n, 9) or
  (n, 3, 3) → 3×3 quadrupole tensor (both report only); (n, A) → atomic charges (warning:
  should be ``mono``; used as ``mono`` when that is absent). Flat storage is recognised by
  size; ambiguous sizes are resolved by content and reported.
* missing ``mono`` → no reference charges (warning; charge loss and metrics are off).

Nothing is ever unpickled (:func:`dcmnet.data.dataset.open_npz`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcmnet.data.dataset import FORMAT_TAG, Dataset, open_npz, read_array
from dcmnet.data.mmml import _build
from dcmnet.data.readers.base import (ReadOptions, Report, element_number, resolve_esp,
                                      resolve_length)
from dcmnet.errors import DataError
from dcmnet.units import DEBYE_TO_EBOHR, EBOHR_TO_EANGSTROM

#: role → accepted keys (first present wins; the others are reported as ignored).
ALIASES: dict[str, tuple[str, ...]] = {
    "R": ("R", "positions", "coordinates", "coords", "xyz", "pos"),
    "Z": ("Z", "atomic_numbers", "numbers", "elements", "species", "symbols"),
    "vdw_surface": ("vdw_surface", "esp_grid", "vdw_grid", "grid", "surface_points",
                    "grid_points", "points"),
    "esp": ("esp", "esp_values", "potential", "esp_ref", "V", "vpot"),
    "N": ("N", "n_atoms", "natoms", "num_atoms"),
    "n_grid": ("n_grid", "ngrid", "n_points", "num_grid", "n_esp"),
    "mono": ("mono", "monopoles", "charges", "atomic_charges", "partial_charges",
             "esp_charges"),
    "Dxyz": ("Dxyz", "dipole", "dipoles", "dipole_vector", "D_xyz"),
    "com": ("com", "center_of_mass", "centre_of_mass", "dipole_origin"),
    "Qnet": ("total_charge", "net_charge", "charge"),
    "name": ("name", "names", "mol_name", "id"),
}
ROLE_TEXT = {
    "R": "atom positions (Å)", "Z": "atomic numbers", "vdw_surface": "ESP grid points (Å)",
    "esp": "ESP values (Hartree/e)", "N": "atoms per molecule",
    "n_grid": "grid points per molecule", "mono": "reference atomic charges (e)",
    "Dxyz": "dipole vector (e·Bohr)", "com": "dipole origin (Å)", "Qnet": "net charge (e)",
    "name": "molecule names",
}
#: |coordinate| from which a grid row counts as a padding sentinel (Å).
SENTINEL = 999.0


class _Ctx:
    def __init__(self, path: Path, rep: Report):
        self.path, self.rep = path, rep

    def err(self, field, msg, fix=None, mol=None) -> DataError:
        where = f"{self.path}: field '{field}'"
        if mol is not None:
            where += f" of molecule {int(mol)}"
        return DataError(f"{where} {msg}" + (f" {fix}" if fix else ""))


def _find(files: list[str], role: str) -> tuple[str | None, list[str]]:
    found = []
    lower = {f.lower(): f for f in files}
    for key in ALIASES[role]:
        if key in files:
            found.append(key)
        elif len(key) > 1 and key.lower() in lower and lower[key.lower()] not in found:
            found.append(lower[key.lower()])
    return (found[0] if found else None), found[1:]


def detect_npz_kind(path) -> str:
    """``"canonical"`` (dcmnet tag) or ``"harmonize"`` (anything with positions, atomic
    numbers, ESP and grid under some accepted name).

    Raises:
        DataError: unreadable file, a foreign ``format`` tag, or required roles missing.
    """
    path = Path(path)
    with open_npz(path) as z:
        files = list(z.files)
        if "format" in files:
            try:
                tag = str(z["format"])
            except ValueError:
                tag = "<pickled object>"
            if tag == FORMAT_TAG:
                return "canonical"
            raise DataError(f"{path}: 'format' key is {tag!r}; this dcmnet reads canonical "
                            f"files tagged {FORMAT_TAG!r} (written by a different version?).")
    missing = [r for r in ("R", "Z", "esp", "vdw_surface") if _find(files, r)[0] is None]
    if missing:
        raise DataError(
            f"{path}: unknown NPZ layout (keys {sorted(files)}): no "
            + ", ".join(f"{ROLE_TEXT[r]} ({'/'.join(ALIASES[r][:4])}…)" for r in missing)
            + f". Expected a canonical dcmnet dataset (key 'format' = {FORMAT_TAG!r}) or an "
            "mmml-style file with 'R', 'Z', 'esp' and 'vdw_surface' (or their aliases, see "
            "docs/data.md).")
    return "harmonize"


def read_npz(path, options: ReadOptions | None = None) -> tuple[Dataset, list[str]]:
    """Read any supported NPZ (canonical, mmml-style, or with aliases/other shapes).

    Args:
        path: the ``.npz`` file (never unpickled).
        options: unit overrides (NPZ files are taken to be in Å and Hartree/e).
    Returns:
        ``(dataset, report_lines)``; the report names each translation and decision.
    Raises:
        DataError: pickled/object arrays, unknown layout, inconsistent shapes/counts,
            unknown element symbols, NaN/Inf in real entries; the message names file,
            field, molecule and the fix.
    """
    options = options or ReadOptions()
    path = Path(path)
    kind = detect_npz_kind(path)
    if kind == "canonical":
        ds = Dataset.load(path)
        lines = [f"{path.name}: canonical dcmnet dataset, {len(ds)} molecules, "
                 f"{int(ds.n_atoms.min())}..{int(ds.n_atoms.max())} atoms, "
                 f"{int(ds.n_grid.min())}..{int(ds.n_grid.max())} grid points; Å, e, "
                 "Hartree/e."]
        if options.length_unit not in (None, "angstrom") or options.esp_unit not in (
                None, "hartree"):
            raise DataError(f"{path}: a canonical dcmnet dataset is always in Å and "
                            "Hartree/e; drop --length-unit/--esp-unit for it.")
        return ds, lines
    rep = Report(path)
    with open_npz(path) as z:
        files = list(z.files)
        raw, used = {}, set()
        for role in ALIASES:
            key, others = _find(files, role)
            if key is None:
                continue
            raw[role] = read_array(z, key, path)
            used.add(key)
            if key != role and not (role == "vdw_surface" and key == "esp_grid") \
                    and not (role == "Qnet"):
                rep.note(f"field '{key}' read as '{role}' ({ROLE_TEXT[role]}).")
            elif role == "vdw_surface" and key == "esp_grid":
                rep.note("ESP points read from 'esp_grid' (alias of 'vdw_surface').")
            for o in others:
                rep.note(f"field '{o}' is another name for {ROLE_TEXT[role]}; used '{key}', "
                         f"ignored '{o}'.")
                used.add(o)
            if role == "Qnet":
                raw["_Qnet_key"] = key
        for k in ("D", "Q"):
            if k in files:
                raw["_" + k] = read_array(z, k, path)
                used.add(k)
        extra = [k for k in files if k not in used]
    if extra:
        rep.note(f"ignored extra key(s) {sorted(extra)} (not used by dcmnet).")
    ctx = _Ctx(path, rep)
    mm = _harmonize(raw, ctx, options)
    n_notes = len(rep.lines)
    lines_holder: list[str] = []

    def note(line):
        lines_holder.append(f"{rep.tag}: {line}")

    def warn(line):
        import warnings
        lines_holder.append(f"{rep.tag}: WARNING: {line}")
        warnings.warn(f"{path}: {line}", UserWarning, stacklevel=4)

    ds = _build(path, mm, note, warn)
    summary = lines_holder.pop()  # mmml's summary line comes last
    translated = n_notes > 0 and any("read as" in ln or "reshaped" in ln or "interpreted" in ln
                                     or "ragged" in ln or "single molecule" in ln
                                     for ln in rep.lines)
    head = (f"{rep.tag}: detected NPZ with other field names/shapes, harmonized to the "
            "mmml-style layout; lengths Å, ESP Hartree/e." if translated else
            f"{rep.tag}: detected mmml-style padded NPZ; lengths Å, ESP Hartree/e.")
    return ds, [head, summary] + rep.lines + lines_holder


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
        ctx.rep.note(f"'{key}' of shape {arr.shape} reshaped from flat storage to {target}.")
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


def _harmonize(raw: dict, ctx: _Ctx, options: ReadOptions) -> dict:
    """Translate aliased/reshaped arrays to the strict mmml layout understood by ``_build``."""
    rep = ctx.rep
    Z = _z_from(raw["Z"], ctx)
    R = _numeric(ctx, "R", raw["R"])
    esp = _numeric(ctx, "esp", raw["esp"])
    grid = _numeric(ctx, "vdw_surface", raw["vdw_surface"])
    out: dict = {}
    N_raw = _counts(ctx, raw["N"], "N") if "N" in raw else None
    G_raw = _counts(ctx, raw["n_grid"], "n_grid") if "n_grid" in raw else None

    # ------------------------------------------------------------ layout
    if Z.ndim == 2:
        n, A = Z.shape
    elif Z.ndim == 1 and N_raw is not None and len(N_raw) >= 1 and \
            N_raw.sum() == Z.shape[0] and (len(N_raw) > 1 or R.ndim == 2):
        n, A = len(N_raw), int(N_raw.max())
        rep.note(f"ragged flat layout: {n} molecules with per-molecule counts "
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
        rep.note("single molecule without a leading molecule axis; one added.")
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

    # ------------------------------------------------------------ units
    lf = resolve_length("angstrom", options, rep)
    ef = resolve_esp("hartree", options, rep)
    R = R.astype(np.float64) * lf
    grid = grid.astype(np.float64)
    esp = esp.astype(np.float64) * ef

    # ------------------------------------------------------------ grid padding
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
    real_atoms = Z > 0
    if "_Q" in raw:
        _interpret_Q(ctx, raw["_Q"], n, A, real_atoms, out)
    if "Qnet" in raw:
        key = raw["_Qnet_key"]
        q = _numeric(ctx, key, np.asarray(raw["Qnet"], dtype=np.float64).reshape(-1))
        if q.size == 1 and n > 1:
            q = np.full(n, float(q[0]))
        if q.size == n * A and q.size != n:
            # per-atom values under a net-charge name: atomic charges, like a (n, A) 'Q'
            if "mono" in out:
                rep.warn(f"'{key}' holds one value per atom (atomic charges?) and 'mono' "
                         "exists; ignored.")
            else:
                out["mono"] = q.reshape(n, A)
                rep.warn(f"'{key}' holds one value per atom: interpreted as atomic charges and "
                         "used as 'mono'; store reference atomic charges under 'mono'.")
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

    # ------------------------------------------------------------ D by shape
    if "Dxyz" in raw:
        out["Dxyz"] = _numeric(ctx, "Dxyz", np.asarray(raw["Dxyz"]))
    if "_D" in raw:
        _interpret_D(ctx, raw["_D"], n, A, out, R, Z)
    return out


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
        rep.warn(f"'Q' of shape {Q.shape} is ambiguous ({' or '.join(cand)}); interpreted as "
                 f"{_Q_TEXT[choice]} from its content. Use distinct keys to be sure.")
    how = "" if shaped else " (from flat storage)"
    if choice == "net":
        out["Q"] = Q.reshape(n)
        rep.note(f"'Q' {Q.shape} interpreted as the net charge per molecule{how}.")
    elif choice == "atomic":
        q = Q.reshape(n, A)
        if "mono" in out:
            rep.warn(f"'Q' {Q.shape} holds atomic charges but 'mono' exists; 'Q' ignored.")
        else:
            out["mono"] = q
            rep.warn(f"'Q' {Q.shape} interpreted as atomic charges{how} and used as 'mono'; "
                     "store reference atomic charges under 'mono'.")
    elif choice == "quad6":
        rep.extras["quadrupole_components"] = Q.reshape(n, 6)
        rep.note(f"'Q' {Q.shape} interpreted as 6 quadrupole components per molecule{how} "
                 f"(molecule 0: {np.array2string(Q.reshape(n, 6)[0], precision=4)}); kept as "
                 "extra information (not used for training).")
    else:
        rep.extras["quadrupole_tensor"] = Q.reshape(n, 3, 3)
        t = Q.reshape(n, 3, 3)[0]
        rep.note(f"'Q' {Q.shape} interpreted as a 3×3 quadrupole tensor per molecule{how} "
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
        rep.note(f"'D' {D.shape} interpreted as the dipole magnitude per molecule{how} "
                 f"(range {np.nanmin(mag):.4g}..{np.nanmax(mag):.4g}, unit not stated); kept "
                 "as extra information (a vector is needed for the dipole loss).")
        return
    if D.shape == (n, 3) or (D.ndim == 1 and D.size == 3 * n):
        vec = D.reshape(n, 3)
        if "Dxyz" in out:
            rep.note(f"'D' {D.shape} interpreted as the molecular dipole vector; 'Dxyz' "
                     "present and used instead.")
            return
        unit, ratio = _guess_dipole_unit(vec, out, R, Z)
        if unit == "debye":
            vec = vec * DEBYE_TO_EBOHR
        elif unit == "eangstrom":
            vec = vec / EBOHR_TO_EANGSTROM
        out["Dxyz"] = vec
        if ratio is None:
            rep.note(f"'D' {D.shape} interpreted as the molecular dipole vector{how}, assumed "
                     "in e·Bohr like 'Dxyz' (no reference charges to check the unit).")
        else:
            label = {"ebohr": "e·Bohr", "eangstrom": "e·Å", "debye": "Debye"}[unit]
            rep.note(f"'D' {D.shape} interpreted as the molecular dipole vector{how}, in "
                     f"{label} (judged from the dipole of 'mono': ratio {ratio:.2f} in that "
                     "unit).")
        return
    if D.shape == (n, A, 3) or (D.ndim <= 2 and D.size == 3 * n * A):
        rep.extras["atomic_dipoles"] = D.reshape(n, A, 3)
        ad = D.reshape(n, A, 3)
        rep.note(f"'D' {D.shape} interpreted as atom-centred dipoles{how} (largest |d| "
                 f"{np.nanmax(np.linalg.norm(ad, axis=-1)):.4g}); kept as extra information "
                 "(not used for training).")
        return
    raise ctx.err("D", f"has shape {D.shape}: neither a magnitude ({n},), a molecular dipole "
                  f"({n}, 3) nor atom-centred dipoles ({n}, {A}, 3).",
                  "Fix its shape or rename the key.")


def _guess_dipole_unit(vec: np.ndarray, out: dict, R, Z) -> tuple[str, float | None]:
    """Unit of a dipole-vector field, judged against the dipole of ``mono`` (neutral only)."""
    from ase.data import atomic_masses
    if "mono" not in out:
        return "ebohr", None
    mono = np.nan_to_num(np.asarray(out["mono"], float))
    real = Z > 0
    m = np.where(real, atomic_masses[np.clip(Z, 0, None)], 0.0)
    com = (m[..., None] * R).sum(1) / np.maximum(m.sum(1), 1e-12)[:, None]
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


__all__ = ["read_npz", "detect_npz_kind", "ALIASES", "SENTINEL"]
