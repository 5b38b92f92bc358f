"""An ASE calculator that gives DCM-net's charges, dipole and ESP for an ``ase.Atoms``.

Example::

    from ase.io import read
    from dcmnet.calculator import DCMNetCalculator

    atoms = read("methanol.xyz")
    atoms.calc = DCMNetCalculator("experiments/demo")
    q = atoms.get_charges()                   # (N,) e, per atom (sum over its sites)
    mu = atoms.get_dipole_moment()            # (3,) e·Å about the centre of mass
    sites_q = atoms.calc.get_distributed_charges()    # (N, n_dcm) e
    sites_x = atoms.calc.get_charge_positions()       # (N, n_dcm, 3) Å, absolute
    V = atoms.calc.get_electrostatic_potential(points)  # (P,) Hartree/e

The net charge is the calculator's ``charge`` argument if given, else taken from the
structure (``atoms.info['charge']``, ..., see :func:`dcmnet.predict.structure_charge`).
The charges sum to it exactly. The calculator computes no energy or forces.
"""
from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_EV, HARTREE_TO_KCAL_MOL

__all__ = ["DCMNetCalculator"]

_ESP_UNITS = {"hartree/e": 1.0, "kcal/(mol*e)": HARTREE_TO_KCAL_MOL, "V": HARTREE_TO_EV}


class DCMNetCalculator(Calculator):
    """ASE calculator for DCM-net distributed charges.

    Args:
        experiment: experiment or checkpoint folder; or None when ``model`` and ``params``
            are given.
        model, params: a :class:`dcmnet.model.DCMNet` and its parameters (instead of a
            folder).
        kind: ``best`` or ``latest`` checkpoint of an experiment folder.
        charge: net charge in e (default: from each structure).

    Properties (ASE names): ``charges`` (N,) e, ``dipole`` (3,) e·Å about the centre of
    mass. Extra results: ``distributed_charges`` (N, n_dcm) e, ``charge_positions``
    (N, n_dcm, 3) Å.

    Raises:
        CheckpointError: no usable checkpoint; DataError: an element the model does not
        know; ValueError: neither a folder nor a model given.
    """

    implemented_properties = ["charges", "dipole"]
    default_parameters: dict = {}

    def __init__(self, experiment=None, *, model=None, params=None, kind: str = "best",
                 charge: float | None = None, **kwargs):
        from dcmnet.predict import Predictor

        super().__init__(**kwargs)
        if experiment is not None:
            self.predictor = Predictor.from_experiment(experiment, kind=kind, batch_size=1)
        elif model is not None and params is not None:
            self.predictor = Predictor(model, params, batch_size=1)
        else:
            raise ValueError("DCMNetCalculator needs an experiment folder or model and params.")
        self.charge = charge

    @property
    def n_dcm(self) -> int:
        """Charge sites per atom."""
        return self.predictor.n_dcm

    def calculate(self, atoms=None, properties=("charges",), system_changes=all_changes):
        """Run DCM-net on ``atoms`` (ASE calls this; results are cached until atoms change)."""
        super().calculate(atoms, properties, system_changes)
        res = self.predictor.predict(self.atoms, charge=self.charge)
        self.results["charges"] = res.atom_charges.copy()
        self.results["dipole"] = res.dipole[0].copy()
        self.results["distributed_charges"] = res.charges.copy()
        self.results["charge_positions"] = res.positions.copy()
        self.results["net_charge"] = float(res.net_charge[0])

    def _get(self, name, atoms=None):
        atoms = atoms if atoms is not None else self.atoms
        if atoms is None:
            raise ValueError("attach the calculator to an Atoms object first (atoms.calc = ...)")
        if self.calculation_required(atoms, [name]) or name not in self.results:
            self.calculate(atoms, [name], self.check_state(atoms) or all_changes)
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
