"""Prediction for new structures: distributed charges, dipoles and ESPs a simulation can use.

``dcmnet predict EXP --structures traj.xyz --out DIR`` and :class:`Predictor` read any
structure file ASE reads (xyz, extxyz, sdf, pdb, ...), run DCM-net in padded batches (the
same :func:`dcmnet.loss.predict` the training and the evaluation use) and return per frame:

* ``charges`` (N, n_dcm) e and absolute ``positions`` (N, n_dcm, 3) Å of the charge sites;
* ``atom_charges`` (N,) e, the sum over each atom's sites (exactly the net charge in total);
* ``dipole`` (3,) e·Å about the centre of mass (``dipole_debye`` in D);
* optionally the ESP (Hartree/e) on generated vdW-shell points
  (:func:`dcmnet.surface.vdw_shell_points`) or on points given by the caller.

Net charge of a structure: the ``charge`` argument if given, else ``atoms.info`` keys
``charge``, ``net_charge`` or ``total_charge``, else the rounded sum of ASE's initial
charges (formal charges from an SDF file), else 0.

A structure of several disconnected fragments (covalent connectivity) keeps each
fragment's own net charge when it is known (``fragment_charges`` argument /
``--fragment-charges``, ``atoms.info["fragment_charges"]`` or the formal charges of an
SDF/MOL file; :mod:`dcmnet.fragments`); otherwise a warning says that charge can move
between its fragments.

Frames are grouped by their atom count padded to a multiple of 8; each group uses one grid
padding (its largest grid rounded up to 128 points), so a trajectory of one molecule
compiles once.
"""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from dcmnet.data.dataset import segment_offsets
from dcmnet.errors import DataError
from dcmnet.units import EANGSTROM_TO_DEBYE

__all__ = ["Predictor", "PredictionResult", "read_structures", "structure_charge",
           "write_predictions", "OUTPUT_FORMATS"]

#: Output files of :func:`write_predictions`.
OUTPUT_FORMATS = ("extxyz", "json", "csv", "dcm")


def read_structures(paths, index: str = ":") -> list:
    """Read structures from files with ASE (format from the file name, as ``ase.io.read``).

    Args:
        paths: one path or a list of paths (xyz, extxyz, sdf, pdb, any ASE format).
        index: ASE frame selection applied to every file (default all frames).
    Returns:
        list of ``ase.Atoms`` (in file order, each tagged ``info["source"]``).
    Raises:
        DataError: a missing or unreadable file, or a file with no atoms.
    """
    from ase.io import read

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise DataError(f"{p}: no such structure file.")
        try:
            got = read(str(p), index=index)
        except Exception as exc:  # ASE raises many types
            raise DataError(f"{p}: ASE could not read it ({type(exc).__name__}: {exc}); give "
                            "a file ASE reads (xyz, extxyz, sdf, pdb, ...).") from exc
        got = got if isinstance(got, list) else [got]
        if not got or any(len(a) == 0 for a in got):
            raise DataError(f"{p}: a structure without atoms.")
        from dcmnet.data.readers.base import mol_formal_charges
        formal = mol_formal_charges(p)
        per_atom = _sdf_atom_formal_charges(p) if formal is not None else None
        for k, a in enumerate(got):
            a.info.setdefault("source", f"{p}@{k}")
            if formal is not None and k < len(formal) and "charge" not in a.info:
                a.info["charge"] = float(formal[k])
                a.info["charge_source"] = "formal charges (M  CHG)"
            if per_atom is not None and k < len(per_atom) and len(per_atom[k]) == len(a):
                a.arrays["formal_charges"] = per_atom[k]
        frames.extend(got)
    if not frames:
        raise DataError("no structures given.")
    return frames


def _sdf_atom_formal_charges(path) -> list[np.ndarray] | None:
    """Per-atom formal charges (e) of every record of an SDF/MOL file (RDKit, file atom
    order, hydrogens kept); None without RDKit. Records RDKit cannot read give an empty
    array (:func:`dcmnet.data.readers.base.mol_formal_charges` has already refused them)."""
    try:
        from rdkit import Chem
    except ImportError:  # pragma: no cover - optional extra
        return None
    return [np.zeros(0) if m is None else
            np.array([a.GetFormalCharge() for a in m.GetAtoms()], float)
            for m in Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)]


def structure_charge(atoms, charge: float | None = None, strict: bool = False) -> float:
    """Net charge (e) of a structure: ``charge``, else ``atoms.info`` ``charge`` /
    ``net_charge`` / ``total_charge`` (SDF/MOL files read by :func:`read_structures` carry
    the sum of their ``M  CHG`` formal charges there), else the rounded sum of the initial
    charges, else 0.

    Args:
        strict: when no charge is known and charge 0 gives an odd electron count (a
            radical, almost always a missing charge), raise instead of returning 0.
    Raises:
        DataError: (``strict``) odd electron count with no known net charge.
    """
    if charge is not None:
        return float(charge)
    for key in ("charge", "net_charge", "total_charge"):
        if key in atoms.info:
            return float(atoms.info[key])
    q = atoms.get_initial_charges()
    if q.size and np.any(q != 0):
        return float(np.round(q.sum()))
    n_elec = int(np.sum(atoms.get_atomic_numbers()))
    if strict and n_elec % 2:
        src = atoms.info.get("source", "a structure")
        raise DataError(f"{src} ({atoms.get_chemical_formula()}): no net charge is given and "
                        f"charge 0 leaves {n_elec} electrons (odd: a radical). Give the net "
                        "charge: --charge Q, 'charge=Q' in the extxyz comment line, or M  CHG "
                        "formal charges in an SDF/MOL file.")
    return 0.0


@dataclasses.dataclass
class PredictionResult:
    """Predictions for F structures, stored ragged (flat per-atom arrays + counts).

    Attributes:
        n_atoms: (F,) atoms per frame.
        Z: (sum N,) atomic numbers; ``R``: (sum N, 3) positions, Å.
        net_charge: (F,) e.
        charges: (sum N, n_dcm) e; ``positions``: (sum N, n_dcm, 3) absolute, Å.
        dipole: (F, 3) e·Å about the centre of mass; ``com``: (F, 3) Å.
        n_grid: (F,) ESP points per frame (0 without ESP); ``grid``: (sum G, 3) Å;
            ``esp``: (sum G,) Hartree/e.
        seconds: wall time of prediction (with compilation and grid generation), s.
        source: the model's experiment folder (or a description).
    """

    n_atoms: np.ndarray
    Z: np.ndarray
    R: np.ndarray
    net_charge: np.ndarray
    charges: np.ndarray
    positions: np.ndarray
    dipole: np.ndarray
    com: np.ndarray
    n_grid: np.ndarray
    grid: np.ndarray
    esp: np.ndarray
    seconds: float = float("nan")
    source: str = ""

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def atom_offsets(self) -> np.ndarray:
        """(M+1,) start offsets of each frame in the per-atom arrays."""
        return segment_offsets(self.n_atoms)

    @property
    def grid_offsets(self) -> np.ndarray:
        """(M+1,) start offsets of each frame in the per-grid-point arrays."""
        return segment_offsets(self.n_grid)

    @property
    def atom_charges(self) -> np.ndarray:
        """(sum N,) charge of each atom, e (sum over its sites)."""
        return self.charges.sum(axis=1)

    @property
    def dipole_debye(self) -> np.ndarray:
        """(F, 3) dipole in Debye."""
        return self.dipole * EANGSTROM_TO_DEBYE

    def frame(self, k: int) -> dict:
        """Frame ``k`` as a dict: ``symbols``, ``Z``, ``R``, ``net_charge``, ``charges``,
        ``positions``, ``atom_charges``, ``dipole`` (e·Å), ``dipole_debye``, ``grid``,
        ``esp`` (Hartree/e; empty without ESP)."""
        from ase.data import chemical_symbols

        ao, go = self.atom_offsets, self.grid_offsets
        a = slice(ao[k], ao[k + 1])
        g = slice(go[k], go[k + 1])
        return {"symbols": [chemical_symbols[z] for z in self.Z[a]], "Z": self.Z[a],
                "R": self.R[a], "net_charge": float(self.net_charge[k]),
                "charges": self.charges[a], "positions": self.positions[a],
                "atom_charges": self.charges[a].sum(axis=1), "dipole": self.dipole[k],
                "dipole_debye": self.dipole[k] * EANGSTROM_TO_DEBYE, "grid": self.grid[g],
                "esp": self.esp[g]}

    def frames(self):
        """Iterate over :meth:`frame` dicts."""
        for k in range(len(self)):
            yield self.frame(k)


class Predictor:
    """A trained DCM-net ready for prediction (the jitted forward pass is kept and reused).

    Args:
        model, params: :class:`dcmnet.model.DCMNet` and its parameters.
        batch_size: frames per forward pass.
        esp_chunk_size: grid points per ESP chunk (memory), None = all at once.
        source: description (the experiment folder) stored with the results.

    Use :meth:`from_experiment` to load a checkpoint.
    """

    ATOM_MULTIPLE = 8
    GRID_MULTIPLE = 128

    def __init__(self, model, params, batch_size: int = 64, esp_chunk_size: int | None = None,
                 source: str = "<model>"):
        import jax

        from dcmnet.loss import predict

        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}.")
        self.model = model
        self.params = params
        self.batch_size = int(batch_size)
        self.source = source
        #: the model card when the model is a shipped one (domain warnings), else None
        self.card = None
        self._fn = jax.jit(lambda p, b: predict(model, p, b, esp_chunk_size))

    @classmethod
    def from_experiment(cls, path, kind: str = "best", **kwargs) -> "Predictor":
        """Load the ``best`` (or ``latest``) checkpoint of an experiment folder, or a
        checkpoint folder. Raises :class:`dcmnet.errors.CheckpointError`."""
        from dcmnet.experiment import find_experiment_dir, load_experiment
        from dcmnet.models import card_of

        _, model, params, _ = load_experiment(path, kind=kind)
        pred = cls(model, params, source=str(path), **kwargs)
        pred.card = card_of(find_experiment_dir(path))
        return pred

    @property
    def n_dcm(self) -> int:
        return int(self.model.n_dcm)

    # ------------------------------------------------------------------ core
    def _run_batch(self, Zs, Rs, Qs, grids, A: int, G: int, frags=None):
        """One padded forward pass (B × A atoms × G points); returns the outputs (numpy).

        ``frags``: per structure None or ``(labels (N,), charges (n_fragments,))``; when any
        is given the batch carries ``fragment`` / ``fragment_charge`` (see
        :func:`dcmnet.loss.predict`)."""
        import jax

        n = len(Zs)
        # Pad the batch only to the next power of two (not always to batch_size): one
        # molecule costs one molecule's work, and at most log2(batch_size) shapes compile.
        B = min(self.batch_size, 1 << max(0, n - 1).bit_length())
        Z = np.zeros((B, A), np.int32)
        R = np.zeros((B, A, 3), np.float32)
        am = np.zeros((B, A), np.float32)
        grid = np.zeros((B, G, 3), np.float32)
        gm = np.zeros((B, G), np.float32)
        com = np.zeros((B, 3), np.float32)
        q = np.zeros(B, np.float32)
        from ase.data import atomic_masses

        for j in range(n):
            na, ng = len(Zs[j]), len(grids[j])
            Z[j, :na] = Zs[j]
            R[j, :na] = Rs[j]
            am[j, :na] = 1.0
            grid[j, :ng] = grids[j]
            gm[j, :ng] = 1.0
            m = atomic_masses[Zs[j]]
            com[j] = (m[:, None] * Rs[j]).sum(0) / m.sum()
            q[j] = Qs[j]
        batch = {"Z": Z, "R": R, "atom_mask": am, "net_charge": q, "grid": grid,
                 "grid_mask": gm, "com": com}
        if frags is not None and any(f is not None for f in frags):
            fid = np.zeros((B, A), np.int32)
            fq = np.zeros((B, A), np.float32)
            fq[:n, 0] = q[:n]  # no fragment info: the whole structure is fragment 0
            for j, f in enumerate(frags):
                if f is not None:
                    fid[j, :len(f[0])] = f[0]
                    fq[j, 0] = 0.0
                    fq[j, :len(f[1])] = f[1]
            batch["fragment"], batch["fragment_charge"] = fid, fq
        out = jax.device_get(self._fn(self.params, batch))
        return out, com

    def predict_arrays(self, Zs: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
                       net_charges: Sequence[float], *, esp: bool = False,
                       grids: Sequence[np.ndarray] | None = None,
                       shells: Sequence[float] | None = None, density: float | None = None,
                       progress: bool = False, console=None,
                       fragments: Sequence | None = None) -> PredictionResult:
        """Predict for structures given as arrays.

        Args:
            Zs: F arrays (N_f,) of atomic numbers; Rs: F arrays (N_f, 3) of positions, Å.
            net_charges: F net charges, e.
            esp: compute the ESP on vdW-shell points (``shells`` × vdW radius, ``density``
                points/Å²; defaults of :mod:`dcmnet.surface`), unless ``grids`` is given.
            grids: F arrays (G_f, 3) of ESP points, Å (implies ``esp``).
            progress: show a progress bar (rich) on ``console``.
            fragments: F entries, each None or ``(labels (N_f,) int, charges (n,) e)``:
                the fragment of every atom and each fragment's net charge, kept exactly
                (:mod:`dcmnet.fragments`).
        Returns:
            :class:`PredictionResult` (float64).
        Raises:
            DataError: mismatched inputs or elements beyond the model's embedding.
        """
        from dcmnet.model import check_atomic_numbers
        from dcmnet.surface import DEFAULT_DENSITY, DEFAULT_SHELLS, vdw_shell_points

        t0 = time.perf_counter()
        F = len(Zs)
        if F == 0:
            raise DataError("no structures to predict.")
        if len(Rs) != F or len(net_charges) != F or (grids is not None and len(grids) != F):
            raise DataError(f"{F} structures but {len(Rs)} coordinate sets / "
                            f"{len(net_charges)} net charges"
                            + ("" if grids is None else f" / {len(grids)} grids"))
        Zs = [np.asarray(z, np.int32).reshape(-1) for z in Zs]
        Rs = [np.asarray(r, np.float64).reshape(-1, 3) for r in Rs]
        for k, (z, r) in enumerate(zip(Zs, Rs)):
            if len(z) == 0 or len(z) != len(r):
                raise DataError(f"structure {k}: {len(z)} atomic numbers and {len(r)} "
                                "positions.")
            if not np.isfinite(r).all():
                raise DataError(f"structure {k}: positions contain NaN or Inf.")
        allZ = np.concatenate(Zs)
        if (allZ < 1).any():
            raise DataError("a structure holds an atom with atomic number < 1 (dummy atom 'X'?).")
        check_atomic_numbers(allZ, self.model.max_atomic_number)
        if self.card is not None:
            from dcmnet.models import DomainWarning, domain_warnings

            for k, (z, q) in enumerate(zip(Zs, net_charges)):
                for msg in domain_warnings(self.card, z, q, where=f"structure {k}"):
                    warnings.warn(msg, DomainWarning, stacklevel=2)
        want_esp = esp or grids is not None
        if grids is not None:
            grids = [np.asarray(g, np.float64).reshape(-1, 3) for g in grids]
        elif want_esp:
            sh = DEFAULT_SHELLS if shells is None else tuple(shells)
            dens = DEFAULT_DENSITY if density is None else float(density)
            grids = [vdw_shell_points(z, r, sh, dens) for z, r in zip(Zs, Rs)]
        else:
            grids = [np.zeros((0, 3)) for _ in range(F)]
        n_atoms = np.array([len(z) for z in Zs], np.int64)
        n_grid = np.array([len(g) for g in grids], np.int64)
        ao = np.concatenate([[0], np.cumsum(n_atoms)])
        go = np.concatenate([[0], np.cumsum(n_grid)])
        n = self.n_dcm
        charges = np.zeros((ao[-1], n))
        positions = np.zeros((ao[-1], n, 3))
        dip = np.zeros((F, 3))
        com = np.zeros((F, 3))
        esp_out = np.zeros(go[-1])
        # group frames by padded atom count (one grid padding per group, so a trajectory
        # compiles once), sorted by (atoms, grid), cut into batches
        from dcmnet.data.batching import round_up

        a_pad = np.array([round_up(k, self.ATOM_MULTIPLE) for k in n_atoms])
        chunks = []
        for A in np.unique(a_pad):
            members = np.flatnonzero(a_pad == A)
            members = members[np.lexsort((n_grid[members], n_atoms[members]))]
            G = round_up(max(int(n_grid[members].max()), 1), self.GRID_MULTIPLE)
            chunks += [(members[s:s + self.batch_size], int(A), G)
                       for s in range(0, len(members), self.batch_size)]
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, disable=not progress,
                      transient=True) as bar:
            task = bar.add_task("predicting frames", total=F)
            for chunk, A, G in chunks:
                out, c = self._run_batch([Zs[i] for i in chunk], [Rs[i] for i in chunk],
                                         [net_charges[i] for i in chunk],
                                         [grids[i] for i in chunk], A, G,
                                         None if fragments is None
                                         else [fragments[i] for i in chunk])
                for j, i in enumerate(chunk):
                    na, ng = n_atoms[i], n_grid[i]
                    charges[ao[i]:ao[i + 1]] = out["charges"][j, :na]
                    positions[ao[i]:ao[i + 1]] = out["positions"][j, :na]
                    dip[i] = out["dipole"][j]
                    com[i] = c[j]
                    esp_out[go[i]:go[i + 1]] = out["esp"][j, :ng]
                bar.update(task, advance=len(chunk))
        return PredictionResult(
            n_atoms=n_atoms, Z=np.concatenate(Zs), R=np.concatenate(Rs),
            net_charge=np.asarray(net_charges, np.float64), charges=charges,
            positions=positions, dipole=dip, com=com, n_grid=n_grid,
            grid=np.concatenate(grids) if go[-1] else np.zeros((0, 3)), esp=esp_out,
            seconds=time.perf_counter() - t0, source=self.source)

    def predict(self, structures, charge: float | Sequence[float] | None = None, *,
                esp: bool = False, grids=None, shells=None, density=None,
                progress: bool = False, console=None,
                fragment_charges: Sequence[float] | None = None) -> PredictionResult:
        """Predict for ``ase.Atoms`` objects (or one of them).

        Args:
            structures: an ``ase.Atoms`` or a list of them.
            charge: net charge for all frames (or one per frame); default from each
                structure (see :func:`structure_charge`).
            fragment_charges: net charge of each fragment (covalent connectivity, in order
                of the fragments' first atoms) for every structure; default from
                ``atoms.info["fragment_charges"]`` or SDF formal charges
                (:func:`dcmnet.fragments.fragment_charges_for`).
            esp, grids, shells, density, progress, console: see :meth:`predict_arrays`.
        Warns:
            UserWarning: a structure of several fragments whose fragment charges are not
                known (its charge is then constrained as a whole only).
        Raises:
            DataError: fragment charges that do not match the fragments or the net charge.
        """
        if hasattr(structures, "get_atomic_numbers"):
            structures = [structures]
        structures = list(structures)
        if charge is None or np.isscalar(charge):
            qs = [structure_charge(a, charge, strict=True) for a in structures]
        else:
            qs = [float(c) for c in charge]
        frags = [self._fragments_of(a, q, fragment_charges, k)
                 for k, (a, q) in enumerate(zip(structures, qs))]
        return self.predict_arrays([a.get_atomic_numbers() for a in structures],
                                   [a.get_positions() for a in structures], qs, esp=esp,
                                   grids=grids, shells=shells, density=density,
                                   progress=progress, console=console,
                                   fragments=None if all(f is None for f in frags) else frags)

    @staticmethod
    def _fragments_of(atoms, net_charge: float, given, k: int):
        """``(labels, charges)`` for a structure of several fragments with known charges;
        None for one fragment (or unknown charges, with a warning)."""
        from dcmnet.data.sanity import fragments
        from dcmnet.fragments import fragment_charges_for

        labels = fragments(atoms.get_atomic_numbers(), atoms.get_positions())
        where = atoms.info.get("source", f"structure {k}")
        n = int(labels.max()) + 1
        qf = fragment_charges_for(atoms, labels, net_charge, given, where=where)
        if n == 1:
            return None
        if qf is None:
            warnings.warn(f"{where}: {n} disconnected fragments (covalent connectivity) and no "
                          "per-fragment net charges, so charge can move between them (only the "
                          "total is constrained). Give --fragment-charges Q1,Q2,... (in order of "
                          "the fragments' first atoms), atoms.info['fragment_charges'] or formal "
                          "charges in an SDF/MOL file.", stacklevel=3)
            return None
        return labels, qf


def write_predictions(result: PredictionResult, out_dir, formats: Sequence[str] = OUTPUT_FORMATS,
                      stem: str = "predictions") -> list[Path]:
    """Write predictions under ``out_dir`` (atomically, one file per format).

    Files (``stem`` = ``predictions`` by default):

    * ``extxyz``: ``stem.extxyz``, atoms plus charge sites (``X``), see
      :func:`dcmnet.export.write_extxyz`;
    * ``json``: ``stem.json``, per frame symbols, charges, site positions, atom charges,
      dipole (e·Å and D), net charge; units in the header;
    * ``csv``: ``stem_sites.csv`` (one row per site) and ``stem_frames.csv`` (per frame
      net charge and dipole in D);
    * ``dcm``: ``stem.dcm``, the plain-text charges file for MD codes
      (:func:`dcmnet.export.write_charges_file`);
    * with ESP: ``stem_esp.npz`` (``n_grid`` (F,), ``grid`` (sum G, 3) Å, ``esp``
      (sum G,) Hartree/e, ``esp_kcal_mol_e``), no pickles.
    Raises:
        ValueError: an unknown format.
    """
    from dcmnet.export import (write_charges_file, write_csv, write_extxyz, write_json,
                               write_sites_csv, atomic_path)
    from dcmnet.units import HARTREE_TO_KCAL_MOL

    bad = [f for f in formats if f not in OUTPUT_FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad}; choose from {', '.join(OUTPUT_FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    if "extxyz" in formats:
        files.append(write_extxyz(out / f"{stem}.extxyz", result.frames()))
    if "json" in formats:
        frames = [{"frame": k, "symbols": f["symbols"], "net_charge": f["net_charge"],
                   "atom_charges": f["atom_charges"], "charges": f["charges"],
                   "positions": f["positions"], "dipole_eA": f["dipole"],
                   "dipole_debye": f["dipole_debye"]}
                  for k, f in enumerate(result.frames())]
        files.append(write_json({
            "model": result.source, "n_frames": len(result), "n_dcm": int(result.charges.shape[1]),
            "units": {"charges": "e", "positions": "Angstrom", "dipole_eA": "e*Angstrom",
                      "dipole_debye": "Debye", "dipole_origin": "centre of mass"},
            "frames": frames}, out / f"{stem}.json", indent=None))
    if "csv" in formats:
        files.append(write_sites_csv(out / f"{stem}_sites.csv", result.frames()))
        d = result.dipole_debye
        files.append(write_csv([{"frame": k, "n_atoms": int(result.n_atoms[k]),
                                 "net_charge_e": float(result.net_charge[k]),
                                 "dipole_x_D": d[k, 0], "dipole_y_D": d[k, 1],
                                 "dipole_z_D": d[k, 2], "dipole_norm_D": float(np.linalg.norm(d[k]))}
                                for k in range(len(result))], out / f"{stem}_frames.csv"))
    if "dcm" in formats:
        files.append(write_charges_file(out / f"{stem}.dcm", result.frames()))
    if result.n_grid.sum() > 0:
        path = out / f"{stem}_esp.npz"
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, n_grid=result.n_grid, grid=result.grid, esp=result.esp,
                     esp_kcal_mol_e=result.esp * HARTREE_TO_KCAL_MOL)
        files.append(path)
    return files
