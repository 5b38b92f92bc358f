"""Padded, fixed-shape batches from the ragged :class:`~dcmnet.data.dataset.Dataset`.

Every batch is a ``dict[str, np.ndarray]`` with exactly the keys, shapes and dtypes of the
"Padded batches" table of ``docs/conventions.md`` (B molecules, A atom slots, G grid
slots). Padded atoms have ``Z = 0`` and zero position/charge, padded grid points are at 0
with ESP 0, and a batch always holds exactly ``batch_size`` molecules: dummy molecules
(``index = -1``, all masks 0, every value 0) fill the last batch.

Padding sizes (bucket strategy):

* :func:`pad_sizes` rounds the largest molecule up to a multiple of ``atom_multiple``
  (default 8) atoms and ``grid_multiple`` (default 128) grid points.
* :func:`bucket_shapes` returns that single shape unless it wastes much work: when the
  padded ESP work (A × G per molecule) of the real molecules is below ``min_efficiency``
  of the padded total, up to ``max_buckets`` shapes are chosen greedily among rounded
  quantiles of the atom and grid counts (each molecule goes to the cheapest shape it fits),
  kept only if they save at least 20 % of the padded work (dummy-filled batches counted).
  The shapes depend on the data only (never on the seed or epoch), so jit
  compiles at most ``max_buckets`` shapes. Compute them once on the *whole* dataset and
  pass them (``shapes=``) to the training and validation iterators so both share them.

Order: for ``shuffle=True`` the permutation comes from ``numpy.random.default_rng((seed,
epoch))``: molecules are shuffled within each bucket, cut into batches, and the batches of
all buckets shuffled together. The same ``(seed, epoch)`` gives the same batches, so a
resumed run sees the data in the same order; each molecule appears exactly once per epoch
(unless ``drop_last`` drops the incomplete batches).

Prediction: :func:`iter_predictions` is the one loop that runs a batch function (usually
the jitted :func:`dcmnet.model.predict_batch`) over a dataset and yields each molecule's
outputs with the padding cut off; evaluation, analysis and the Predictor use it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from jaxtyping import Int, Shaped

from dcmnet.data.dataset import Dataset, centre_of_mass
from dcmnet.errors import DataError

#: Default rounding of the atom padding size.
ATOM_MULTIPLE = 8
#: Default rounding of the grid padding size.
GRID_MULTIPLE = 128

#: Keys of a padded batch, with dtype and trailing shape symbols (see docs/conventions.md).
BATCH_SPEC: dict[str, tuple[type, tuple[str, ...]]] = {
    "Z": (np.int32, ("B", "A")),
    "R": (np.float32, ("B", "A", 3)),
    "atom_mask": (np.float32, ("B", "A")),
    "grid": (np.float32, ("B", "G", 3)),
    "esp": (np.float32, ("B", "G")),
    "grid_mask": (np.float32, ("B", "G")),
    "mol_mask": (np.float32, ("B",)),
    "net_charge": (np.float32, ("B",)),
    "mono": (np.float32, ("B", "A")),
    "mono_mask": (np.float32, ("B",)),
    "dipole": (np.float32, ("B", 3)),
    "dipole_mask": (np.float32, ("B",)),
    "com": (np.float32, ("B", 3)),
    "index": (np.int32, ("B",)),
}

#: The dimension names of array shapes, shared by :data:`BATCH_SPEC` and the jaxtyping
#: annotations (``Float[Array, "B G 3"]``) of ``electrostatics``, ``model``,
#: ``training.loss`` and this module (docs/conventions.md, "Dimension names"); ``3`` is
#: x, y, z and ``...`` any further dimensions.
DIMENSIONS: dict[str, str] = {
    "B": "molecules in a batch (dummy molecules included)",
    "A": "atom slots per molecule (padded)",
    "G": "grid-point slots per molecule (padded)",
    "K": "charge sites per atom (n_dcm)",
    "S": "charge sites per molecule (A·K after flatten_sites; atoms for multipoles)",
    "C": "multipole parameters per site (1, 4 or 9)",
    "M": "molecules of a dataset", "N": "batches stacked by stack_batches (accumulation)",
}

#: Padded axis of each key of a batch prediction (``"A"`` atoms, ``"G"`` grid points; keys
#: not listed are per molecule): the outputs of :func:`dcmnet.model.predict_batch`.
PREDICTION_AXES: dict[str, str] = {"charges": "A", "positions": "A", "atom_charges": "A",
                                   "esp": "G"}


def round_up(x: float | np.number, multiple: int | np.integer) -> int:
    """Smallest multiple of ``multiple`` that is ≥ ``x`` (and ≥ ``multiple``)."""
    x, multiple = int(x), int(multiple)
    return max(multiple, -(-x // multiple) * multiple)


def _select(dataset: Dataset, indices) -> np.ndarray:
    if indices is None:
        return np.arange(len(dataset), dtype=np.int64)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise DataError(f"{dataset.source}: no molecules selected for batching.")
    if idx.min() < 0 or idx.max() >= len(dataset):
        bad = idx[(idx < 0) | (idx >= len(dataset))][0]
        raise DataError(f"{dataset.source}: molecule index {bad} out of range for "
                        f"{len(dataset)} molecules.")
    return idx


def pad_sizes(dataset: Dataset, indices=None, *, atom_multiple: int = ATOM_MULTIPLE,
              grid_multiple: int = GRID_MULTIPLE) -> tuple[int, int]:
    """One padding shape ``(A, G)`` that fits every selected molecule.

    Args:
        dataset: the ragged dataset.
        indices: molecules to consider (default all).
        atom_multiple, grid_multiple: rounding of the largest atom and grid counts.
    """
    idx = _select(dataset, indices)
    return (round_up(dataset.n_atoms[idx].max(), atom_multiple),
            round_up(dataset.n_grid[idx].max(), grid_multiple))


def _assign(n_atoms: Int[np.ndarray, " M"], n_grid: Int[np.ndarray, " M"],
            shapes: Sequence[tuple[int, int]]) -> Int[np.ndarray, " M"]:
    """Index of the cheapest shape (A × G) that fits each molecule; -1 when none fits."""
    order = sorted(range(len(shapes)), key=lambda k: (shapes[k][0] * shapes[k][1], shapes[k]))
    out = np.full(n_atoms.shape, -1, dtype=np.int64)
    for k in reversed(order):  # cheaper shapes overwrite
        A, G = shapes[k]
        out[(n_atoms <= A) & (n_grid <= G)] = k
    return out


def _padded_work(n_atoms: Int[np.ndarray, " M"], n_grid: Int[np.ndarray, " M"],
                 shapes: Sequence[tuple[int, int]], batch_size: int) -> float:
    which = _assign(n_atoms, n_grid, shapes)
    total = 0.0
    for k, (A, G) in enumerate(shapes):
        cnt = int((which == k).sum())
        total += -(-cnt // batch_size) * batch_size * A * G
    return total


def bucket_shapes(dataset: Dataset, indices=None, *, batch_size: int = 1,
                  max_buckets: int = 4, min_efficiency: float = 0.5,
                  atom_multiple: int = ATOM_MULTIPLE,
                  grid_multiple: int = GRID_MULTIPLE) -> list[tuple[int, int]]:
    """Padding shapes ``[(A, G), ...]`` (cheapest first, the last fits every molecule).

    A single shape (:func:`pad_sizes`) unless the molecules' sizes spread so much that less
    than ``min_efficiency`` of the padded ESP work (A × G per molecule) is real; then up to
    ``max_buckets`` shapes chosen greedily among rounded quantiles of the atom and grid
    counts, each molecule going to the cheapest shape it fits, kept only when they save at
    least 20 % of the padded work (batches filled with dummies counted). Depends on the
    data only, never on a seed.
    """
    idx = _select(dataset, indices)
    na = dataset.n_atoms[idx].astype(np.int64)
    ng = dataset.n_grid[idx].astype(np.int64)
    single = pad_sizes(dataset, idx, atom_multiple=atom_multiple, grid_multiple=grid_multiple)
    M = len(idx)
    batch_size = max(1, int(batch_size))
    eff = float((na * ng).sum()) / (M * single[0] * single[1])
    if eff >= min_efficiency or int(max_buckets) < 2 or M < 2 * batch_size:
        return [single]
    # candidate shapes: rounded quantiles of the atom and grid counts; greedily add the one
    # that saves the most padded work (batches filled up with dummies count as work)
    qs = np.linspace(0, 100, 9)[1:]
    cand_a = sorted({round_up(v, atom_multiple) for v in np.percentile(na, qs)})
    cand_g = sorted({round_up(v, grid_multiple) for v in np.percentile(ng, qs)})
    candidates = [(a, g) for a in cand_a for g in cand_g if (a, g) != single]
    shapes = [single]
    best = _padded_work(na, ng, shapes, batch_size)
    reference = best
    while len(shapes) < max_buckets and candidates:
        works = [_padded_work(na, ng, shapes + [c], batch_size) for c in candidates]
        j = int(np.argmin(works))
        if works[j] > 0.95 * best:
            break
        best = works[j]
        shapes.append(candidates.pop(j))
    if len(shapes) == 1 or best > 0.8 * reference:
        return [single]
    shapes = sorted(shapes, key=lambda s: (s[0] * s[1], s))
    return [tuple(map(int, s)) for s in shapes]


def _gather(arr, src: np.ndarray) -> np.ndarray:
    """``arr[src]`` for an (n, ...) array or an on-disk view (:class:`~dcmnet.data.ondisk.RaggedTake`); zeros when ``arr`` is empty (no ESP points)."""
    return arr[src] if len(arr) else np.zeros(src.shape + arr.shape[1:], arr.dtype)


def make_batch(dataset: Dataset, indices, batch_size: int, n_atoms_pad: int,
               n_grid_pad: int, *, atom_offsets: np.ndarray | None = None,
               grid_offsets: np.ndarray | None = None,
               atom_extras: Mapping[str, np.ndarray] | None = None
               ) -> dict[str, Shaped[np.ndarray, "B ..."]]:
    """One padded batch of the molecules ``indices`` (dataset indices; ``-1`` = dummy).

    Args:
        dataset: the ragged dataset.
        indices: at most ``batch_size`` molecule indices; the batch is filled up with dummy
            molecules (``index = -1``, all masks 0).
        batch_size: B.
        n_atoms_pad, n_grid_pad: A and G; every selected molecule must fit.
        atom_offsets, grid_offsets: ``dataset.atom_offsets`` / ``grid_offsets`` when the
            caller has them precomputed (saves an O(M) cumulative sum per batch).
        atom_extras: more per-atom keys, each a ragged (sum n_atoms,) array padded to
            (B, A) with 0 in its own dtype (e.g. ``fragment`` / ``fragment_charge``, see
            :func:`dcmnet.model.predict_batch`).

    Returns:
        dict with the keys, shapes and dtypes of :data:`BATCH_SPEC` (plus ``atom_extras``).

    Raises:
        DataError: more indices than ``batch_size``, an index out of range, or a molecule
            larger than the padding sizes.
    """
    B, A, G = int(batch_size), int(n_atoms_pad), int(n_grid_pad)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size > B:
        raise DataError(f"{idx.size} molecules do not fit a batch of {B}.")
    if idx.size and (idx.max() >= len(dataset) or idx.min() < -1):
        raise DataError(f"{dataset.source}: molecule index out of range for {len(dataset)} "
                        "molecules.")
    ao = dataset.atom_offsets if atom_offsets is None else atom_offsets
    go = dataset.grid_offsets if grid_offsets is None else grid_offsets
    full = np.full(B, -1, dtype=np.int64)
    full[:idx.size] = idx
    real = full >= 0
    safe = np.where(real, full, 0)
    na = np.where(real, dataset.n_atoms[safe], 0)
    ng = np.where(real, dataset.n_grid[safe], 0)
    if (na > A).any() or (ng > G).any():
        j = int(np.flatnonzero((na > A) | (ng > G))[0])
        raise DataError(f"{dataset.source}: molecule {full[j]} has {na[j]} atoms and {ng[j]} "
                        f"grid points, more than the padding ({A} atoms, {G} points); compute "
                        "the padding shapes on a dataset that includes it.")

    a_ar = np.arange(A)
    amask = a_ar[None, :] < na[:, None]                       # (B, A)
    asrc = np.where(amask, ao[safe][:, None] + a_ar[None, :], 0)
    g_ar = np.arange(G)
    gmask = g_ar[None, :] < ng[:, None]                       # (B, G)
    gsrc = np.where(gmask, go[safe][:, None] + g_ar[None, :], 0)

    Z = np.where(amask, dataset.Z[asrc], 0).astype(np.int32)
    R64 = np.where(amask[..., None], dataset.R[asrc], 0.0)
    com = centre_of_mass(Z, R64)                              # (B, 3), 0 for dummies
    has_mono = real & dataset.has_mono[safe]
    has_dip = real & dataset.has_dipole[safe]
    f32 = np.float32
    extras = {k: np.where(amask, np.asarray(v)[asrc], 0).astype(np.asarray(v).dtype)
              for k, v in (atom_extras or {}).items()}
    return extras | {
        "Z": Z,
        "R": R64.astype(f32),
        "atom_mask": amask.astype(f32),
        "grid": np.where(gmask[..., None], _gather(dataset.grid, gsrc), 0).astype(f32),
        "esp": np.where(gmask, _gather(dataset.esp, gsrc), 0).astype(f32),
        "grid_mask": gmask.astype(f32),
        "mol_mask": real.astype(f32),
        "net_charge": np.where(real, dataset.net_charge[safe], 0.0).astype(f32),
        "mono": np.where(amask & has_mono[:, None], dataset.mono[asrc], 0.0).astype(f32),
        "mono_mask": has_mono.astype(f32),
        "dipole": np.where(has_dip[:, None], dataset.dipole[safe], 0.0).astype(f32),
        "dipole_mask": has_dip.astype(f32),
        "com": np.where(real[:, None], com, 0.0).astype(f32),
        "index": full.astype(np.int32),
    }


class BatchIterator:
    """Deterministic epochs of padded batches over (a subset of) a dataset.

    Args:
        dataset: the ragged dataset.
        batch_size: molecules per batch (B ≥ 1).
        shuffle: shuffle with ``default_rng((seed, epoch))``; otherwise dataset order within
            each bucket, buckets cheapest first.
        seed: base seed (≥ 0).
        drop_last: drop each bucket's incomplete batch instead of filling it with dummies.
        bucket: allow several padding shapes (see :func:`bucket_shapes`); ``False`` = one.
        indices: molecules to iterate over (dataset indices, reported in ``index``);
            default all.
        shapes: explicit padding shapes ``[(A, G), ...]`` or one ``(A, G)`` — pass the
            shapes computed on the whole dataset so training and validation share them.
        max_buckets, min_efficiency, atom_multiple, grid_multiple: see
            :func:`bucket_shapes`.

    Use ``for batch in it.epoch_batches(epoch)``; ``len(it)`` is the number of batches per
    epoch; ``it.shapes`` the padding shapes in use.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, bucket: bool = True, indices=None,
                 shapes=None, max_buckets: int = 4, min_efficiency: float = 0.5,
                 atom_multiple: int = ATOM_MULTIPLE, grid_multiple: int = GRID_MULTIPLE):
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}.")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.indices = _select(dataset, indices)
        if shapes is None:
            if bucket:
                shapes = bucket_shapes(dataset, self.indices, batch_size=self.batch_size,
                                       max_buckets=max_buckets, min_efficiency=min_efficiency,
                                       atom_multiple=atom_multiple,
                                       grid_multiple=grid_multiple)
            else:
                shapes = [pad_sizes(dataset, self.indices, atom_multiple=atom_multiple,
                                    grid_multiple=grid_multiple)]
        elif len(shapes) == 2 and np.isscalar(shapes[0]):
            shapes = [tuple(shapes)]
        self.shapes = [(int(a), int(g)) for a, g in shapes]
        which = _assign(dataset.n_atoms[self.indices], dataset.n_grid[self.indices],
                        self.shapes)
        if (which < 0).any():
            j = self.indices[np.flatnonzero(which < 0)[0]]
            raise DataError(f"{dataset.source}: molecule {j} ({dataset.n_atoms[j]} atoms, "
                            f"{dataset.n_grid[j]} grid points) fits none of the padding "
                            f"shapes {self.shapes}.")
        self._members = [self.indices[which == k] for k in range(len(self.shapes))]
        self._ao = dataset.atom_offsets
        self._go = dataset.grid_offsets
        self.epoch = 0

    def __len__(self) -> int:
        B = self.batch_size
        return sum((len(m) // B) if self.drop_last else -(-len(m) // B)
                   for m in self._members)

    def batch_plan(self, epoch: int = 0) -> list[tuple[int, np.ndarray]]:
        """``[(shape_index, molecule_indices), ...]`` for one epoch (no arrays built)."""
        rng = np.random.default_rng((self.seed, int(epoch))) if self.shuffle else None
        return self._plan(rng)

    def _plan(self, rng) -> list[tuple[int, np.ndarray]]:
        B = self.batch_size
        plan = []
        for k, members in enumerate(self._members):
            if rng is not None:
                members = members[rng.permutation(len(members))]
            for s in range(0, len(members), B):
                chunk = members[s:s + B]
                if len(chunk) < B and self.drop_last:
                    continue
                plan.append((k, chunk))
        if rng is not None and len(plan) > 1:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        return plan

    def _batches(self, plan) -> Iterator[dict[str, np.ndarray]]:
        for k, chunk in plan:
            A, G = self.shapes[k]
            yield make_batch(self.dataset, chunk, self.batch_size, A, G,
                             atom_offsets=self._ao, grid_offsets=self._go)

    def epoch_batches(self, epoch: int = 0, rng: np.random.Generator | None = None
                      ) -> Iterator[dict[str, np.ndarray]]:
        """The batches of ``epoch`` (order from ``(seed, epoch)``, or from ``rng`` if given)."""
        if rng is not None and self.shuffle:
            return self._batches(self._plan(rng))
        return self._batches(self.batch_plan(epoch))

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self.epoch_batches(self.epoch)


def iterate_batches(dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                    epoch: int = 0, drop_last: bool = False, bucket: bool = True, *,
                    rng: np.random.Generator | None = None, indices=None, shapes=None,
                    **bucket_options) -> Iterator[dict[str, np.ndarray]]:
    """Yield the padded batches of one epoch; see :class:`BatchIterator` for the arguments.

    Deterministic: the order depends only on ``(seed, epoch)`` (or on ``rng`` when given).
    """
    it = BatchIterator(dataset, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                       bucket=bucket, indices=indices, shapes=shapes, **bucket_options)
    return it.epoch_batches(epoch, rng=rng)


def stack_batches(batches: Sequence[Mapping[str, Shaped[np.ndarray, "B ..."]]]
                  ) -> dict[str, Shaped[np.ndarray, "N B ..."]]:
    """Stack batches of one shape along a new leading axis (for gradient accumulation)."""
    if len(batches) == 0:
        raise ValueError("stack_batches needs at least one batch.")
    keys = set(batches[0])
    for b in batches[1:]:
        if set(b) != keys:
            raise ValueError("stack_batches: batches have different keys.")
        for k in keys:
            if b[k].shape != batches[0][k].shape:
                raise ValueError(f"stack_batches: key '{k}' has shapes {batches[0][k].shape} "
                                 f"and {b[k].shape}; stack only batches of one padding shape.")
    return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def prediction_plan(dataset: Dataset, batch_size: int, *, shrink_last: bool = False,
                    shapes=None, **bucket_options) -> list[tuple[np.ndarray, int, int, int]]:
    """The batches that cover every molecule once: ``[(indices, B, A, G), ...]``.

    Padding shapes from :func:`bucket_shapes` (or ``shapes``), dataset order within each
    shape (:class:`BatchIterator` without shuffling). ``B`` is ``batch_size`` (at most the
    number of molecules); with ``shrink_last`` a batch of ``n < batch_size`` molecules
    is padded only to the next power of two ≥ n, so one molecule costs one molecule's work
    and at most log2(batch_size) more batch sizes compile.
    """
    cap = max(1, int(batch_size))
    B = min(cap, max(len(dataset), 1))
    it = BatchIterator(dataset, B, shuffle=False, shapes=shapes, **bucket_options)
    # shrink_last: the power of two is capped by batch_size only (not by the number of
    # molecules), so predict() calls with 5, 6 or 7 frames share one compiled size, 8
    return [(idx, min(cap, 1 << max(0, len(idx) - 1).bit_length()) if shrink_last else B,
             *it.shapes[k]) for k, idx in it.batch_plan(0)]


def iter_predictions(fn: Callable[[dict], Mapping], dataset: Dataset, batch_size: int = 16,
                     *, plan=None, atom_extras: Mapping[str, np.ndarray] | None = None,
                     axes: Mapping[str, str] = PREDICTION_AXES, **plan_options
                     ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Unpadded per-molecule predictions of a batch function over a dataset (the one
    prediction loop of evaluation, analysis and inference).

    Args:
        fn: padded batch (:func:`make_batch`) → dict of arrays with a leading batch axis,
            e.g. ``lambda b: jax.device_get(jitted_predict_batch(params, b))``.
        dataset: the molecules to predict.
        batch_size, plan_options: see :func:`prediction_plan` (``shrink_last``, ``shapes``,
            bucket options); ``plan``: a precomputed :func:`prediction_plan` instead.
        atom_extras: more per-atom batch keys (see :func:`make_batch`).
        axes: padded axis of each output key (:data:`PREDICTION_AXES`).

    Yields:
        ``(i, prediction)`` for each molecule ``i`` once, in plan order: numpy arrays with
        the padding cut off, ``(n_atoms, ...)`` for ``"A"`` keys, ``(n_grid, ...)`` for
        ``"G"`` keys, the molecule's row for the others.
    """
    if plan is None:
        plan = prediction_plan(dataset, batch_size, **plan_options)
    ao, go = dataset.atom_offsets, dataset.grid_offsets
    for idx, B, A, G in plan:
        out = {k: np.asarray(v) for k, v in fn(make_batch(
            dataset, idx, B, A, G, atom_offsets=ao, grid_offsets=go,
            atom_extras=atom_extras)).items()}
        for j, i in enumerate(idx):
            n = {"A": int(dataset.n_atoms[i]), "G": int(dataset.n_grid[i])}
            yield int(i), {k: v[j, :n[axes[k]]] if k in axes else v[j]
                           for k, v in out.items()}
