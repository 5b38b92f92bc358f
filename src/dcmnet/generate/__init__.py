"""Reference-data generation with PySCF and RDKit (optional extra ``dcmnet[qm]``).

``dcmnet generate`` turns SMILES or structure files into a canonical ESP dataset:
conformers (RDKit), SCF (PySCF), ESP on vdW shells, dipole and ESP-fitted charges.
"""
from dcmnet.generate.runner import GenerateSettings, merge, plan_jobs, run_jobs

__all__ = ["GenerateSettings", "merge", "plan_jobs", "run_jobs"]
