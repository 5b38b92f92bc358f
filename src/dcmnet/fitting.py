"""ESP-fitted atomic monopoles: the point-charge baseline a DCM must beat.

For one molecule with atoms at ``R`` and reference ESP ``V`` on grid points ``r_k`` the
charges minimise ``sum_k (sum_j q_j B / |r_k - R_j| - V_k)^2`` subject to
``sum_j q_j = Q`` (net charge), solved exactly through the Lagrange (KKT) system
(Singh & Kollman, J. Comput. Chem. 5, 129 (1984); Bayly et al., J. Phys. Chem. 97,
10269 (1993), without the RESP restraint). ``B`` converts Å to Bohr so that the ESP is in
Hartree/e.
"""
from __future__ import annotations

import numpy as np

from dcmnet.errors import DataError
from dcmnet.units import ANGSTROM_TO_BOHR


def coulomb_matrix(points: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """(G, S) matrix ``1 / |points_k - sites_j|`` in 1/Bohr for coordinates in Å.

    Multiplying by charges in e gives the ESP in Hartree/e.
    """
    d = np.linalg.norm(points[:, None, :] - sites[None, :, :], axis=-1)
    return 1.0 / (d * ANGSTROM_TO_BOHR)


def fit_monopoles(R: np.ndarray, grid: np.ndarray, esp: np.ndarray, net_charge: float = 0.0,
                  restraint: float = 0.0) -> np.ndarray:
    """Least-squares atomic charges reproducing an ESP, with the net charge exact.

    Args:
        R: (N, 3) atomic positions, Å.
        grid: (G, 3) ESP points, Å (none may coincide with an atom).
        esp: (G,) reference ESP, Hartree/e.
        net_charge: total charge in e; the result sums to it to machine precision.
        restraint: optional harmonic restraint towards 0 (e⁻²·Hartree²·Bohr² units of the
            normal equations); 0 gives the plain constrained fit.
    Returns:
        (N,) charges in e, float64.
    Raises:
        DataError: a grid point sits on an atom, or fewer grid points than atoms.
    """
    R = np.asarray(R, np.float64).reshape(-1, 3)
    grid = np.asarray(grid, np.float64).reshape(-1, 3)
    esp = np.asarray(esp, np.float64).reshape(-1)
    n = R.shape[0]
    if grid.shape[0] < n:
        raise DataError(f"fit_monopoles: {grid.shape[0]} grid points cannot determine {n} "
                        "charges; give more ESP points.")
    d = np.linalg.norm(grid[:, None, :] - R[None, :, :], axis=-1)
    if (d < 1e-6).any():
        raise DataError("fit_monopoles: a grid point coincides with an atom.")
    A = 1.0 / (d * ANGSTROM_TO_BOHR)
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = A.T @ A + restraint * np.eye(n)
    kkt[:n, n] = 1.0
    kkt[n, :n] = 1.0
    rhs = np.concatenate([A.T @ esp, [float(net_charge)]])
    sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    q = sol[:n]
    # remove the tiny rounding drift so that the sum is the net charge to machine precision
    q += (float(net_charge) - q.sum()) / n
    return q


def monopole_esp(R: np.ndarray, q: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(G,) ESP in Hartree/e of point charges ``q`` (N,) e at ``R`` (N, 3) Å on ``grid`` (G, 3) Å."""
    return coulomb_matrix(np.asarray(grid, np.float64), np.asarray(R, np.float64)) @ np.asarray(q, np.float64)


# ------------------------------------------------------------------ atomic multipoles
#: Names of the multipole baselines by order (0: monopoles, 1: + dipoles, 2: + quadrupoles).
MULTIPOLE_BASELINES = {0: "fitted_monopoles", 1: "fitted_dipoles", 2: "fitted_quadrupoles"}


class IllPosedFitWarning(UserWarning):
    """A conformer has fewer ESP points than free parameters: its fit is skipped (NaN)."""


def multipole_parameter_count(n_atoms: int, order: int) -> int:
    """Fitted values of an atomic-multipole model: n_atoms × (1, 4, 9) for order 0, 1, 2.

    One of them is fixed by the net-charge constraint, so ``count − 1`` are free.
    """
    from dcmnet.electrostatics import MULTIPOLE_COMPONENTS

    return int(n_atoms) * MULTIPOLE_COMPONENTS[int(order)]


def constrained_lstsq(A: np.ndarray, b: np.ndarray, c: np.ndarray, d: float) -> np.ndarray:
    """``argmin |A x − b|`` subject to ``c·x = d`` (one linear equality), float64.

    Null-space method: ``x = x0 + Z y`` with ``x0 = d c/|c|²`` and ``Z`` an orthonormal
    basis of ``c``'s complement (from a QR factorisation), then an SVD least-squares solve
    for ``y`` (``numpy.linalg.lstsq``; rank-deficient problems get the minimum-norm ``y``).
    Working on ``A`` itself, not on the normal equations, keeps the precision of the fit
    (Golub & Van Loan, *Matrix Computations*, 4th ed., §6.2, least squares with linear
    equality constraints).

    Args:
        A: (G, P); b: (G,); c: (P,); d: scalar.
    Returns:
        (P,) solution with ``c·x = d`` to rounding.
    """
    A = np.asarray(A, np.float64)
    b = np.asarray(b, np.float64)
    c = np.asarray(c, np.float64)
    P = c.size
    x0 = c * (float(d) / float(c @ c))
    Qm, _ = np.linalg.qr(c.reshape(P, 1), mode="complete")
    Z = Qm[:, 1:]                                             # (P, P−1), orthogonal to c
    y = np.linalg.lstsq(A @ Z, b - A @ x0, rcond=None)[0]
    return x0 + Z @ y


def fit_multipoles(R: np.ndarray, grid: np.ndarray, esp: np.ndarray,
                   net_charge: float = 0.0, order: int = 2) -> dict:
    """Atomic point multipoles fitted to an ESP, with the net charge exact.

    Minimises ``Σ_k (V_model(r_k) − V_k)²`` over atomic charges (order ≥ 0), dipoles
    (order ≥ 1) and traceless Buckingham quadrupoles (order 2), subject to
    ``Σ_j q_j = Q`` (:func:`constrained_lstsq`); the model ESP is
    :func:`dcmnet.electrostatics.multipole_kernels` (Stone, *The Theory of Intermolecular
    Forces*). Order 0 is the same fit as :func:`fit_monopoles` (to rounding).

    Args:
        R: (N, 3) atoms, Å; grid: (G, 3) points, Å; esp: (G,) Hartree/e.
        net_charge: e. order: 0, 1 or 2.
    Returns:
        dict with ``charges`` (N,) e, ``dipoles`` (N, 3) e·Å (zeros below order 1),
        ``quadrupoles`` (N, 3, 3) traceless, e·Å² (zeros below order 2), ``esp`` (G,) the
        fitted model's ESP in Hartree/e, ``n_parameters`` (fitted values; one fewer are
        free).
    Raises:
        DataError: fewer grid points than free parameters (ill-posed; callers evaluating
            datasets skip such conformers with an :class:`IllPosedFitWarning`), or a grid
            point on an atom.
    """
    from dcmnet.electrostatics import MULTIPOLE_COMPONENTS, multipole_kernels

    R = np.asarray(R, np.float64).reshape(-1, 3)
    grid = np.asarray(grid, np.float64).reshape(-1, 3)
    esp = np.asarray(esp, np.float64).reshape(-1)
    n, K = R.shape[0], MULTIPOLE_COMPONENTS[int(order)]
    n_par = n * K
    if grid.shape[0] < n_par - 1:
        raise DataError(f"fit_multipoles (order {order}): {grid.shape[0]} grid points cannot "
                        f"determine {n_par - 1} free parameters ({n} atoms × {K} − 1 for the "
                        "net charge); give more ESP points or a lower order.")
    if (np.linalg.norm(grid[:, None, :] - R[None, :, :], axis=-1) < 1e-6).any():
        raise DataError("fit_multipoles: a grid point coincides with an atom.")
    T = multipole_kernels(grid, R, int(order))                 # (G, N, K)
    A = T.reshape(grid.shape[0], n_par)
    c = np.zeros(n_par)
    c[0::K] = 1.0                                              # Σ q = Q
    p = constrained_lstsq(A, esp, c, float(net_charge)).reshape(n, K)
    q = p[:, 0] + (float(net_charge) - p[:, 0].sum()) / n      # exact net charge
    dip = p[:, 1:4] if K >= 4 else np.zeros((n, 3))
    quad = np.zeros((n, 3, 3))
    if K == 9:
        xx, yy, xy, xz, yz = p[:, 4:9].T
        quad = np.stack([np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1),
                         np.stack([xz, yz, -xx - yy], -1)], -2)
    p[:, 0] = q
    return {"charges": q, "dipoles": dip, "quadrupoles": quad,
            "esp": A @ p.reshape(-1), "n_parameters": n_par}
