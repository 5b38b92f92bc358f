"""The NPZ reader: any reasonable NumPy archive of ESP data → the canonical dataset.

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

from dcmnet.data.dataset import FORMAT_TAG, Dataset, open_npz, read_array
from dcmnet.data.mmml_build import _build
from dcmnet.data.readers.options import ReadOptions
from dcmnet.data.readers.npz_layout import _Ctx, harmonize
from dcmnet.data.readers.report import ReadReport
from dcmnet.errors import DataError

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


def read_npz(path, options: ReadOptions | None = None) -> tuple[Dataset, ReadReport]:
    """Read any supported NPZ (canonical, mmml-style, or with aliases/other shapes).

    Args:
        path: the ``.npz`` file (never unpickled).
        options: unit overrides (NPZ files are taken to be in Å and Hartree/e).
    Returns:
        ``(dataset, report)``; the report names each translation and decision;
        ``report.canonical`` tells a canonical dcmnet file.
    Raises:
        DataError: pickled/object arrays, unknown layout, inconsistent shapes/counts,
            unknown element symbols, NaN/Inf in real entries; the message names file,
            field, molecule and the fix.
    """
    options = options or ReadOptions()
    path = Path(path)
    if detect_npz_kind(path) == "canonical":
        return _read_canonical(path, options)
    ctx = _Ctx(path, ReadReport(path, "npz"))
    raw = _read_roles(path, ctx)
    mm = harmonize(raw, ctx, options)
    built = ReadReport(path, "npz")
    ds = _build(path, mm, built.note, lambda line: built.warn(line, stacklevel=4))
    summary = built.entries.pop()  # mmml's summary line comes last
    rep = ReadReport(path, "npz")
    rep.note("detected NPZ with other field names/shapes, harmonized to the mmml-style "
             "layout; lengths Å, ESP Hartree/e." if ctx.translation else
             "detected mmml-style padded NPZ; lengths Å, ESP Hartree/e.")
    rep.entries.append(summary)
    rep.add(ctx.rep)
    rep.add(built)
    return ds, rep


def _read_canonical(path: Path, options: ReadOptions) -> tuple[Dataset, ReadReport]:
    """A canonical dcmnet file: loaded as it is (refusing unit overrides)."""
    ds = Dataset.load(path)
    rep = ReadReport(path, "npz", canonical=True)
    rep.note(f"canonical dcmnet dataset, {len(ds)} molecules, "
             f"{int(ds.n_atoms.min())}..{int(ds.n_atoms.max())} atoms, "
             f"{int(ds.n_grid.min())}..{int(ds.n_grid.max())} grid points; Å, e, Hartree/e.")
    if options.length_unit not in (None, "angstrom") or options.esp_unit not in (
            None, "hartree"):
        raise DataError(f"{path}: a canonical dcmnet dataset is always in Å and "
                        "Hartree/e; drop --length-unit/--esp-unit for it.")
    return ds, rep


def _read_roles(path: Path, ctx: _Ctx) -> dict:
    """The arrays of each role (first accepted key wins), plus ``_D``/``_Q``/``_Qnet_key``;
    every renamed, duplicate or ignored key goes to the report."""
    rep = ctx.rep
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
                ctx.translated(f"field '{key}' read as '{role}' ({ROLE_TEXT[role]}).")
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
    return raw


__all__ = ["read_npz", "detect_npz_kind", "ALIASES"]
