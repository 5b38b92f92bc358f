"""DCM-net charges of a many-molecule system as a differentiable function of the nuclei.

:class:`DCMSystem` packs the molecules of a system into one padded batch (one molecule per
row), runs DCM-net (the same ``model.apply`` the training uses) and returns the charge
sites; :meth:`DCMSystem.compute` adds the Coulomb energy of :mod:`dcmnet.md.energy` and its
gradients by autodiff: forces on every nucleus include the dependence of the predicted
charges *and* site positions on the nuclear coordinates; forces on external charges; and,
for periodic cells, the stress from the derivative of the energy w.r.t. a homogeneous strain
of atoms, external charges and cell (the model sees the strained molecules).

Precision: with JAX's x64 mode on, the parameters are cast to float64 and everything runs in
float64 except the network's own float32 cast of its input coordinates (in
:mod:`dcmnet.model`); each molecule enters the network relative to its first atom (small
numbers: ~1e-7 Å rounding), and the predicted displacements of the sites are added to the
full-precision nuclear positions, so absolute coordinates in a large box lose nothing.
Without x64 everything is float32.
"""
from __future__ import annotations

import numpy as np

from dcmnet.errors import DataError
from dcmnet.md.energy import DEFAULT_EPSILON_RF, check_cutoff, coulomb_energy

__all__ = ["DCMSystem"]


class DCMSystem:
    """A fixed set of molecules (atomic numbers, molecule index, net charges) and a model.

    Args:
        model, params: :class:`dcmnet.model.DCMNet` and its parameters.
        Z: (N,) atomic numbers; mol: (N,) molecule index 0 … M−1 of every atom;
        net_charges: (M,) e.
        cutoff, method, epsilon_rf: electrostatics, see :func:`dcmnet.md.energy.coulomb_energy`.
        block_size: sites per block of the pair sum.
    Raises:
        DataError: elements the model does not know, inconsistent shapes.
        ConfigError: bad method/cutoff.
    """

    def __init__(self, model, params, Z, mol, net_charges, *, cutoff: float | None = None,
                 method: str | None = None, epsilon_rf: float = DEFAULT_EPSILON_RF,
                 block_size: int = 1024):
        from dcmnet.model import check_atomic_numbers

        Z = np.asarray(Z, np.int32)
        mol = np.asarray(mol, np.int64)
        if mol.shape != Z.shape:
            raise DataError(f"molecule indices {mol.shape} do not match atoms {Z.shape}")
        check_atomic_numbers(Z, model.max_atomic_number)
        self.model, self.params = model, params
        self.Z, self.mol = Z, mol
        self.M = int(mol.max()) + 1
        self.net_charges = np.asarray(net_charges, np.float64).reshape(-1)
        if self.net_charges.shape != (self.M,):
            raise DataError(f"{self.net_charges.size} net charges for {self.M} molecules")
        self.cutoff = None if cutoff is None else float(cutoff)
        self.method = method or ("shifted-force" if cutoff is not None else "coulomb")
        self.epsilon_rf = float(epsilon_rf)
        self.block_size = int(block_size)
        check_cutoff(None, None, self.cutoff, self.method)
        counts = np.bincount(mol, minlength=self.M)
        A = int(counts.max())
        idx = np.full((self.M, A), -1, np.int64)
        for m in range(self.M):
            at = np.flatnonzero(mol == m)
            idx[m, :len(at)] = at
        self.idx = idx                                       # (M, A), -1 = padding
        self.atom_mask = (idx >= 0)
        self.n_dcm = int(model.n_dcm)
        self._fns: dict = {}
        self._cast: dict = {}

    # ------------------------------------------------------------------ sites
    def _params(self, dtype):
        """Parameters in ``dtype`` (float64 under x64, so the network runs in float64 after
        its float32 input cast)."""
        import jax
        import jax.numpy as jnp

        key = str(dtype)
        if key not in self._cast:
            self._cast[key] = jax.tree_util.tree_map(
                lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.asarray(a).dtype,
                                                                  jnp.floating) else a,
                self.params)
        return self._cast[key]

    def sites(self, R, params=None):
        """Charges and sites of all molecules (JAX, differentiable w.r.t. ``R``).

        Args:
            R: (N, 3) nuclear positions, Å (each molecule whole; see
                :func:`dcmnet.md.molecules.unwrap_molecules`).
        Returns:
            ``(q, x)``: (N, n_dcm) e and (N, n_dcm, 3) Å, in atom order.
        """
        import jax.numpy as jnp

        R = jnp.asarray(R)
        safe = np.where(self.atom_mask, self.idx, 0)
        m = jnp.asarray(self.atom_mask, R.dtype)[..., None]
        Rb = R[safe] * m                                     # (M, A, 3)
        local = (Rb - Rb[:, :1, :]) * m
        local32 = local.astype(jnp.float32)
        params = self._params(R.dtype) if params is None else params
        q, pos = self.model.apply(params, jnp.asarray(np.where(self.atom_mask,
                                                                    self.Z[safe], 0)),
                                  local32, jnp.asarray(self.atom_mask, jnp.float32),
                                  jnp.asarray(self.net_charges, jnp.float32))
        d = (pos - local32[:, :, None, :]).astype(R.dtype)   # site displacements, Å
        x = Rb[:, :, None, :] + d                            # (M, A, n_dcm, 3)
        # back to atom order (every atom appears exactly once in idx)
        flat = self.idx.reshape(-1)
        order = np.argsort(np.where(flat >= 0, flat, flat.size + 1), kind="stable")
        order = order[:len(self.Z)]
        qa = q.reshape(-1, self.n_dcm)[order].astype(R.dtype)
        xa = x.reshape(-1, self.n_dcm, 3)[order]
        return qa, xa

    def energy(self, R, ext_q=None, ext_x=None, cell=None, strain=None, params=None,
               orthorhombic: bool | None = None):
        """Electrostatic energy (eV) as a JAX function of the nuclear positions ``R`` (N, 3)
        Å, external charges ``ext_q`` (K,) e at ``ext_x`` (K, 3) Å and the cell (3, 3) Å;
        ``strain`` (3, 3) deforms atoms, external charges and cell by ``(I + strain)``."""
        import jax.numpy as jnp

        R = jnp.asarray(R)
        if strain is not None:
            F = jnp.eye(3, dtype=R.dtype) + strain
            R = R @ F
            ext_x = None if ext_x is None else jnp.asarray(ext_x) @ F
            cell = None if cell is None else jnp.asarray(cell) @ F
        q, x = self.sites(R, params)
        site_mol = np.repeat(self.mol, self.n_dcm)
        return coulomb_energy(q.reshape(-1), x.reshape(-1, 3), site_mol, ext_q, ext_x,
                              cell=cell, cutoff=self.cutoff, method=self.method,
                              epsilon_rf=self.epsilon_rf, block_size=self.block_size,
                              orthorhombic=None if strain is not None else orthorhombic)

    def predict_sites(self, R) -> tuple[np.ndarray, np.ndarray]:
        """Charges (N, n_dcm) e and sites (N, n_dcm, 3) Å for positions ``R`` (N, 3) Å
        (NumPy in and out; no gradients)."""
        import jax
        import jax.numpy as jnp

        dt = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        if "sites" not in self._fns:
            self._fns["sites"] = jax.jit(lambda p, R: self.sites(R, p))
        q, x = jax.device_get(self._fns["sites"](self._params(dt),
                                                 jnp.asarray(np.asarray(R, np.float64), dt)))
        return np.asarray(q, np.float64), np.asarray(x, np.float64)

    # ------------------------------------------------------------------ compute
    def _fn(self, periodic: bool, n_ext: int, stress: bool, ortho: bool = False):
        import jax

        key = (periodic, n_ext, stress, ortho)
        if key not in self._fns:
            def f(params, R, ext_q, ext_x, cell):
                def e(R, ext_x, strain):
                    return self.energy(R, ext_q if n_ext else None, ext_x if n_ext else None,
                                       cell if periodic else None,
                                       strain if stress else None, params,
                                       orthorhombic=ortho and not stress)
                zero = jax.numpy.zeros((3, 3), R.dtype)
                E, (gR, gX, gS) = jax.value_and_grad(e, argnums=(0, 1, 2))(R, ext_x, zero)
                q, x = self.sites(R, params)
                return E, gR, gX, gS, q, x
            self._fns[key] = jax.jit(f)
        return self._fns[key]

    def compute(self, R, cell=None, external_charges=None, stress: bool = False) -> dict:
        """Energy, forces (and stress) for positions ``R`` (N, 3) Å.

        Args:
            cell: (3, 3) Å for a periodic system (needs a cutoff), else None.
            external_charges: ``(q, positions)``: (K,) e and (K, 3) Å, or None.
            stress: also compute the stress (periodic only).
        Returns:
            dict of NumPy arrays: ``energy`` eV, ``forces`` (N, 3) eV/Å, ``external_forces``
            (K, 3) eV/Å, ``stress`` (3, 3) eV/Å³ (``(1/V) ∂E/∂ε``, ASE's sign) when asked,
            ``charges`` (N, n_dcm) e, ``positions`` (N, n_dcm, 3) Å.
        Raises:
            ConfigError: periodic cell without a valid cutoff; DataError: bad shapes.
        """
        import jax
        import jax.numpy as jnp

        R = np.asarray(R, np.float64)
        if R.shape != (len(self.Z), 3):
            raise DataError(f"positions must have shape ({len(self.Z)}, 3), got {R.shape}")
        periodic = cell is not None
        if periodic:
            check_cutoff(cell, [True] * 3, self.cutoff, self.method)
        external_charges = as_external_charges(external_charges)
        if external_charges is not None:
            eq, ex = external_charges
        else:
            eq, ex = np.zeros(0), np.zeros((0, 3))
        dt = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        c = np.asarray(cell, np.float64) if periodic else np.eye(3)
        ortho = bool(periodic and np.all(c == np.diag(np.diag(c))))
        fn = self._fn(periodic, len(eq), bool(stress and periodic), ortho)
        E, gR, gX, gS, q, x = jax.device_get(
            fn(self._params(dt), jnp.asarray(R, dt), jnp.asarray(eq, dt), jnp.asarray(ex, dt),
               jnp.asarray(c, dt)))
        out = {"energy": float(E), "forces": -np.asarray(gR, np.float64),
               "external_forces": -np.asarray(gX, np.float64),
               "charges": np.asarray(q, np.float64), "positions": np.asarray(x, np.float64)}
        if stress and periodic:
            out["stress"] = np.asarray(gS, np.float64) / abs(np.linalg.det(c))
        return out


def as_external_charges(external_charges):
    """Check and convert ``(q (K,) e, positions (K, 3) Å)`` to float64 arrays (None stays).

    Raises:
        DataError: the positions do not have shape (K, 3).
    """
    if external_charges is None:
        return None
    q = np.asarray(external_charges[0], np.float64).reshape(-1)
    x = np.asarray(external_charges[1], np.float64)
    if x.shape != (len(q), 3):
        raise DataError(f"external_charges: {len(q)} charges but positions of shape "
                        f"{x.shape}; give (q (K,), positions (K, 3) Å).")
    return q, x
