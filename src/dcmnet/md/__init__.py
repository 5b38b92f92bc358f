"""Molecular simulation with DCM-net charges: electrostatic energy, forces and stress.

* :mod:`dcmnet.md.energy` — pure-JAX Coulomb energy between the distributed charges of
  different molecules and with external point charges (minimum image, shifted-force or
  reaction-field cutoff for periodic cells);
* :mod:`dcmnet.md.molecules` — molecules from ``atoms.arrays["mol_id"]`` or covalent
  connectivity, net charge per molecule;
* :mod:`dcmnet.md.system` — :class:`DCMSystem`: DCM-net over many molecules, energy and its
  gradients by autodiff through the network.

The ASE calculator is :class:`dcmnet.md.calculator.DCMNetCalculator`; exports for MD engines are
in :mod:`dcmnet.export.openmm` and :mod:`dcmnet.export.charmm`.
"""
from dcmnet.md.energy import METHODS, coulomb_energy
from dcmnet.md.molecules import find_molecules, molecule_charges, molecule_ids
from dcmnet.md.system import DCMSystem

__all__ = ["coulomb_energy", "METHODS", "find_molecules", "molecule_ids", "molecule_charges",
           "DCMSystem"]
