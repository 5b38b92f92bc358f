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
