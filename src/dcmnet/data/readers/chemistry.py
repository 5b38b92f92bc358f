"""Chemistry the readers need: elements, formulas, net charges, multiplicities, molecules.

Element numbers and symbols come from ASE (``ase.data``); net charges are estimated from
the reference charges or the far-field ESP and checked against the electron count.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers as _ASE_NUMBERS
from ase.data import chemical_symbols

from dcmnet.data.dataset import Dataset, centre_of_mass
from dcmnet.data.readers.report import PathLike, ReadReport, err
from dcmnet.errors import DataError
from dcmnet.units import EBOHR_TO_EANGSTROM, MAX_ATOMIC_NUMBER


def element_number(symbol: str, path, where: str = "") -> int:
    """Atomic number of an element symbol (``'C'``, ``'cl'``, ``'H1'`` → 6, 17, 1) or number.

    Digits or labels after the symbol (``H1``, ``C_a``) are tolerated; letters are not
    (``HA`` is refused rather than guessed).

    Raises:
        DataError: an unknown element symbol; the message names the file and the place.
    """
    s = str(symbol).strip()
    if re.fullmatch(r"\d+", s):
        z = int(s)
        if 1 <= z <= MAX_ATOMIC_NUMBER:
            return z
        raise err(path, f"atomic number {z}{where} is outside 1..118.",
                  "Give element symbols or atomic numbers of real atoms.")
    m = re.fullmatch(r"([A-Za-z]{1,2})(?:[0-9_\-.:].*)?", s)
    if m:
        cand = m.group(1)[:1].upper() + m.group(1)[1:].lower()
        if cand != "X" and cand in _ASE_NUMBERS and _ASE_NUMBERS[cand] > 0:
            return int(_ASE_NUMBERS[cand])
    raise err(path, f"unknown element symbol {symbol!r}{where}.",
              "Use standard element symbols (H, C, N, O, ...) or atomic numbers.")


def symbol(z: int) -> str:
    """Element symbol of an atomic number (``'X'`` for 0)."""
    return chemical_symbols[int(z)] if 0 <= int(z) < len(chemical_symbols) else str(z)


def formula(Z) -> str:
    """Hill-like formula (C, H first, then alphabetical) of atomic numbers."""
    Z = np.asarray(Z, int)
    counts = {symbol(z): int((Z == z).sum()) for z in np.unique(Z)}
    order = [s for s in ("C", "H") if s in counts] + sorted(s for s in counts if s not in "CH")
    if "C" not in counts:
        order = sorted(counts)
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in order)


def estimate_net_charge(Z, R, grid, esp) -> float:
    """Total charge (e) of the unconstrained least-squares point-charge fit to an ESP.

    The monopole of an ESP sampled around a molecule is well determined (Gauss's law), so
    the fitted total is close to the true net charge (within ~0.1 e on vdW shells).

    Args:
        Z: (N,) atomic numbers (unused, kept for symmetry); R: (N, 3) Å;
        grid: (G, 3) Å; esp: (G,) Hartree/e.
    Returns:
        The fitted total charge, e (not rounded).
    """
    from dcmnet.fitting import coulomb_matrix

    grid = np.asarray(grid, np.float64)
    esp = np.asarray(esp, np.float64)
    if grid.shape[0] > 4000:
        idx = np.linspace(0, grid.shape[0] - 1, 4000).astype(int)
        grid, esp = grid[idx], esp[idx]
    A = coulomb_matrix(grid, np.asarray(R, np.float64))
    q = np.linalg.lstsq(A, esp, rcond=None)[0]
    return float(q.sum())


def net_charge_from_esp(Z, R, grid, esp, path, report: ReadReport, mol: int | None = None,
                        what: str = "the file") -> float:
    """Net charge estimated from the ESP, rounded; DataError when it is ambiguous.

    Raises:
        DataError: the fitted total is further than 0.3 e from an integer.
    """
    raw = estimate_net_charge(Z, R, grid, esp)
    q = float(np.round(raw))
    where = "" if mol is None else f" of molecule {mol}"
    if abs(raw - q) > 0.3:
        raise err(path, f"{what} does not state the net charge{where} and the ESP does not "
                  f"tell it clearly (fitted total charge {raw:+.2f} e).",
                  "Give it explicitly: --net-charge Q (Python: net_charge=Q) or a "
                  "'charge=Q' entry in the xyz comment line.")
    report.note(f"net charge{where} not stated in {what}: estimated from the ESP "
                f"(unconstrained point-charge fit totals {raw:+.3f} e → {q:+g} e); pass "
                "--net-charge to set it explicitly.")
    return q + 0.0


def check_electron_count(Z, net_charge: float, path, mol: int | None = None,
                         multiplicity: int | None = None,
                         n_electrons: float | None = None) -> None:
    """Check a net charge against what is known about the electrons.

    * ``n_electrons`` (e.g. the integral of a density cube): ``sum(Z) - net_charge`` must
      equal it within 0.5 e;
    * ``multiplicity`` 2S+1: the electron count ``sum(Z) - net_charge`` must be odd for even
      multiplicities and even for odd ones.

    Raises:
        DataError: the net charge is inconsistent; the message says what to fix.
    """
    ztot = int(np.sum(np.asarray(Z, int)))
    n_el = ztot - float(net_charge)
    where = "" if mol is None else f" of molecule {mol}"
    if n_electrons is not None and abs(n_el - n_electrons) > 0.5:
        implied = ztot - n_electrons
        raise err(path, f"net charge{where} {net_charge:+g} e implies {n_el:g} electrons, but "
                  f"the electron density integrates to {n_electrons:.2f} (net charge "
                  f"{implied:+.2f} e).", "Check the charge (--net-charge) or the density file.")
    if multiplicity is not None:
        mult = int(multiplicity)
        if mult < 1:
            raise err(path, f"multiplicity{where} is {mult}; it must be 1 or more.")
        if (round(n_el) % 2) == (mult % 2):
            raise err(path, f"net charge{where} {net_charge:+g} e gives {n_el:g} electrons, "
                      f"impossible with multiplicity {mult} (sum of Z = {ztot}).",
                      "Fix the charge or the multiplicity in the file.")


def com(Z, R) -> np.ndarray:
    """(3,) centre of mass in Å (ASE masses) of atoms ``Z`` (N,) at ``R`` (N, 3) Å
    (:func:`dcmnet.data.dataset.centre_of_mass`)."""
    return centre_of_mass(Z, R)


def dipole_to_com(mu_ebohr, origin, Z, R, net_charge) -> np.ndarray:
    """Dipole (3,) from e·Bohr about ``origin`` (Å) to e·Å about the centre of mass.

    ``mu_c = mu_o - Q (c - o)``: a no-op for neutral molecules.
    """
    mu = np.asarray(mu_ebohr, float) * EBOHR_TO_EANGSTROM
    c = com(Z, R)
    return mu - float(net_charge) * (c - np.asarray(origin, float))


def default_multiplicity(Z, net_charge: float) -> int:
    """1 for an even number of electrons, 2 for an odd one (lowest spin)."""
    return 1 if int(round(np.sum(np.asarray(Z, int)) - net_charge)) % 2 == 0 else 2


def molecules_of(data) -> list[dict]:
    """Per-molecule dicts of a :class:`Dataset`, a single molecule dict or a list of them."""
    if isinstance(data, Dataset):
        return [data.molecule(i) for i in range(len(data))]
    if isinstance(data, dict):
        return [data]
    return list(data)


def only_molecule(data, what: str) -> dict:
    """The one molecule of ``data`` (see :func:`molecules_of`) for a single-molecule format.

    Raises:
        ValueError: ``data`` holds more or fewer than one molecule; the message is ``what``.
    """
    mols = molecules_of(data)
    if len(mols) != 1:
        raise ValueError(what)
    return mols[0]


def mol_formal_charges(path: PathLike) -> list[int] | None:
    """Total formal charge (e) of every record of an SDF/MOL file, read with RDKit (the
    ``M  CHG`` lines and atom-block charge codes, which ASE's reader drops).

    Returns:
        one integer per record (file order), or None when RDKit is missing or the file is
        not SDF/MOL (``.sdf``, ``.mol``, ``.sd``).
    Raises:
        DataError: a record RDKit cannot read (names the file and record).
    """
    path = Path(path)
    if path.suffix.lower() not in (".sdf", ".mol", ".sd"):
        return None
    try:
        from rdkit import Chem, RDLogger
    except ImportError:  # pragma: no cover - optional extra
        return None
    RDLogger.DisableLog("rdApp.*")
    out = []
    for k, mol in enumerate(Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)):
        if mol is None:
            raise DataError(f"{path}: record {k} could not be read by RDKit (formal charges "
                            "unknown); fix the record or give --charge.")
        out.append(int(sum(a.GetFormalCharge() for a in mol.GetAtoms())))
    return out
