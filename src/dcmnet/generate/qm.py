"""Quantum-chemistry reference ESP with PySCF (optional extra ``dcmnet[qm]``).

One conformer: SCF (RKS/RHF, optionally density fitted), then the molecular ESP
V(r) = Σ_A Z_A/|r − R_A| − Σ_ij D_ij (ij|1/|r − r'|) on given points, the dipole about the
centre of mass, and ESP-fitted atomic charges with the net charge constrained
(:func:`dcmnet.fitting.fit_monopoles`). The electronic part uses PySCF's ``int1e_grids``
integrals (values of ∫ φ_i φ_j / |r − r'| at the points), evaluated in chunks so memory
stays bounded. All inputs and outputs are in Å, e, Hartree/e and e·Å; Bohr only inside.
"""
from __future__ import annotations

import time

import numpy as np

from dcmnet.errors import DataError, OptionalDependencyError
from dcmnet.fitting import fit_monopoles
from dcmnet.units import ANGSTROM_TO_BOHR, BOHR_TO_ANGSTROM

#: Methods understood by :func:`run_scf`: 'hf' or any PySCF XC functional name.
DEFAULT_METHOD = "b3lyp"
DEFAULT_BASIS = "def2-svp"


def _pyscf():
    try:
        import pyscf  # noqa: F401
        from pyscf import dft, gto, scf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OptionalDependencyError(
            "dcmnet generate needs PySCF and RDKit: pip install 'dcmnet[qm]'") from exc
    return gto, scf, dft


def build_molecule(Z, R, net_charge: int = 0, basis: str = DEFAULT_BASIS):
    """A PySCF ``Mole`` from atomic numbers (N,), positions (N, 3) Å and net charge (e).

    Raises:
        DataError: an odd number of electrons (open shell; only closed shells are supported).
    """
    gto, _, _ = _pyscf()
    Z = [int(z) for z in Z]
    n_elec = sum(Z) - int(net_charge)
    if n_elec % 2:
        raise DataError(f"molecule with Z={Z} and net charge {net_charge} has {n_elec} "
                        "electrons (open shell); give the correct net charge (only closed-shell "
                        "molecules are supported).")
    atom = [(z, tuple(float(x) for x in r)) for z, r in zip(Z, np.asarray(R, float))]
    return gto.M(atom=atom, unit="Angstrom", basis=basis, charge=int(net_charge), spin=0,
                 verbose=0)


def check_basis(element_sets, method: str = DEFAULT_METHOD, basis: str = DEFAULT_BASIS,
                density_fit: bool = True) -> None:
    """Check before any SCF that the basis (and the density-fitting auxiliary basis PySCF
    picks for it) covers every element, so a long run never aborts on one molecule.

    PySCF chooses the auxiliary basis per molecule from the orbital basis and the method
    (e.g. cc-pVDZ-JKFIT for HF/6-31G, which lacks Na), so each distinct element set is probed
    with its atoms 6 Å apart (builds the basis and the 3-index integrals; no SCF).

    Args:
        element_sets: iterable of iterables of atomic numbers (one per molecule).
    Raises:
        DataError: an element the basis or the auxiliary basis lacks (names the elements,
            the molecule's elements, and the fix: another --basis, or --no-density-fit).
    """
    import warnings

    gto, scf, dft = _pyscf()
    from ase.data import chemical_symbols

    for els in sorted({tuple(sorted({int(z) for z in e})) for e in element_sets}):
        names = " ".join(chemical_symbols[z] for z in els)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mol = gto.M(atom=[(z, (6.0 * i, 0.0, 0.0)) for i, z in enumerate(els)],
                            unit="Angstrom", basis=basis, spin=sum(els) % 2, verbose=0)
                if density_fit:
                    mf = scf.RHF(mol) if method.lower() in ("hf", "rhf") else dft.RKS(mol)
                    if method.lower() not in ("hf", "rhf"):
                        mf.xc = method
                    mf = mf.density_fit()
                    mf.with_df.build()
        except Exception as exc:  # noqa: BLE001 - PySCF raises several types (BasisNotFoundError, KeyError, RuntimeError)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            what = "auxiliary (density-fitting) basis" if "fit" in first.lower() else "basis"
            raise DataError(
                f"{method}/{basis}{' with density fitting' if density_fit else ''} cannot "
                f"treat a molecule with the elements {names}: {first} (the {what} lacks an "
                "element). Nothing was computed. Fix: choose a basis that covers every element "
                "(e.g. --basis def2-svp, which covers H-Rn)"
                + (", or pass --no-density-fit" if density_fit else "") + ".") from None


def run_scf(mol, method: str = DEFAULT_METHOD, density_fit: bool = True,
            grid_level: int = 1, conv_tol: float = 1e-9, max_cycle: int = 100):
    """Run a closed-shell SCF and return the converged PySCF object.

    Args:
        mol: PySCF ``Mole``.
        method: ``'hf'`` or a PySCF XC name (``'b3lyp'`` is PySCF's B3LYP, the VWN-RPA
            variant as in Gaussian).
        density_fit: use density fitting (RI-J) for the Coulomb term.
        grid_level: DFT integration grid level (1 changes the ESP by ~0.004 kcal/(mol·e)).
    Raises:
        DataError: the SCF did not converge.
    """
    _, scf, dft = _pyscf()
    if method.lower() in ("hf", "rhf"):
        mf = scf.RHF(mol)
    else:
        mf = dft.RKS(mol)
        mf.xc = method
        mf.grids.level = grid_level
    if density_fit:
        mf = mf.density_fit()
    mf.conv_tol = conv_tol
    mf.max_cycle = max_cycle
    mf.kernel()
    if not mf.converged:
        mf = mf.newton()
        mf.kernel()
    if not mf.converged:
        raise DataError(f"SCF ({method}/{mol.basis}) did not converge.")
    return mf


def esp_on_points(mol, dm: np.ndarray, points: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Total (nuclear + electronic) ESP of a molecule on points.

    Args:
        mol: PySCF ``Mole``.
        dm: (nao, nao) total one-particle density matrix (AO basis).
        points: (G, 3) in Å.
        chunk: points per ``int1e_grids`` call (memory ~ chunk × nao² × 8 bytes).
    Returns:
        (G,) ESP in Hartree/e.
    """
    pts_b = np.asarray(points, np.float64) * ANGSTROM_TO_BOHR
    coords = mol.atom_coords()  # Bohr
    charges = mol.atom_charges()
    d = np.linalg.norm(pts_b[:, None, :] - coords[None, :, :], axis=-1)
    v_nuc = (charges[None, :] / d).sum(axis=1)
    v_el = np.empty(len(pts_b))
    for s in range(0, len(pts_b), chunk):
        ints = mol.intor("int1e_grids", grids=pts_b[s:s + chunk])
        v_el[s:s + chunk] = np.einsum("gij,ij->g", ints, dm)
    return v_nuc - v_el


def dipole_about(mol, dm: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """(3,) dipole moment in e·Å of nuclei + electrons about ``origin`` (3,) Å."""
    o_b = np.asarray(origin, np.float64) * ANGSTROM_TO_BOHR
    with mol.with_common_orig(o_b):
        r_ints = mol.intor_symmetric("int1e_r", comp=3)
    el = np.einsum("xij,ji->x", r_ints, dm)
    nuc = (mol.atom_charges()[:, None] * (mol.atom_coords() - o_b)).sum(axis=0)
    return (nuc - el) * BOHR_TO_ANGSTROM


def compute_conformer(Z, R, net_charge: int, grid: np.ndarray, method: str = DEFAULT_METHOD,
                      basis: str = DEFAULT_BASIS, density_fit: bool = True,
                      grid_level: int = 1) -> dict:
    """Everything dcmnet stores for one conformer.

    Args:
        Z: (N,) atomic numbers; R: (N, 3) Å; net_charge: e; grid: (G, 3) ESP points in Å.
    Returns:
        dict with ``esp`` (G,) Hartree/e, ``dipole`` (3,) e·Å about the centre of mass,
        ``mono`` (N,) ESP-fitted charges in e (sum = net charge), ``energy`` (Hartree),
        ``seconds`` (wall time).
    """
    from ase.data import atomic_masses

    t0 = time.perf_counter()
    mol = build_molecule(Z, R, net_charge, basis)
    mf = run_scf(mol, method, density_fit, grid_level)
    dm = mf.make_rdm1()
    esp = esp_on_points(mol, dm, grid)
    m = atomic_masses[np.asarray(Z, int)]
    com = (m[:, None] * np.asarray(R, float)).sum(0) / m.sum()
    dip = dipole_about(mol, dm, com)
    from dcmnet.data.sanity import MAX_ESP_OUTSIDE
    if len(esp) and float(np.abs(esp).max()) > MAX_ESP_OUTSIDE:
        raise DataError(f"the computed ESP reaches {np.abs(esp).max():.3g} Hartree/e on the "
                        f"vdW shells (real molecules stay below {MAX_ESP_OUTSIDE:g}); the "
                        "geometry or the net charge is wrong; not written.")
    mono = fit_monopoles(R, grid, esp, net_charge)
    return {"esp": esp, "dipole": dip, "mono": mono, "energy": float(mf.e_tot),
            "seconds": time.perf_counter() - t0}
