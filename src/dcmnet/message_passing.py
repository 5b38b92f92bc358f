"""e3x layers as batched contractions (same parameters as e3x): message passing, Dense.

:class:`DenseMessagePass` computes exactly what ``e3x.nn.MessagePass`` (e3x 1.0.2, with
``use_fused_tensor=False``, ``use_basis_bias=False``) computes, with the same parameter
tree (``filter`` — an ``e3x.nn.Dense`` of the basis — and ``tensor/kernel`` — the kernel
of ``e3x.nn.Tensor``, same shape and initialiser), so checkpoints are interchangeable.
Only the order of the sums differs. e3x evaluates, for every pair (i, j),

    m_i[r, n, f] = Σ_j Σ_{l,q,m} F_ij[l, f] · x_j[q, m, f] · W[l, q, m, r, n, f]

(``F_ij = Dense(basis_ij)`` the filter, ``W`` the Tensor kernel expanded to the irrep
components, masked for parity and multiplied by the Clebsch–Gordan coefficients; see
``e3x.nn.modules.Tensor``). The tensor product is bilinear, so the sum over neighbours
``j`` can be taken first:

    T_i[l, q, m, f] = Σ_j F_ij[l, f] · x_j[q, m, f]        (batched matmul over j)
    m_i[r, n, f]    = Σ_{l,q,m} T_i[l, q, m, f] · W[l, q, m, r, n, f]   (once per atom)

which moves the expensive coupling with ``W`` from every pair to every atom (≈ A − 1 times
less work) and replaces e3x's index gather/scatter over the flattened pair list with dense
per-molecule contractions.

Two neighbour layouts, both per molecule:

* **dense**: ``j`` runs over all ``A`` atom slots of the molecule (``(B, A, A)`` pairs;
  masked pairs — padding and ``i = j`` — have a zero basis);
* **neighbour list**: ``j`` runs over ``M`` neighbours per atom given by ``(B, A, M)``
  indices (see :func:`cutoff_neighbors`); the work is linear in the number of atoms.

**Dense layers** (:class:`FusedDense`). e3x 1.0.2's ``Dense`` keeps one
``flax.linen.Dense`` per degree ℓ and parity p (children named ``"0+"``, ``"1+"``, …,
``"0-"``, … for features with pseudotensors; ``"0+"``, ``"1-"``, ``"2+"``, … without)
and applies them to slices of the input, then concatenates
and stacks the results: for ``max_degree`` 2 with pseudotensors that is six small matmuls,
six slices, two concatenations and a stack per layer, and as many again in the backward
pass. On CPU the train step is bound by the number of such small kernels
(BENCHMARKS.md, issue 13), so :class:`FusedDense` gathers the six kernels into one
``(P, (L+1)², F_in, F_out)`` block (the kernel of degree ℓ repeated for its 2ℓ + 1 orders)
and applies them with a single batched contraction; the bias is added to the ℓ = 0 even
channel only, as in e3x.

The parameter tree (names, shapes, initialisers, and the order in which each child draws
from the ``params`` RNG: kernel, then bias) is e3x's, so initial parameters are identical
for the same seed and checkpoints are interchangeable; the outputs agree to float rounding
(only the order of the additions may differ), which ``tests/test_fused_dense.py`` asserts.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import e3x
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from e3x import so3
from e3x.nn.modules import (_duplication_indices_for_max_degree, _make_tensor_product_mask,
                            default_tensor_kernel_init)

__all__ = ["DenseMessagePass", "cutoff_neighbors", "default_max_neighbors",
           "MAX_ATOM_DENSITY"]

#: Upper bound (atoms per Å³) on the density of atoms around any atom, used for the default
#: neighbour-list size; organic crystals have ≈ 0.10–0.15, diamond 0.18.
MAX_ATOM_DENSITY: float = 0.2


def default_max_neighbors(cutoff: float) -> int:
    """Neighbours per atom the cutoff list keeps by default: the atoms a sphere of radius
    ``cutoff`` (Å) holds at :data:`MAX_ATOM_DENSITY`, rounded up to a multiple of 8."""
    n = MAX_ATOM_DENSITY * 4.0 / 3.0 * math.pi * float(cutoff) ** 3
    return max(8, int(math.ceil(n / 8.0)) * 8)


def cutoff_neighbors(R: jax.Array, mask: jax.Array, cutoff: float, max_neighbors: int
                     ) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """The ``max_neighbors`` nearest real atoms of every real atom, within ``cutoff``.

    Args:
        R: (B, A, 3) positions, Å.
        mask: (B, A) bool, real atoms.
        cutoff: radius, Å; pairs at or beyond it carry a zero basis, so dropping them is exact.
        max_neighbors: M, neighbours kept per atom (static).

    Returns:
        ``(idx, ok, overflow)``: (B, A, M) int32 neighbour slots, (B, A, M) bool (a real
        neighbour within the cutoff), (B,) bool — some atom of the molecule has more than
        M neighbours inside the cutoff, so pairs would be lost (the caller must fail).
    """
    B, A, _ = R.shape
    diff = R[:, None, :, :] - R[:, :, None, :]
    d2 = jnp.sum(diff * diff, axis=-1)  # (B, A, A)
    pair = mask[:, :, None] & mask[:, None, :] & ~jnp.eye(A, dtype=bool)[None]
    inside = pair & (d2 < cutoff * cutoff)
    key = jnp.where(inside, d2, jnp.inf)
    neg, idx = jax.lax.top_k(-key, max_neighbors)  # nearest first
    ok = jnp.isfinite(neg)
    overflow = jnp.any(jnp.sum(inside, axis=-1) > max_neighbors, axis=-1)
    return idx.astype(jnp.int32), ok, overflow


class _TensorCoupling(nn.Module):
    """The kernel of ``e3x.nn.Tensor`` (same name, shape, initialiser) as a coupling array.

    Returns W (P1, (L1+1)², P2, (L2+1)², P3, (L3+1)², F) with
    ``W = mask · expand(kernel) · CG`` so that e3x's tensor product of ``a`` and ``b`` is
    ``einsum('...plf,...qmf,plqmrnf->...rnf', a, b, W)``.
    """

    max_degree: int
    include_pseudotensors: bool = True
    cartesian_order: bool = True

    @nn.compact
    def __call__(self, p1: int, l1: int, p2: int, l2: int, features: int) -> jax.Array:
        l3 = self.max_degree
        if l3 > l1 + l2:
            raise ValueError(f"max_degree {l3} exceeds {l1} + {l2}")
        include_pseudo = self.include_pseudotensors
        if p1 == p2 == 1 and (l1 == 0 or l2 == 0 or l3 == 0):
            include_pseudo = False
        p3 = 2 if include_pseudo else 1
        shape = (p1, l1 + 1, p2, l2 + 1, p3, l3 + 1, features)
        kernel = self.param("kernel", default_tensor_kernel_init, shape, jnp.float32)
        with jax.ensure_compile_time_eval():
            cg = so3.clebsch_gordan(l1, l2, l3, cartesian_order=self.cartesian_order)
            mask = (_make_tensor_product_mask(shape[:-1]) if not p1 == p2 == p3 == 2
                    else jnp.ones(shape[:-1] + (1,), jnp.float32))
            i1, i2, i3 = (_duplication_indices_for_max_degree(x) for x in (l1, l2, l3))
        k = kernel * mask
        k = jnp.take(k, i1, axis=1)
        k = jnp.take(k, i2, axis=3)
        k = jnp.take(k, i3, axis=5)
        return k * cg[None, :, None, :, None, :, None]


class DenseMessagePass(nn.Module):
    """``e3x.nn.MessagePass`` on per-molecule neighbour layouts (see module docstring).

    Attributes:
        max_degree: largest output degree.
        include_pseudotensors: as in e3x.
        cartesian_order: as in e3x (dcmnet passes True).

    Call with ``x`` (B, A, P, (L+1)², F) atom features, the pair basis in factored form
    ``(ylm, rbf)`` — ``ylm`` (B, A, M, (Lb+1)²) spherical harmonics of the pair directions
    and ``rbf`` (B, A, M, K) radial functions times the cutoff, zero for masked pairs; e3x's
    basis is their outer product ``ylm[..., None, :, None] * rbf[..., None, None, :]``
    (``e3x.nn.basis``) — and optionally ``neighbors`` (B, A, M) int32 atom slots of the
    neighbours; without it ``M = A`` and pair (i, j) sits at ``[b, i, j]``. Returns
    (B, A, P3, (max_degree+1)², F) messages.

    The filter ``Dense(basis)`` of e3x has one kernel per degree ℓ, so it factors as
    ``F_ij[l, f] = ylm_ij[l] · Σ_k rbf_ij[k] W_ℓ(l)[k, f]``: one matmul of the radial
    functions with the degree kernels repeated per component, times ``ylm``; no per-degree
    dots and no concatenation of degree blocks. In the dense layout every per-pair array
    is kept feature-major (:func:`_dense_messages`).
    """

    max_degree: int
    include_pseudotensors: bool = True
    cartesian_order: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, basis: Tuple[jax.Array, jax.Array],
                 neighbors: Optional[jax.Array] = None) -> jax.Array:
        B, A, P2, C2, F = x.shape
        ylm, rbf = basis
        Cb, K = ylm.shape[-1], rbf.shape[-1]
        l1 = int(round(math.sqrt(Cb))) - 1
        l2 = int(round(math.sqrt(C2))) - 1
        # The filter's kernels, created by e3x's own Dense (same names, shapes, initial
        # values) on a one-pair dummy basis; only its parameters are used.
        dense = e3x.nn.Dense(F, use_bias=False, name="filter")
        dense(jnp.zeros((1, 1, Cb, K), rbf.dtype))
        kernels = dense.variables["params"]
        names = sorted(kernels, key=lambda n: int(n[:-1]))  # '0+', '1-', '2+' by degree
        Wd = jnp.stack([kernels[n]["kernel"] for n in names], axis=1)  # (K, Lb+1, F)
        counts = np.array([2 * d + 1 for d in range(l1 + 1)])
        Wc = jnp.repeat(Wd, counts, axis=1, total_repeat_length=Cb)  # (K, Cb, F) per component
        W = _TensorCoupling(self.max_degree, self.include_pseudotensors,
                            self.cartesian_order, name="tensor")(1, l1, P2, l2, F)
        P3, C3 = W.shape[4], W.shape[5]
        C = P2 * C2
        Wm = W.reshape(Cb, C, P3 * C3, F)
        xc = x.reshape(B, A, C, F)
        if neighbors is None:
            return _dense_messages(ylm, rbf, Wc, xc, Wm).reshape(B, A, P3, C3, F)
        filters = ylm[..., None] * jnp.einsum("bimk,klf->bimlf", rbf, Wc)  # (B,A,M,Cb,F)
        xg = jax.vmap(lambda xb, nb: xb[nb])(xc, neighbors)  # (B, A, M, C, F)
        T = jnp.einsum("bimlf,bimcf->bilcf", filters, xg)
        out = jnp.einsum("bilcf,lcdf->bidf", T, Wm)
        return out.reshape(B, A, P3, C3, F)


def _dense_messages(ylm: jax.Array, rbf: jax.Array, Wc: jax.Array, xc: jax.Array,
                    Wm: jax.Array) -> jax.Array:
    """Messages of the dense layout with feature-major pair blocks (no strided transposes).

    ``ylm`` (B, A, A, Cb), ``rbf`` (B, A, A, K), ``Wc`` (K, Cb, F) filter kernels per
    component, ``xc`` (B, A, C, F) features, ``Wm`` (Cb, C, D, F) tensor coupling. Returns
    (B, A, D, F). Every per-pair array is laid out feature-major, (f, ..., j) with the
    pair index j contiguous, so that each contraction is a batched matmul whose batch axes
    already lead; the one reordering of a per-pair array, (f, l, b, i, j) → (f, b, i, l, j),
    moves contiguous runs of j instead of gathering the feature axis element by element.
    Same sums as the einsums of the neighbour layout.
    """
    B, A, _, Cb = ylm.shape
    F = xc.shape[-1]
    dn = jax.lax.dot_general
    radial = dn(jnp.transpose(Wc, (2, 1, 0)), rbf, (((2,), (3,)), ((), ())))  # (F,Cb,B,A,A)
    filters = radial * jnp.transpose(ylm, (3, 0, 1, 2))[None]  # (f, l, b, i, j)
    filters = jnp.transpose(filters, (0, 2, 3, 1, 4))  # (f, b, i, l, j)
    T = dn(filters, jnp.transpose(xc, (3, 0, 1, 2)),  # x as (f, b, j, c)
           (((4,), (2,)), ((0, 1), (0, 1))))  # (f, b, i, l, c)
    C = xc.shape[2]
    Wt = jnp.transpose(Wm, (3, 0, 1, 2)).reshape(F, Cb * C, -1)  # (f, (l, c), d)
    out = dn(T.reshape(F, B * A, Cb * C), Wt, (((2,), (1,)), ((0,), (0,))))  # (f, b·i, d)
    return jnp.transpose(out, (1, 2, 0)).reshape(B, A, -1, F)


#: e3x 1.0.2's default kernel initialiser (``e3x.nn.modules.default_kernel_init``).
_default_kernel_init = jax.nn.initializers.lecun_normal()


class _DegreeKernel(nn.Module):
    """The parameters of one e3x per-degree ``flax.linen.Dense`` (created, not applied)."""

    features: int
    use_bias: bool
    kernel_init: nn.initializers.Initializer
    param_dtype: jnp.dtype

    @nn.compact
    def __call__(self, in_features: int):
        kernel = self.param("kernel", self.kernel_init, (in_features, self.features),
                            self.param_dtype)
        bias = (self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
                if self.use_bias else None)
        return kernel, bias


class FusedDense(nn.Module):
    """Drop-in replacement for ``e3x.nn.Dense(features)`` (e3x 1.0.2, default options).

    Args (module attributes):
        features: output features F_out.
        use_bias: add a bias to the scalar (ℓ = 0, even) channel.
    Call:
        x: (..., P, (L+1)², F_in) equivariant features, P = 1 or 2 (with pseudotensors).
    Returns:
        (..., P, (L+1)², F_out), what ``e3x.nn.Dense`` returns for the same parameters.
    Raises:
        ValueError: ``x`` has no valid e3x feature shape (from e3x's own shape check).
    """

    features: int
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = _default_kernel_init
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        max_degree = e3x.nn.modules._extract_max_degree_and_check_shape(x.shape)
        parities = x.shape[-3]
        if parities == 2:
            names = [[f"{d}+" for d in range(max_degree + 1)],
                     [f"{d}-" for d in range(max_degree + 1)]]
        else:
            names = [[f"{d}{'+-'[d % 2]}" for d in range(max_degree + 1)]]
        kernels, bias = [], None
        for p, row in enumerate(names):
            per_degree = []
            for deg, name in enumerate(row):
                k, b = _DegreeKernel(self.features, self.use_bias and p == 0 and deg == 0,
                                     self.kernel_init, self.param_dtype, name=name)(x.shape[-1])
                per_degree.append(k)
                bias = b if b is not None else bias
            kernels.append(jnp.stack(per_degree))  # (L+1, F_in, F_out)
        degree_of = e3x.nn.modules._duplication_indices_for_max_degree(max_degree)
        w = jnp.take(jnp.stack(kernels), degree_of, axis=1)  # (P, (L+1)², F_in, F_out)
        y = jnp.einsum("...pmf,pmfg->...pmg", x, w)
        if bias is not None:
            y = y.at[..., 0, 0, :].add(bias)
        return y
