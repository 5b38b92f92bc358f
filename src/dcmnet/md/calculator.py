"""An ASE calculator with DCM-net's charges, dipole, ESP and electrostatic energy and forces.

Example::

    from ase.io import read
    from dcmnet.md.calculator import DCMNetCalculator

    atoms = read("methanol.xyz")
    atoms.calc = DCMNetCalculator("experiments/demo")
    q = atoms.get_charges()                   # (N,) e, per atom (sum over its sites)
    mu = atoms.get_dipole_moment()            # (3,) e·Å about the centre of mass
    sites_q = atoms.calc.get_distributed_charges()    # (N, n_dcm) e
    sites_x = atoms.calc.get_charge_positions()       # (N, n_dcm, 3) Å, absolute
    V = atoms.calc.get_electrostatic_potential(points)  # (P,) Hartree/e
    E = atoms.get_potential_energy()          # eV, electrostatics between molecules
    F = atoms.get_forces()                    # (N, 3) eV/Å, autodiff through DCM-net

Molecules: ``atoms.arrays["mol_id"]`` if present, else covalent connectivity
(:mod:`dcmnet.md.molecules`); each molecule is its own DCM-net prediction, and its charges
sum to its net charge exactly. Net charges: the calculator's ``charge`` argument (one number
for one molecule, else one per molecule), else ``atoms.info["mol_charges"]``, else from the
structure (``atoms.info['charge']``, ..., see :func:`dcmnet.md.molecules.molecule_charges`).

Energy (eV; ``get_energy_kcal_mol`` in kcal/mol): the Coulomb energy of the charges of
*different* molecules and of all charges with the optional ``external_charges=(q, positions)``
(an MM environment; :func:`dcmnet.md.energy.coulomb_energy`). Pairs inside one molecule are
excluded, so a single molecule without external charges has energy 0: the calculator gives
the electrostatic part only. Add bonded and Lennard-Jones terms with
``ase.calculators.mixing.SumCalculator([DCMNetCalculator(...), other])`` (docs/md.md).
Periodic cells (``atoms.pbc`` all True) need ``cutoff`` (Å): minimum image with shifted-force
(default) or reaction-field electrostatics, and ``stress`` is available.
"""
from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from dcmnet.data.dataset import centre_of_mass
from dcmnet.errors import ConfigError
from dcmnet.units import (EANGSTROM_TO_DEBYE, EV_TO_KCAL_MOL, HARTREE_TO_EV,
                          HARTREE_TO_KCAL_MOL)

__all__ = ["DCMNetCalculator"]

_ESP_UNITS = {"hartree/e": 1.0, "kcal/(mol*e)": HARTREE_TO_KCAL_MOL, "V": HARTREE_TO_EV}
_ENERGY_PROPS = ("energy", "free_energy", "forces", "stress")


class DCMNetCalculator(Calculator):
    """ASE calculator for DCM-net distributed charges and their electrostatic energy.

    Args:
        experiment: experiment or checkpoint folder (or a shipped model's name); or None
            when ``model`` and ``params`` are given.
        model, params: a :class:`dcmnet.model.DCMNet` and its parameters (instead of a
            folder).
        kind: ``best`` or ``latest`` checkpoint of an experiment folder.
        charge: net charge in e: one number (one molecule, or 0 for all neutral) or one per
            molecule (default: from each structure).
        external_charges: ``(q, positions)``, (K,) e and (K, 3) Å, fixed point charges
            interacting with every charge site (no exclusions); their forces are
            :meth:`get_external_forces`. Change them with :meth:`set_external_charges`.
        cutoff: real-space cutoff, Å (required for periodic cells).
        method: ``coulomb`` (no cutoff), ``shifted-force`` (default with a cutoff) or
            ``reaction-field`` (see :mod:`dcmnet.md.energy`); epsilon_rf: its dielectric.
        bond_mult: factor on covalent radii for finding molecules by connectivity.

    Properties (ASE names): ``energy``/``free_energy`` eV, ``forces`` (N, 3) eV/Å,
    ``stress`` (6,) eV/Å³ (periodic only), ``charges`` (N,) e, ``dipole`` (3,) e·Å about the
    centre of mass. Extra results: ``distributed_charges`` (N, n_dcm) e,
    ``charge_positions`` (N, n_dcm, 3) Å (molecules made whole across periodic boundaries),
    ``external_forces`` (K, 3) eV/Å, ``mol_id`` (N,), ``mol_charges`` (M,) e.

    Raises:
        CheckpointError: no usable checkpoint; DataError: an element the model does not
        know, charges that do not fit the molecules; ConfigError: a periodic cell without a
        valid cutoff, or a partly periodic cell; ValueError: neither a folder nor a model.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "charges",
                              "dipole"]
    default_parameters: dict = {}

    def __init__(self, experiment=None, *, model=None, params=None, kind: str = "best",
                 charge=None, external_charges=None, cutoff: float | None = None,
                 method: str | None = None, epsilon_rf: float | None = None,
                 bond_mult: float | None = None, **kwargs):
        from dcmnet.md.energy import DEFAULT_EPSILON_RF, check_cutoff
        from dcmnet.md.molecules import BOND_MULT

        super().__init__(**kwargs)
        if experiment is not None:
            from dcmnet.training.experiment import load_experiment

            _, model, params, _ = load_experiment(experiment, kind=kind)
        elif model is None or params is None:
            raise ValueError("DCMNetCalculator needs an experiment folder or model and params.")
        self.model, self.params = model, params
        self.charge = charge
        self.cutoff = None if cutoff is None else float(cutoff)
        self.method = method or ("shifted-force" if cutoff is not None else "coulomb")
        check_cutoff(None, None, self.cutoff, self.method)
        self.epsilon_rf = DEFAULT_EPSILON_RF if epsilon_rf is None else float(epsilon_rf)
        self.bond_mult = BOND_MULT if bond_mult is None else float(bond_mult)
        self.external_charges = None
        self.set_external_charges(external_charges)
        self._system = None
        self._system_key = None

    @property
    def n_dcm(self) -> int:
        """Charge sites per atom."""
        return int(self.model.n_dcm)

    def set_external_charges(self, external_charges) -> None:
        """Replace the external point charges: ``(q (K,) e, positions (K, 3) Å)`` or None."""
        from dcmnet.md.system import as_external_charges

        self.external_charges = as_external_charges(external_charges)
        self.reset()

    def _get_system(self, atoms):
        from dcmnet.md.molecules import molecule_charges, molecule_ids
        from dcmnet.md.system import DCMSystem

        mol = molecule_ids(atoms, mult=self.bond_mult)
        qm = molecule_charges(atoms, mol, self.charge)
        key = (tuple(atoms.numbers), tuple(mol), tuple(qm))
        if key != self._system_key:
            self._system = DCMSystem(self.model, self.params, atoms.numbers, mol, qm,
                                     cutoff=self.cutoff, method=self.method,
                                     epsilon_rf=self.epsilon_rf)
            self._system_key = key
        return self._system

    def calculate(self, atoms=None, properties=("charges",), system_changes=all_changes):
        """Run DCM-net (and the energy when asked) on ``atoms`` (ASE calls this; results are
        cached until the atoms change)."""
        from ase.stress import full_3x3_to_voigt_6_stress

        from dcmnet.md.molecules import unwrap_molecules

        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = np.asarray(atoms.pbc, bool)
        if pbc.any() and not pbc.all():
            raise ConfigError(f"atoms.pbc = {pbc.tolist()}: partly periodic cells are not "
                              "supported; use pbc=True (with a cutoff) or pbc=False.")
        periodic = bool(pbc.all())
        if periodic and self.cutoff is None:
            raise ConfigError("the structure is periodic (atoms.pbc is True): give a cutoff "
                              "in Å, e.g. DCMNetCalculator(..., cutoff=9.0), or set "
                              "atoms.pbc = False.")
        system = self._get_system(atoms)
        cell = np.asarray(atoms.cell[:], np.float64)
        R = atoms.positions
        if periodic:
            R = R + unwrap_molecules(R, cell, pbc, system.mol) @ cell
        if any(p in _ENERGY_PROPS for p in properties):
            out = system.compute(R, cell=cell if periodic else None,
                                 external_charges=self.external_charges,
                                 stress=periodic and "stress" in properties)
            self.results["energy"] = out["energy"]
            self.results["free_energy"] = out["energy"]
            self.results["forces"] = out["forces"]
            self.results["external_forces"] = out["external_forces"]
            if "stress" in out:
                self.results["stress"] = full_3x3_to_voigt_6_stress(out["stress"])
            q, x = out["charges"], out["positions"]
        else:
            q, x = system.predict_sites(R)
        com = centre_of_mass(atoms.numbers, R)
        self.results["charges"] = q.sum(axis=1)
        self.results["dipole"] = (q[..., None] * (x - com)).sum(axis=(0, 1))
        self.results["distributed_charges"] = q
        self.results["charge_positions"] = x
        self.results["mol_id"] = system.mol.copy()
        self.results["mol_charges"] = system.net_charges.copy()
        self.results["net_charge"] = float(system.net_charges.sum())

    def get_stress(self, atoms=None):
        """Stress (6,) eV/Å³ (Voigt order, ASE sign); periodic cells only.

        Raises:
            ConfigError: the structure is not periodic.
        """
        atoms = atoms if atoms is not None else self.atoms
        if atoms is not None and not np.asarray(atoms.pbc).all():
            raise ConfigError("stress needs a periodic cell (atoms.pbc = True and a cutoff).")
        return self.get_property("stress", atoms)

    def get_external_forces(self, atoms=None) -> np.ndarray:
        """(K, 3) forces on the external charges, eV/Å."""
        return self._get("external_forces", atoms)

    def get_energy_kcal_mol(self, atoms=None) -> float:
        """Electrostatic energy in kcal/mol."""
        return float(self._get("energy", atoms)) * EV_TO_KCAL_MOL

    def get_molecule_ids(self, atoms=None) -> np.ndarray:
        """(N,) molecule index of every atom (0 … M−1)."""
        return self._get("mol_id", atoms)

    def _get(self, name, atoms=None):
        atoms = atoms if atoms is not None else self.atoms
        if atoms is None:
            raise ValueError("attach the calculator to an Atoms object first (atoms.calc = ...)")
        props = ["energy", "forces"] if name in ("energy", "external_forces") else [name]
        if self.calculation_required(atoms, [name]) or name not in self.results:
            self.calculate(atoms, props, self.check_state(atoms) or all_changes)
        return self.results[name]

    def get_distributed_charges(self, atoms=None) -> np.ndarray:
        """(N, n_dcm) charges of every atom's sites, e."""
        return self._get("distributed_charges", atoms)

    def get_charge_positions(self, atoms=None) -> np.ndarray:
        """(N, n_dcm, 3) absolute positions of the charge sites, Å."""
        return self._get("charge_positions", atoms)

    def get_dipole_debye(self, atoms=None) -> np.ndarray:
        """(3,) dipole about the centre of mass, Debye."""
        return self._get("dipole", atoms) * EANGSTROM_TO_DEBYE

    def get_electrostatic_potential(self, points, atoms=None, unit: str = "hartree/e"
                                    ) -> np.ndarray:
        """ESP of the distributed charges at arbitrary points.

        ``V(r) = Σ_j q_j / |r − x_j|`` (atomic units, distances Å→Bohr), computed in float64
        from the predicted sites.

        Args:
            points: (P, 3) points, Å (a point on a charge site contributes 0 from it).
            unit: ``hartree/e`` (default), ``kcal/(mol*e)`` or ``V``.
        Returns:
            (P,) ESP in ``unit``.
        Raises:
            ValueError: unknown unit or points not of shape (P, 3).
        """
        from dcmnet.units import ANGSTROM_TO_BOHR

        if unit not in _ESP_UNITS:
            raise ValueError(f"unknown ESP unit {unit!r}; choose one of {', '.join(_ESP_UNITS)}")
        pts = np.asarray(points, np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must have shape (P, 3), got {pts.shape}")
        q = self.get_distributed_charges(atoms).reshape(-1)
        x = self.get_charge_positions(atoms).reshape(-1, 3)
        d = np.linalg.norm(pts[:, None, :] - x[None, :, :], axis=-1)
        with np.errstate(divide="ignore"):
            inv = np.where(d > 1e-6, 1.0 / (d * ANGSTROM_TO_BOHR), 0.0)
        return (inv @ q) * _ESP_UNITS[unit]
