"""ESP sampling points on nested van der Waals (vdW) shells.

Points are spread on spheres of radius ``scale × r_vdW(Z)`` around every atom with a
golden-angle (Fibonacci) spiral at about ``density`` points per Å²; points that fall inside
any other atom's sphere of the same scale are removed, which leaves the molecular surface at
that scale (Connolly-type, as in Merz–Kollman / RESP sampling: Singh & Kollman,
J. Comput. Chem. 5, 129 (1984)). Shells 1.4, 1.6, 1.8 and 2.0 × vdW radius are the
Merz–Kollman default. Radii are ASE's ``ase.data.vdw_radii``, which for H, C, N, O, F, P, S,
Cl are Bondi's (J. Phys. Chem. 68, 441 (1964)).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ase.data import chemical_symbols, vdw_radii

from dcmnet.errors import DataError

#: Default shell scales (× vdW radius), Merz–Kollman.
DEFAULT_SHELLS: tuple[float, ...] = (1.4, 1.6, 1.8, 2.0)
#: Default point density on each shell, points per Å².
DEFAULT_DENSITY: float = 1.0


def _vdw_radius(z: int) -> float:
    r = float(vdw_radii[z]) if 0 < z < len(vdw_radii) else float("nan")
    if not np.isfinite(r):
        sym = chemical_symbols[z] if 0 < z < len(chemical_symbols) else str(z)
        raise DataError(f"no van der Waals radius known for element {sym} (Z={z}).")
    return r


def fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) nearly uniform unit vectors on the sphere (golden-angle spiral)."""
    n = max(int(n), 1)
    i = np.arange(n) + 0.5
    cos_t = 1.0 - 2.0 * i / n
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def vdw_shell_points(Z: Sequence[int], R: np.ndarray,
                     shells: Sequence[float] = DEFAULT_SHELLS,
                     density: float = DEFAULT_DENSITY) -> np.ndarray:
    """ESP points on nested vdW shells of a molecule.

    Args:
        Z: (N,) atomic numbers.
        R: (N, 3) positions, Å.
        shells: scale factors of the vdW radii, one surface per factor.
        density: points per Å² on each shell.
    Returns:
        (G, 3) points in Å, float64, ordered shell by shell.
    Raises:
        DataError: an element without a known vdW radius, or no point survives.
    """
    Z = np.asarray(Z, dtype=int)
    R = np.asarray(R, dtype=np.float64).reshape(-1, 3)
    radii = np.array([_vdw_radius(int(z)) for z in Z])
    out = []
    for s in shells:
        rs = s * radii
        for i in range(len(Z)):
            n = int(np.ceil(density * 4.0 * np.pi * rs[i] ** 2))
            pts = R[i] + rs[i] * fibonacci_sphere(n)
            d = np.linalg.norm(pts[:, None, :] - R[None, :, :], axis=-1)
            inside = (d < rs[None, :] - 1e-9)
            inside[:, i] = False
            out.append(pts[~inside.any(axis=1)])
    pts = np.concatenate(out) if out else np.zeros((0, 3))
    if pts.shape[0] == 0:
        raise DataError("vdW shells left no ESP points outside the molecule.")
    return pts
