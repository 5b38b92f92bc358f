"""HDF5 in a SPICE-like layout: one group per molecule, conformers along the first axis.

SPICE (Eastman et al., Sci. Data 10, 11 (2023); ``openmm/spice-dataset`` downloader) stores
one top-level group per molecule with ``atomic_numbers`` (N,) int16, ``conformations``
(M, N, 3) in Bohr (attribute ``units = "bohr"``), ``smiles``, ``mbis_charges`` (M, N, 1) e,
``scf_dipole`` (M, 3) e·Bohr, energies, gradients, ... SPICE itself holds **no ESP grid**.
dcmnet reads the same layout extended by ESP datasets ("SPICE-like ESP layout", see
``docs/data.md``):

===================  ============  ===========================  ==========================
dataset              shape         ``units`` attribute           meaning
===================  ============  ===========================  ==========================
``atomic_numbers``   (N,)          –                            elements (required)
``conformations``    (M, N, 3)     ``bohr`` (default) / ``angstrom``  positions (required)
``esp_grid``         (M, G, 3)     as ``conformations`` unless given  ESP points (required)
``esp``              (M, G)        ``hartree/elementary_charge`` (default), ``kcal/mol``,
                                   ``volt`` …                   ESP values (required)
``n_grid``           (M,)          –                            real points per conformer
                                                                (rows beyond are padding)
``total_charge``     () or (M,)    ``elementary_charge``        net charge
``mbis_charges``     (M, N[, 1])   ``elementary_charge``        reference charges → mono
``scf_dipole``       (M, 3)        ``elementary_charge*bohr``   dipole (origin: see below)
``smiles``           (1,) str      –                            formal charges → net charge
===================  ============  ===========================  ==========================

Net charge: ``total_charge`` (or ``charge``), else the sum of the SMILES formal charges,
else the rounded sum of ``mbis_charges``, else ``--net-charge``, else estimated from the
ESP. Groups without ESP datasets (plain SPICE groups) are skipped with a note; a file
without any is refused. The dipole's origin is not stored: it is taken to be the centre of
mass, with a warning for ions. Groups may be nested one level (``subset/molecule``).

Needs ``h5py`` (``pip install 'dcmnet[hdf5]'``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.assemble import build_dataset
from dcmnet.data.readers.options import ReadOptions
from dcmnet.data.readers.chemistry import formula, molecules_of, net_charge_from_esp
from dcmnet.data.readers.file_units import (
    ESP_UNITS,
    LENGTH_UNITS,
    UNIT_LABEL,
    esp_unit,
    length_unit,
)
from dcmnet.data.readers.report import ReadReport, err
from dcmnet.errors import DataError, OptionalDependencyError
from dcmnet.fileio import atomic_path
from dcmnet.units import ANGSTROM_TO_BOHR, EBOHR_TO_EANGSTROM

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ESP_KEYS = ("esp", "esp_values")
_GRID_KEYS = ("esp_grid", "grid", "esp_points")


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OptionalDependencyError(
            "reading HDF5 files needs h5py: pip install 'dcmnet[hdf5]' (or pip install "
            "h5py).") from exc
    return h5py


def _attr_unit(ds, default: str, kind: str, path, name: str) -> str:
    u = ds.attrs.get("units", None)
    if u is None:
        return default
    if isinstance(u, bytes):
        u = u.decode()
    u = str(u)
    try:
        return length_unit(u) if kind == "length" else esp_unit(u)
    except DataError:
        raise err(path, f"dataset {name} has units {u!r}, which dcmnet does not know.",
                  f"Use one of {sorted(LENGTH_UNITS) if kind == 'length' else sorted(ESP_UNITS)}"
                  ".") from None


def _formal_charge_from_smiles(smiles: str) -> int | None:
    try:
        from rdkit import Chem
        m = Chem.MolFromSmiles(smiles, sanitize=False)
        if m is not None:
            return int(sum(a.GetFormalCharge() for a in m.GetAtoms()))
    except ImportError:
        pass
    # fallback: charges written inside brackets, e.g. [NH4+], [O-], [Fe+2], [O--]
    total = 0
    for br in re.findall(r"\[([^\]]+)\]", smiles):
        m = re.search(r"([+-]+)(\d*)$", br.split(":")[0])
        if m:
            sign = 1 if m.group(1)[0] == "+" else -1
            total += sign * (int(m.group(2)) if m.group(2) else len(m.group(1)))
    return total


class _Finding(NamedTuple):
    """A note or warning shared by the groups of a file (reported once, in sorted order)."""

    text: str
    warning: bool = False
    ending: str = "."

    def order(self) -> str:
        """Sort key: notes alphabetically, warnings with them (as before, ``WARN:`` text)."""
        return ("WARN:" if self.warning else "") + self.text


def _groups(f, h5py):
    out = []
    for name in sorted(f.keys()):
        obj = f[name]
        if isinstance(obj, h5py.Group):
            if "atomic_numbers" in obj:
                out.append((name, obj))
            else:
                out += [(f"{name}/{k}", obj[k]) for k in sorted(obj.keys())
                        if isinstance(obj[k], h5py.Group) and "atomic_numbers" in obj[k]]
    return out


def read_hdf5(path, options: ReadOptions | None = None) -> tuple[Dataset, ReadReport]:
    """Read a SPICE-like HDF5 file with ESP datasets (see the module docstring).

    Returns:
        ``(dataset, report)``: one molecule per conformer; Å, e, Hartree/e.
    Raises:
        OptionalDependencyError: h5py is missing.
        DataError: not HDF5, no group with ESP data, shapes that disagree, NaN values.
    """
    h5py = _h5py()
    options = options or ReadOptions()
    path = Path(path)
    rep = ReadReport(path, "hdf5")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise err(path, f"is not a readable HDF5 file ({exc}).", "Check the file.") from None
    mols, skipped, notes = [], [], set()
    with f:
        groups = _groups(f, h5py)
        if not groups:
            raise err(path, "holds no group with 'atomic_numbers' (SPICE-like layout: one "
                      "group per molecule).", "See docs/data.md for the layout.")
        for gname, g in groups:
            got = _group_molecules(g, gname, path, options, rep, notes, len(mols))
            if got is None:
                skipped.append(gname)
            else:
                mols.extend(got)
    if not mols:
        raise err(path, f"none of its {len(skipped)} molecule groups holds ESP data "
                  f"('{_ESP_KEYS[0]}' + '{_GRID_KEYS[0]}'); the SPICE dataset itself has no "
                  "ESP grid.", "Add 'esp_grid' (M, G, 3) and 'esp' (M, G) to each group; see "
                  "docs/data.md, 'SPICE-like ESP layout'.")
    rep.note(f"HDF5, SPICE-like layout: {len(groups) - len(skipped)} molecule group(s), "
             f"{len(mols)} conformations.")
    if skipped:
        rep.note(f"skipped {len(skipped)} group(s) without ESP data: "
                 f"{', '.join(skipped[:5])}{' …' if len(skipped) > 5 else ''}.")
    for n in sorted(notes, key=_Finding.order):
        if n.warning:
            rep.warn(n.text + n.ending)
        else:
            rep.note(n.text + n.ending)
    if not any(m["mono"] is not None for m in mols):
        rep.warn("no 'mbis_charges': no reference charges, the charge loss and charge "
                 "metrics are off for these molecules.", field="mbis_charges")
    rep.note(f"formulas: {', '.join(sorted({formula(m['Z']) for m in mols}))}.")
    return build_dataset(mols, path, rep), rep



def _group_molecules(g, gname, path, options, rep, notes, n_before: int):
    """The conformations of one SPICE-like group as molecule dicts for
    :func:`~dcmnet.data.readers.base.build_dataset`; ``None`` for a group without ESP data.
    Units: the group's ``units`` attributes unless ``options`` override them."""
    ek = next((k for k in _ESP_KEYS if k in g), None)
    gk = next((k for k in _GRID_KEYS if k in g), None)
    if ek is None or gk is None:
        return None
    if "conformations" not in g:
        raise err(path, f"group {gname!r} has no 'conformations'.",
                  "Store positions as conformations (M, N, 3).")
    Z = np.asarray(g["atomic_numbers"][()], int).reshape(-1)
    Xraw = np.asarray(g["conformations"][()], float)
    if Xraw.ndim == 2:
        Xraw = Xraw[None]
    M = Xraw.shape[0]
    if Xraw.shape[1:] != (len(Z), 3):
        raise err(path, f"group {gname!r}: 'conformations' has shape {Xraw.shape}, "
                  f"expected (M, {len(Z)}, 3).", "Match 'atomic_numbers'.")
    lu = _attr_unit(g["conformations"], "bohr", "length", path, f"{gname}/conformations")
    gu = _attr_unit(g[gk], lu, "length", path, f"{gname}/{gk}")
    eu = _attr_unit(g[ek], "hartree", "esp", path, f"{gname}/{ek}")
    if options.length_unit is not None:
        lu = gu = options.length_unit
    if options.esp_unit is not None:
        eu = options.esp_unit
    notes.add(_Finding(f"positions {UNIT_LABEL[lu]}, grid {UNIT_LABEL[gu]}, ESP "
                       f"{UNIT_LABEL[eu]}"))
    grid = np.asarray(g[gk][()], float)
    esp = np.asarray(g[ek][()], float)
    if grid.ndim == 2:
        grid = grid[None]
    if esp.ndim == 1:
        esp = esp[None]
    if grid.shape[0] != M or esp.shape[0] != M or grid.shape[1] != esp.shape[1] \
            or grid.shape[2:] != (3,):
        raise err(path, f"group {gname!r}: '{gk}' {grid.shape} and '{ek}' {esp.shape} "
                  f"do not match {M} conformations (expected (M, G, 3) and (M, G)).",
                  "Store one row of points and values per conformation.")
    ng = (np.asarray(g["n_grid"][()], int).reshape(-1) if "n_grid" in g
          else np.full(M, grid.shape[1]))
    if ng.shape != (M,) or (ng < 0).any() or (ng > grid.shape[1]).any():
        raise err(path, f"group {gname!r}: 'n_grid' must hold {M} counts in "
                  f"0..{grid.shape[1]}.", "Fix 'n_grid'.")
    X = Xraw * LENGTH_UNITS[lu]
    grid = grid * LENGTH_UNITS[gu]
    esp = esp * ESP_UNITS[eu]
    qfile = None
    for key in ("total_charge", "charge", "net_charge"):
        if key in g:
            qfile = np.asarray(g[key][()], float).reshape(-1)
            qfile = np.broadcast_to(qfile, (M,)) if qfile.size == 1 else qfile
            notes.add(_Finding(f"net charge from '{key}'"))
            break
    if qfile is None and "smiles" in g:
        s = g["smiles"][()]
        s = s[0] if np.ndim(s) else s
        s = s.decode() if isinstance(s, bytes) else str(s)
        fc = _formal_charge_from_smiles(s)
        if fc is not None:
            qfile = np.full(M, float(fc))
            notes.add(_Finding("net charge from the SMILES formal charges"))
    return _conformers(g, gname, path, options, rep, notes, n_before, Z, X, grid, esp, ng,
                       qfile, M)


def _conformers(g, gname, path, options, rep, notes, n_before, Z, X, grid, esp, ng, qfile, M):
    """One molecule dict per conformation of group ``gname``: reference charges and dipoles,
    the net charge (file, rounded 'mbis_charges' sum, --net-charge, or the ESP)."""
    mols = []
    mono = None
    empty = [k for k in ("mbis_charges", "scf_dipole")
             if k in g and np.asarray(g[k][()]).size == 0]
    for k in empty:
        notes.add(_Finding(f"group {gname!r}: '{k}' is empty (shape "
                           f"{np.asarray(g[k][()]).shape}); treated as missing", True))
    if "mbis_charges" in g and "mbis_charges" not in empty:
        mq = np.asarray(g["mbis_charges"][()], float)
        if mq.size % (M * len(Z)):
            raise err(path, f"group {gname!r}: 'mbis_charges' has shape {mq.shape}, "
                      f"expected (M, {len(Z)}) or (M, {len(Z)}, 1) for {M} "
                      "conformations.", "Fix or delete 'mbis_charges'.")
        mono = mq.reshape(M, len(Z), -1)[..., 0]
        notes.add(_Finding("'mbis_charges' used as reference charges ('mono')"))
    dip = None
    if "scf_dipole" in g and "scf_dipole" not in empty:
        dip = np.asarray(g["scf_dipole"][()], float).reshape(M, 3) * EBOHR_TO_EANGSTROM
        notes.add(_Finding("'scf_dipole' (e·Bohr) used as dipole, origin taken as the "
                           "centre of mass"))
    for c in range(M):
        k = int(ng[c])
        if qfile is not None:
            q = float(qfile[c])
        elif mono is not None and abs(mono[c].sum() - round(mono[c].sum())) < 0.1:
            q = float(round(mono[c].sum()))
            notes.add(_Finding("net charge from the rounded sum of 'mbis_charges'"))
        elif options.net_charge is not None:
            q = float(options.net_charge)
            notes.add(_Finding("net charge from --net-charge"))
        else:
            q = net_charge_from_esp(Z, X[c], grid[c, :k], esp[c, :k], path, rep,
                                    n_before + len(mols), f"group {gname!r}")
        if abs(q - round(q)) > 1e-3:
            raise err(path, f"group {gname!r}: net charge {q} of conformation {c} "
                      "is not an integer.", "Give the total charge in e.")
        m = {"Z": Z, "R": X[c], "grid": grid[c, :k], "esp": esp[c, :k],
             "net_charge": float(round(q)) + 0.0, "name": gname,
             "mono": None if mono is None else mono[c],
             "dipole": None if dip is None else dip[c]}
        if dip is not None and m["net_charge"] != 0:
            notes.add(_Finding("dipoles of ions have an unknown origin in this layout", True,
                               "; assumed to be the centre of mass."))
        mols.append(m)
    return mols


def write_hdf5(data, path) -> Path:
    """Write molecules in the SPICE-like ESP layout (Bohr, Hartree/e; one group per name).

    Conformers that share a ``name`` and atoms go into one group (padded ``esp_grid``/``esp``
    with ``n_grid``); ``mbis_charges`` and ``scf_dipole`` are written when every conformer
    of the group has them.

    Returns:
        The path written.
    Raises:
        OptionalDependencyError: h5py is missing.
    """
    h5py = _h5py()
    groups: dict[str, list[dict]] = {}
    for m in molecules_of(data):
        key = str(m.get("name", "mol")).replace("/", "_")
        while key in groups and (len(groups[key][0]["Z"]) != len(m["Z"]) or
                                 (np.asarray(groups[key][0]["Z"]) != np.asarray(m["Z"])).any()):
            key += "_"
        groups.setdefault(key, []).append(m)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for key, ms in groups.items():
                g = f.create_group(key)
                M, G = len(ms), max(len(m["esp"]) for m in ms)
                g.create_dataset("atomic_numbers", data=np.asarray(ms[0]["Z"], np.int16))
                d = g.create_dataset("conformations", data=np.stack(
                    [np.asarray(m["R"], float) * ANGSTROM_TO_BOHR for m in ms]))
                d.attrs["units"] = "bohr"
                grid, esp = np.zeros((M, G, 3)), np.zeros((M, G))
                for c, m in enumerate(ms):
                    k = len(m["esp"])
                    grid[c, :k] = np.asarray(m["grid"], float) * ANGSTROM_TO_BOHR
                    esp[c, :k] = m["esp"]
                d = g.create_dataset("esp_grid", data=grid)
                d.attrs["units"] = "bohr"
                d = g.create_dataset("esp", data=esp)
                d.attrs["units"] = "hartree/elementary_charge"
                g.create_dataset("n_grid", data=np.array([len(m["esp"]) for m in ms], np.int32))
                d = g.create_dataset("total_charge", data=np.array(
                    [float(m.get("net_charge", 0.0)) for m in ms]))
                d.attrs["units"] = "elementary_charge"
                if all(m.get("mono") is not None for m in ms):
                    d = g.create_dataset("mbis_charges", data=np.stack(
                        [np.asarray(m["mono"], float) for m in ms])[..., None])
                    d.attrs["units"] = "elementary_charge"
                if all(m.get("dipole") is not None for m in ms):
                    d = g.create_dataset("scf_dipole", data=np.stack(
                        [np.asarray(m["dipole"], float) / EBOHR_TO_EANGSTROM for m in ms]))
                    d.attrs["units"] = "elementary_charge*bohr"

    return path


__all__ = ["read_hdf5", "write_hdf5", "HDF5_MAGIC"]
