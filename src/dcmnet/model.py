"""DCM-net: an E(3)-equivariant message-passing network that predicts distributed charges.

For every atom the network predicts ``n_dcm`` point charges (e) and their absolute
positions (Å) (Boittier & Meuwly, "Efficient, Equivariant Predictions of Distributed
Charge Models", arXiv 2602.07234). Architecture (e3x on flax.linen):

1. element embedding of the atomic number (``e3x.nn.Embed``);
2. ``num_iterations`` blocks of equivariant message passing (``e3x.nn.MessagePass``, or
   its per-molecule equivalent :class:`dcmnet.message_passing.DenseMessagePass` with the
   same parameters) over all pairs of real atoms of the same molecule, with radial-angular basis functions
   (reciprocal Bernstein radial functions times spherical harmonics up to ``max_degree``,
   multiplied by a smooth cutoff at ``cutoff`` Å), each followed by a residual atom-wise
   update (Dense → SiLU gate → Dense; the Dense layers are
   :class:`dcmnet.message_passing.FusedDense`, e3x's ``Dense`` with the same parameters
   applied as one contraction);
3. an equivariant head (Dense → SiLU → Dense to ``n_dcm`` channels): the scalar
   (ℓ = 0, even parity) channel gives the raw charges, the ℓ = 1 odd-parity channel (a
   proper vector) gives a displacement ``v`` that is bounded smoothly as
   ``d = v / sqrt(1 + |v|²/m²)`` with ``m = max_displacement`` (so ``|d| < m``);
4. the charges of each molecule are projected onto the net charge,
   ``q ← q − (Σq − Q)/(n_real_atoms · n_dcm)`` on real atoms only, so ``Σq = Q`` exactly.

Output (see ``docs/conventions.md``): ``charges`` (B, A, n_dcm) in e and ``positions``
(B, A, n_dcm, 3) absolute, in Å, with site ``k`` of atom ``i`` at ``R[i] + d_ik``.

Padding: padded atoms (``Z = 0`` or ``atom_mask = 0``) send and receive no messages,
carry exactly 0 charge and their sites sit on their own ``R``; a molecule with no real
atoms gives zeros. Masked pairs use a safe unit displacement, so no NaN appears in norms,
spherical harmonics or gradients.

e3x irreps: features have shape ``(..., P, (L+1)², F)`` with parity axis ``P`` (index 0
even, 1 odd when P = 2) and the degree-ℓ block at ``ℓ² : (ℓ+1)²``. The model passes
``cartesian_order=True`` explicitly to every e3x call (e3x's ``Config`` setters do not
change module defaults after import), so the ℓ = 1 components are in the order (x, y, z);
with ``cartesian_order=False`` e3x would use (y, z, x) (m = −1, 0, 1).

Atomic numbers: ``0 ≤ Z ≤ max_atomic_number``. With concrete inputs (outside ``jit``)
:meth:`DCMNet.__call__` raises :class:`dcmnet.errors.DataError` for any other value. Under
``jit`` the values cannot be inspected: an out-of-range ``Z`` then gives NaN features for
that atom (the embedding lookup is done with an explicit NaN fill, never silently clipped).
Call :func:`check_atomic_numbers` on each batch before entering a jitted function.

Shapes in the signatures are jaxtyping annotations in the dimension names of
:data:`dcmnet.data.batching.DIMENSIONS` (B molecules, A atoms, G grid points, K = n_dcm).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import e3x
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real, Shaped

from dcmnet.config import ModelConfig
from dcmnet.electrostatics import dipole_from_charges, esp_from_charges, flatten_sites
from dcmnet.errors import DataError
from dcmnet.fragments import constrain_fragment_charges
from dcmnet.message_passing import (DenseMessagePass, FusedDense, cutoff_neighbors,
                                    default_max_neighbors)

#: Architecture defaults live in one place: :class:`dcmnet.config.ModelConfig`.
_DEFAULTS = ModelConfig()

__all__ = [
    "DCMNet",
    "create_model",
    "count_parameters",
    "predict_batch",
    "check_atomic_numbers",
    "pair_indices",
    "L1_TO_XYZ",
]

#: e3x component order used throughout the model (passed explicitly to e3x).
CARTESIAN_ORDER: bool = True
#: Indices into the ℓ = 1 block (length 3) giving Cartesian (x, y, z). With
#: ``cartesian_order=True`` e3x stores ℓ = 1 as (x, y, z); (spherical order would be
#: (y, z, x), i.e. indices (2, 0, 1)). Verified by the rotation-equivariance tests.
L1_TO_XYZ: tuple[int, int, int] = (0, 1, 2) if CARTESIAN_ORDER else (2, 0, 1)


def check_atomic_numbers(Z: Any, max_atomic_number: int) -> None:
    """Raises :class:`DataError` unless every atomic number is in ``[0, max_atomic_number]``.

    ``Z = 0`` marks padding. Call this on concrete (NumPy) batches before a jitted model
    call: inside ``jit`` the values are tracers and cannot be checked.

    Args:
        Z: array-like of integer atomic numbers, any shape.
        max_atomic_number: largest atomic number the model's embedding covers.

    Raises:
        DataError: an atomic number is negative or above ``max_atomic_number``.
    """
    Z = np.asarray(Z)
    if Z.size == 0:
        return
    if not np.issubdtype(Z.dtype, np.integer):
        if not np.all(np.isfinite(Z)) or not np.all(Z == np.round(Z)):
            raise DataError(f"atomic numbers must be integers, got dtype {Z.dtype} with "
                            "non-integer values")
    zmax = int(Z.max())
    zmin = int(Z.min())
    if zmax > max_atomic_number:
        raise DataError(
            f"atomic number {zmax} exceeds the model's max_atomic_number {max_atomic_number}; "
            f"retrain with --max-atomic-number ≥ {zmax} (or drop the molecules holding "
            f"element {zmax})")
    if zmin < 0:
        raise DataError(f"atomic number {zmin} is negative; atomic numbers must be ≥ 1 "
                        "(0 marks a padded atom)")


@functools.lru_cache(maxsize=64)
def _pair_indices_np(num_molecules: int, num_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.nonzero(~np.eye(num_atoms, dtype=bool))  # all ordered pairs i != j
    offsets = (np.arange(num_molecules) * num_atoms)[:, None]
    dst = (offsets + i[None, :]).reshape(-1).astype(np.int32)
    src = (offsets + j[None, :]).reshape(-1).astype(np.int32)
    dst.setflags(write=False)
    src.setflags(write=False)
    return dst, src


def pair_indices(num_molecules: int, num_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """All ordered atom pairs ``(i, j), i ≠ j`` inside each molecule of a padded batch.

    Atoms are numbered over the flattened batch, ``b * num_atoms + i``.

    Returns:
        ``(dst_idx, src_idx)``, each (num_molecules · num_atoms · (num_atoms − 1),) int32,
        sorted by ``dst_idx``: messages flow from ``src`` to ``dst``.
    """
    return _pair_indices_np(int(num_molecules), int(num_atoms))


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _project_net_charge(q_raw: Float[Array, "B A K"], maskf: Float[Array, "B A"],
                        net_charge: Real[ArrayLike, " B"]) -> Float[Array, "B A K"]:
    """Exact net charge by projection on the real atoms of each molecule.

    ``q ← q − (Σq − Q)/(n_real_atoms · n_dcm)`` for (B, A, n) charges ``q_raw`` (e),
    (B, A) float mask and (B,) net charges (e); padded atoms get 0.
    """
    B, A, n = q_raw.shape
    q = q_raw * maskf[:, :, None]
    n_sites = jnp.sum(maskf, axis=1) * n  # (B,)
    excess = jnp.sum(q, axis=(1, 2)) - jnp.asarray(net_charge, q.dtype).reshape(B)
    shift = jnp.where(n_sites > 0, excess / jnp.maximum(n_sites, 1.0), 0.0)
    return (q - shift[:, None, None]) * maskf[:, :, None]


def _bounded_displacement(v, m: float):
    """Smooth bound ``|d| < m`` (Å): ``d = v / sqrt(1 + |v|²/m²)``, finite gradient at 0.

    ``v``: (..., 3) raw displacements, Å; returns the bounded (..., 3) displacements, Å."""
    return v / jnp.sqrt(1.0 + jnp.sum(v * v, axis=-1, keepdims=True) / (m * m))


class DCMNet(nn.Module):
    """E(3)-equivariant network predicting ``n_dcm`` charges per atom (see module docstring).

    Attributes:
        n_dcm: charge sites per atom.
        features: feature channels per irrep.
        max_degree: largest spherical-harmonics degree of the features and basis (≥ 1).
        num_iterations: message-passing blocks.
        num_basis_functions: radial basis functions.
        cutoff: message-passing cutoff radius, Å.
        max_atomic_number: largest atomic number the embedding covers.
        max_displacement: bound on the distance of a charge site from its atom, Å.
        message_passing: pair layout (not part of the parameters, so any layout runs any
            checkpoint): ``"auto"`` (default: dense per-molecule pairs, a cutoff neighbour
            list above ``2 × neighbor_count`` atoms), ``"dense"``, ``"neighbors"`` or
            ``"pairs"`` (e3x's flat pair list with gather/scatter, the reference). All give
            the same predictions up to float32 rounding (:mod:`dcmnet.message_passing`).
        max_neighbors: neighbours per atom of the cutoff list; 0 = from the cutoff
            (:func:`dcmnet.message_passing.default_max_neighbors`, 56 at 4 Å). A molecule
            with an atom that has more neighbours inside the cutoff raises
            :class:`DataError` with concrete inputs and gives NaN charges under ``jit``.
    """

    n_dcm: int = _DEFAULTS.n_dcm
    features: int = _DEFAULTS.features
    max_degree: int = _DEFAULTS.max_degree
    num_iterations: int = _DEFAULTS.num_iterations
    num_basis_functions: int = _DEFAULTS.num_basis_functions
    cutoff: float = _DEFAULTS.cutoff
    max_atomic_number: int = _DEFAULTS.max_atomic_number
    max_displacement: float = _DEFAULTS.max_displacement
    message_passing: str = "auto"
    max_neighbors: int = 0

    @nn.compact
    def __call__(self, Z: Real[ArrayLike, "B A"], R: Float[ArrayLike, "B A 3"],
                 atom_mask: Shaped[ArrayLike, "B A"], net_charge: Real[ArrayLike, " B"]
                 ) -> tuple[Float[Array, "B A K"], Float[Array, "B A K 3"]]:
        """Predicts distributed charges for a padded batch.

        Args:
            Z: (B, A) int32 atomic numbers, 0 = padded atom.
            R: (B, A, 3) float32 positions, Å.
            atom_mask: (B, A) 1 for real atoms, 0 for padding (an atom counts as real only
                where ``atom_mask > 0`` and ``Z > 0``).
            net_charge: (B,) total charge of each molecule, e.

        Returns:
            ``(charges, positions)``: (B, A, n_dcm) charges in e, summing to
            ``net_charge`` for every molecule with at least one real atom (0 for padded
            atoms and dummy molecules); (B, A, n_dcm, 3) absolute site positions in Å.

        Raises:
            DataError: with concrete inputs, an atomic number outside
                ``[0, max_atomic_number]`` (under ``jit`` no check is possible; use
                :func:`check_atomic_numbers` before).
        """
        if self.max_degree < 1:
            raise ValueError("DCMNet needs max_degree ≥ 1 (charge displacements are ℓ = 1)")
        if self.n_dcm < 1:
            raise ValueError(f"n_dcm must be ≥ 1, got {self.n_dcm}")
        if _is_concrete(Z):
            check_atomic_numbers(Z, self.max_atomic_number)

        Z = jnp.asarray(Z)
        R = jnp.asarray(R, jnp.float32)
        B, A = Z.shape
        N = B * A
        mask = (jnp.asarray(atom_mask) > 0) & (Z > 0)  # (B, A) bool
        maskf = mask.astype(R.dtype)
        Zf = Z.reshape(N).astype(jnp.int32)
        Rf = R.reshape(N, 3)
        mf = maskf.reshape(N)
        layout = self.pair_layout(A)

        # --- element embedding (explicit NaN fill for out-of-range Z under jit) ---------
        embed = e3x.nn.Embed(num_embeddings=self.max_atomic_number + 1,
                             features=self.features, name="embed")
        valid_z = (Zf >= 0) & (Zf <= self.max_atomic_number)
        x = embed(jnp.clip(Zf, 0, self.max_atomic_number))  # (N, 1, 1, F)
        x = jnp.where(valid_z[:, None, None, None], x, jnp.nan)
        atom_m = mf[:, None, None, None]
        x = x * atom_m

        # --- message passing ---------------------------------------------------------
        if layout == "pairs":
            message, overflow = self._pairs_message_fn(Rf, mf, B, A), None
        else:
            message, overflow = self._dense_message_fn(R, mask, layout)
        for it in range(self.num_iterations):
            y = message(it, x)
            y = e3x.nn.add(x, y)
            y = FusedDense(self.features, name=f"update_{it}_a")(y)
            y = e3x.nn.silu(y)
            y = FusedDense(self.features, name=f"update_{it}_b")(y)
            x = e3x.nn.add(x, y) * atom_m
        if overflow is not None:  # lost pairs: fail loudly (NaN) rather than silently
            x = jnp.where(jnp.repeat(overflow, A)[:, None, None, None], jnp.nan, x)

        # --- head ----------------------------------------------------------------------
        h = FusedDense(self.features, name="head_a")(x)
        h = e3x.nn.silu(h)
        h = FusedDense(self.n_dcm, name="head_b")(h)  # (N, P, (L+1)², n_dcm)
        odd = 1 if h.shape[-3] == 2 else 0  # ℓ = 1 proper vectors have odd parity
        q_raw = h[:, 0, 0, :]  # (N, n_dcm) scalars (ℓ = 0, even)
        v = h[:, odd, 1:4, :][:, jnp.asarray(L1_TO_XYZ), :]  # (N, 3, n_dcm) → x, y, z
        v = jnp.swapaxes(v, -1, -2)  # (N, n_dcm, 3), Å

        d = _bounded_displacement(v, self.max_displacement) * mf[:, None, None]
        positions = Rf[:, None, :] + d  # (N, n_dcm, 3)

        charges = _project_net_charge(q_raw.reshape(B, A, self.n_dcm), maskf, net_charge)
        return charges, positions.reshape(B, A, self.n_dcm, 3)


    def pair_layout(self, num_atoms: int) -> str:
        """Pair layout used for molecules padded to ``num_atoms`` atoms.

        ``"dense"`` (all (B, A, A) pairs per molecule, batched contractions) unless
        ``message_passing`` says otherwise; ``"auto"`` switches to ``"neighbors"`` (a cutoff
        neighbour list of :attr:`neighbor_count` atoms, cost linear in atoms) above
        ``2 × neighbor_count`` atoms. ``"pairs"`` is e3x's flat pair list (the original
        implementation, kept as a reference).
        """
        mode = self.message_passing
        if mode not in ("auto", "dense", "neighbors", "pairs"):
            raise ValueError(f"message_passing must be auto, dense, neighbors or pairs, "
                             f"got {mode!r}")
        if mode == "auto":
            return "neighbors" if num_atoms > 2 * self.neighbor_count else "dense"
        return mode

    @property
    def neighbor_count(self) -> int:
        """Neighbours per atom of the cutoff list (``max_neighbors`` or the default)."""
        return int(self.max_neighbors) or default_max_neighbors(self.cutoff)

    def _basis(self, disp, ok):
        dtype = disp.dtype
        # Masked pairs get a safe displacement (unit length, inside the cutoff) so that
        # norms / spherical harmonics and their gradients stay finite; their basis is 0.
        safe = jnp.broadcast_to(jnp.asarray([1.0, 0.0, 0.0], dtype), disp.shape)
        disp = jnp.where(ok[..., None], disp, safe)
        basis = e3x.nn.basis(
            disp, max_degree=self.max_degree, num=self.num_basis_functions,
            radial_fn=e3x.nn.reciprocal_bernstein,
            cutoff_fn=functools.partial(e3x.nn.smooth_cutoff, cutoff=self.cutoff),
            cartesian_order=CARTESIAN_ORDER)  # (..., 1, (L+1)², K)
        return basis * ok[..., None, None, None].astype(dtype)

    def _factored_basis(self, disp, ok):
        """``(ylm, rbf)``: (..., (L+1)²) spherical harmonics (Racah) and (..., K) radial
        functions × cutoff (0 on masked pairs), the factors of :meth:`_basis`."""
        safe = jnp.broadcast_to(jnp.asarray([1.0, 0.0, 0.0], disp.dtype), disp.shape)
        disp = jnp.where(ok[..., None], disp, safe)
        rbf = e3x.nn.basis(  # degree 0 only: Y_0 = 1 (Racah), so this is e3x's radial part
            disp, max_degree=0, num=self.num_basis_functions,
            radial_fn=e3x.nn.reciprocal_bernstein,
            cutoff_fn=functools.partial(e3x.nn.smooth_cutoff, cutoff=self.cutoff),
            cartesian_order=CARTESIAN_ORDER)[..., 0, 0, :]
        norm = e3x.ops.norm(disp, axis=-1, keepdims=True)
        ylm = e3x.so3.spherical_harmonics(disp / jnp.where(norm > 0, norm, 1), self.max_degree,
                                          r_is_normalized=True, normalization="racah",
                                          cartesian_order=CARTESIAN_ORDER)
        return ylm, rbf * ok[..., None].astype(rbf.dtype)

    def _pairs_message_fn(self, Rf, mf, B, A):
        """e3x.nn.MessagePass over the flat list of all pairs (gather/scatter)."""
        dst_np, src_np = pair_indices(B, A)
        dst_idx, src_idx = jnp.asarray(dst_np), jnp.asarray(src_np)
        pair_ok = (mf[dst_idx] * mf[src_idx]) > 0  # (P,)
        basis = self._basis(Rf[src_idx] - Rf[dst_idx], pair_ok)

        def message(it, x):
            return e3x.nn.MessagePass(
                max_degree=self.max_degree, include_pseudotensors=True,
                cartesian_order=CARTESIAN_ORDER, name=f"message_{it}",
            )(x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=B * A,
              indices_are_sorted=True)
        return message

    def _dense_message_fn(self, R, mask, layout):
        """Per-molecule message passing (:class:`DenseMessagePass`, same parameters)."""
        B, A, _ = R.shape
        if layout == "dense":
            nb, overflow = None, None
            ok = mask[:, :, None] & mask[:, None, :] & ~jnp.eye(A, dtype=bool)[None]
            disp = R[:, None, :, :] - R[:, :, None, :]  # (B, A, A, 3): R_j − R_i
        else:
            nb, ok, overflow = cutoff_neighbors(R, mask, self.cutoff, self.neighbor_count)
            Rj = jax.vmap(lambda r, n: r[n])(R, nb)  # (B, A, M, 3)
            disp = Rj - R[:, :, None, :]
            if _is_concrete(overflow) and bool(np.any(np.asarray(overflow))):
                b = int(np.flatnonzero(np.asarray(overflow))[0])
                raise DataError(
                    f"molecule {b} of the batch has an atom with more than "
                    f"{self.neighbor_count} neighbours within the {self.cutoff} Å cutoff; "
                    "pass a larger max_neighbors to DCMNet (or message_passing='dense')")
        basis = self._factored_basis(disp, ok)

        def message(it, x):
            xb = x.reshape((B, A) + x.shape[1:])
            y = DenseMessagePass(max_degree=self.max_degree, include_pseudotensors=True,
                                 cartesian_order=CARTESIAN_ORDER,
                                 name=f"message_{it}")(xb, basis, nb)
            return y.reshape((B * A,) + y.shape[2:])
        return message, overflow


def create_model(n_dcm: int = _DEFAULTS.n_dcm, features: int = _DEFAULTS.features,
                 max_degree: int = _DEFAULTS.max_degree,
                 num_iterations: int = _DEFAULTS.num_iterations,
                 num_basis_functions: int = _DEFAULTS.num_basis_functions,
                 cutoff: float = _DEFAULTS.cutoff,
                 max_atomic_number: int = _DEFAULTS.max_atomic_number,
                 max_displacement: float = _DEFAULTS.max_displacement) -> DCMNet:
    """Builds a :class:`DCMNet` (parameters come from ``model.init``).

    Example:
        >>> model = create_model(n_dcm=2, features=32)
        >>> params = model.init(jax.random.PRNGKey(0), Z, R, atom_mask, net_charge)
        >>> charges, positions = model.apply(params, Z, R, atom_mask, net_charge)
    """
    if n_dcm < 1:
        raise ValueError(f"n_dcm must be ≥ 1, got {n_dcm}")
    if max_degree < 1:
        raise ValueError(f"max_degree must be ≥ 1, got {max_degree}")
    if cutoff <= 0 or max_displacement <= 0:
        raise ValueError("cutoff and max_displacement must be positive")
    return DCMNet(n_dcm=int(n_dcm), features=int(features), max_degree=int(max_degree),
                  num_iterations=int(num_iterations),
                  num_basis_functions=int(num_basis_functions), cutoff=float(cutoff),
                  max_atomic_number=int(max_atomic_number),
                  max_displacement=float(max_displacement))


def count_parameters(params: Any) -> int:
    """Total number of scalar parameters in a parameter pytree (e.g. ``model.init``'s)."""
    return int(sum(int(np.prod(np.shape(p))) for p in jax.tree_util.tree_leaves(params)))


def predict_batch(model, params, batch: Mapping[str, ArrayLike],
                  esp_chunk_size: int | None = None
                  ) -> dict[str, Float[Array | np.ndarray, "B ..."]]:
    """Model outputs and derived observables of a padded batch (the one batch forward pass
    of training, evaluation and prediction).

    Args:
        model, params: a :class:`DCMNet` (or anything with its ``apply``) and parameters.
        batch: a padded batch (:data:`dcmnet.data.batching.BATCH_SPEC`; needs ``Z``, ``R``,
            ``atom_mask``, ``net_charge``, ``grid``, ``grid_mask``, ``com``). Optional keys
            ``fragment`` (B, A) int and ``fragment_charge`` (B, A) e: each fragment's
            charges then sum to its own net charge
            (:func:`dcmnet.fragments.constrain_fragment_charges`).
        esp_chunk_size: grid points per ESP chunk (memory); None = all at once.

    Returns:
        dict with ``charges`` (B, A, n_dcm) e, ``positions`` (B, A, n_dcm, 3) Å, ``esp``
        (B, G) Hartree/e (0 on padded points), ``dipole`` (B, 3) e·Å about ``com``,
        ``atom_charges`` (B, A) e (sum over each atom's sites).
    """
    charges, positions = model.apply(params, batch["Z"], batch["R"], batch["atom_mask"],
                                     batch["net_charge"])
    if "fragment" in batch:  # several fragments per record: each keeps its own net charge
        charges = constrain_fragment_charges(charges, batch["atom_mask"], batch["fragment"],
                                             batch["fragment_charge"])
    q, x = flatten_sites(charges, positions)
    esp = esp_from_charges(q, x, batch["grid"], batch["grid_mask"], chunk_size=esp_chunk_size)
    dip = dipole_from_charges(q, x, batch["com"])
    return {"charges": charges, "positions": positions, "esp": esp, "dipole": dip,
            "atom_charges": charges.sum(-1)}
