"""Prediction for new structures: distributed charges, dipoles and ESPs a simulation can use.

``dcmnet predict EXP --structures traj.xyz --out DIR`` and :class:`Predictor` read any
structure file ASE reads (xyz, extxyz, sdf, pdb, ...), run DCM-net in padded batches (the
same :func:`dcmnet.model.predict_batch` and :func:`dcmnet.data.batching.iter_predictions`
the training and the evaluation use) and return per frame:

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

The structures become a :class:`~dcmnet.data.dataset.Dataset` and are padded like any
dataset (:func:`dcmnet.data.batching.bucket_shapes`: atoms to a multiple of 8, grid points
to a multiple of 128, at most a few shapes), so a trajectory of one molecule compiles one
shape; an incomplete batch is padded only to the next power of two of its frame count.
"""
from __future__ import annotations

import time
import warnings
from typing import Sequence

import numpy as np

from dcmnet.data.dataset import Dataset
from dcmnet.errors import DataError
from dcmnet.inference.results import PredictionResult
from dcmnet.inference.structures import structure_charge

__all__ = ["Predictor"]


class Predictor:
    """A trained DCM-net ready for prediction (the jitted forward pass is kept and reused).

    Args:
        model, params: :class:`dcmnet.model.DCMNet` and its parameters.
        batch_size: frames per forward pass.
        esp_chunk_size: grid points per ESP chunk (memory), None = all at once.
        source: description (the experiment folder) stored with the results.

    Use :meth:`from_experiment` to load a checkpoint.
    """

    def __init__(self, model, params, batch_size: int = 64, esp_chunk_size: int | None = None,
                 source: str = "<model>"):
        import jax

        from dcmnet.model import predict_batch

        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}.")
        self.model = model
        self.params = params
        self.batch_size = int(batch_size)
        self.source = source
        #: the model card when the model is a shipped one (domain warnings), else None
        self.card = None
        self._fn = jax.jit(lambda p, b: predict_batch(model, p, b, esp_chunk_size))

    @classmethod
    def from_experiment(cls, path, kind: str = "best", **kwargs) -> "Predictor":
        """Load the ``best`` (or ``latest``) checkpoint of an experiment folder, or a
        checkpoint folder. Raises :class:`dcmnet.errors.CheckpointError`."""
        from dcmnet.models import card_of
        from dcmnet.training.experiment import find_experiment_dir, load_experiment

        _, model, params, _ = load_experiment(path, kind=kind)
        pred = cls(model, params, source=str(path), **kwargs)
        pred.card = card_of(find_experiment_dir(path))
        return pred

    @property
    def n_dcm(self) -> int:
        return int(self.model.n_dcm)

    # ------------------------------------------------------------------ core
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
        import jax

        from dcmnet.data.batching import iter_predictions
        from dcmnet.model import check_atomic_numbers

        t0 = time.perf_counter()
        Zs, Rs = _checked_structures(Zs, Rs, net_charges, grids)
        check_atomic_numbers(np.concatenate(Zs), self.model.max_atomic_number)
        self._domain_warnings(Zs, net_charges)
        grids = _esp_points(Zs, Rs, esp, grids, shells, density)
        data = _as_dataset(Zs, Rs, net_charges, grids, self.source)
        ao, go, F, n = data.atom_offsets, data.grid_offsets, len(data), self.n_dcm
        charges, positions = np.zeros((ao[-1], n)), np.zeros((ao[-1], n, 3))
        dip, com, esp_out = np.zeros((F, 3)), np.zeros((F, 3)), np.zeros(go[-1])

        def fn(batch):  # the batch's centre of mass comes back with the outputs
            return jax.device_get(self._fn(self.params, batch)) | {"com": batch["com"]}

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, disable=not progress,
                      transient=True) as bar:
            task = bar.add_task("predicting frames", total=F)
            for i, out in iter_predictions(fn, data, self.batch_size, shrink_last=True,
                                           atom_extras=_fragment_keys(data, fragments)):
                charges[ao[i]:ao[i + 1]] = out["charges"]
                positions[ao[i]:ao[i + 1]] = out["positions"]
                dip[i], com[i] = out["dipole"], out["com"]
                esp_out[go[i]:go[i + 1]] = out["esp"]
                bar.update(task, advance=1)
        return PredictionResult(
            n_atoms=data.n_atoms.astype(np.int64), Z=data.Z, R=data.R,
            net_charge=np.asarray(net_charges, np.float64), charges=charges,
            positions=positions, dipole=dip, com=com, n_grid=data.n_grid.astype(np.int64),
            grid=data.grid, esp=esp_out, seconds=time.perf_counter() - t0, source=self.source)

    def _domain_warnings(self, Zs, net_charges) -> None:
        """A shipped model's :class:`~dcmnet.models.DomainWarning` for structures outside
        its training domain (elements, net charges)."""
        if self.card is None:
            return
        from dcmnet.models import DomainWarning, domain_warnings

        for k, (z, q) in enumerate(zip(Zs, net_charges)):
            for msg in domain_warnings(self.card, z, q, where=f"structure {k}"):
                warnings.warn(msg, DomainWarning, stacklevel=3)  # the caller of predict_arrays

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
        from dcmnet.data.connectivity import fragments
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


def _checked_structures(Zs, Rs, net_charges, grids):
    """``(Zs, Rs)`` as int32 (N,) and float64 (N, 3) arrays, their counts checked.

    Raises:
        DataError: no structures, mismatched counts, NaN/Inf positions, atomic number < 1.
    """
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
    if (np.concatenate(Zs) < 1).any():
        raise DataError("a structure holds an atom with atomic number < 1 (dummy atom 'X'?).")
    return Zs, Rs


def _esp_points(Zs, Rs, esp: bool, grids, shells, density) -> list:
    """The ESP points of each frame: ``grids`` as given, vdW-shell points when ``esp``,
    else none."""
    from dcmnet.surface import DEFAULT_DENSITY, DEFAULT_SHELLS, vdw_shell_points

    F = len(Zs)
    want_esp = esp or grids is not None
    if grids is not None:
        grids = [np.asarray(g, np.float64).reshape(-1, 3) for g in grids]
    elif want_esp:
        sh = DEFAULT_SHELLS if shells is None else tuple(shells)
        dens = DEFAULT_DENSITY if density is None else float(density)
        grids = [vdw_shell_points(z, r, sh, dens) for z, r in zip(Zs, Rs)]
    else:
        grids = [np.zeros((0, 3)) for _ in range(F)]
    return grids


def _as_dataset(Zs, Rs, net_charges, grids, source: str) -> Dataset:
    """The checked structures as a :class:`Dataset` with zero reference ESP, no reference
    charges or dipoles. Not validated: a frame may have no ESP points (``n_grid`` 0) and
    the inputs were checked by :func:`_checked_structures`."""
    F = len(Zs)
    n_grid = np.array([len(g) for g in grids], np.int32)
    n_atoms = np.array([len(z) for z in Zs], np.int32)
    return Dataset(
        n_atoms=n_atoms, n_grid=n_grid, Z=np.concatenate(Zs), R=np.concatenate(Rs),
        grid=np.concatenate(grids) if n_grid.sum() else np.zeros((0, 3)),
        esp=np.zeros(int(n_grid.sum()), np.float32),
        net_charge=np.asarray(net_charges, np.float64).reshape(F),
        mono=np.zeros(int(n_atoms.sum())), has_mono=np.zeros(F, bool),
        dipole=np.zeros((F, 3)), has_dipole=np.zeros(F, bool),
        name=np.array([f"structure {k}" for k in range(F)]), source=source)


def _fragment_keys(data: Dataset, fragments) -> dict | None:
    """Per-atom batch keys ``fragment`` (int32) and ``fragment_charge`` (float32, fragment
    ``f``'s charge at atom slot ``f``) for :func:`dcmnet.data.batching.make_batch`, or None
    when no structure has fragment charges; a structure without them is one fragment of
    its net charge."""
    if fragments is None or all(f is None for f in fragments):
        return None
    ao = data.atom_offsets
    fid = np.zeros(int(ao[-1]), np.int32)
    fq = np.zeros(int(ao[-1]), np.float32)
    for k, f in enumerate(fragments):
        if f is None:
            fq[ao[k]] = data.net_charge[k]
        else:
            fid[ao[k]:ao[k + 1]] = f[0]
            fq[ao[k]:ao[k] + len(f[1])] = f[1]
    return {"fragment": fid, "fragment_charge": fq}
