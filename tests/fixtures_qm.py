"""PySCF reference ESPs and files written in each format's published layout.

Nothing is downloaded: three small molecules (water, hydronium H3O+, formate HCOO-) get an
HF/6-31G SCF (well under a second each); their ESP on vdW-shell points, dipole and fitted
charges are the reference every reader is checked against. The file writers here follow
the published layouts directly (format strings from the programs' documentation/source),
independently of dcmnet's own writers, so that a reader cannot agree with a writer by
sharing its mistakes. Results are cached per process (``functools.lru_cache``).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from dcmnet.surface import vdw_shell_points  # noqa: E402
from dcmnet.units import ANGSTROM_TO_BOHR  # noqa: E402

BASIS = "6-31g"
#: molecules: atomic numbers, positions (Å, off the origin on purpose), net charge
MOLECULES = {
    "water": ([8, 1, 1], [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692],
                          [0.0, -0.7572, -0.4692]], 0),
    "hydronium": ([8, 1, 1, 1], [[0.0, 0.0, 0.11], [0.94, 0.0, -0.26],
                                 [-0.47, 0.814, -0.26], [-0.47, -0.814, -0.26]], 1),
    "formate": ([6, 8, 8, 1], [[0.0, 0.0, 0.0], [1.13, 0.65, 0.0], [-1.13, 0.65, 0.0],
                               [0.0, -1.10, 0.0]], -1),
}
SHIFT = np.array([0.7, -0.4, 1.1])
SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O"}


@functools.lru_cache(maxsize=None)
def reference(name: str) -> dict:
    """PySCF HF/6-31G reference of one molecule (Å, e, Hartree/e, e·Å about the COM).

    Keys: Z, R, net_charge, mol, dm, grid (vdW shells 1.4–2.0, 0.4 pts/Å²), esp, dipole
    (about the centre of mass), dipole0_au (about the origin, e·Bohr), mono (ESP fit),
    name.
    """
    from ase.data import atomic_masses

    from dcmnet.fitting import fit_monopoles
    from dcmnet.generate.qm import build_molecule, dipole_about, esp_on_points, run_scf

    Z, R, q = MOLECULES[name]
    Z = np.array(Z)
    R = np.array(R, float) + SHIFT
    mol = build_molecule(Z, R, q, basis=BASIS)
    mf = run_scf(mol, method="hf", density_fit=False)
    dm = mf.make_rdm1()
    grid = vdw_shell_points(Z, R, density=0.4)
    esp = esp_on_points(mol, dm, grid)
    m = atomic_masses[Z]
    com = (m[:, None] * R).sum(0) / m.sum()
    dip = dipole_about(mol, dm, com)
    dip0 = dipole_about(mol, dm, np.zeros(3)) * ANGSTROM_TO_BOHR
    mono = fit_monopoles(R, grid, esp, q)
    return {"Z": Z, "R": R, "net_charge": float(q), "mol": mol, "dm": dm, "grid": grid,
            "esp": esp, "dipole": dip, "dipole0_au": dip0, "mono": mono, "name": name}


def reference_esp(name: str, points_angstrom) -> np.ndarray:
    """Exact ESP (Hartree/e) of molecule ``name`` at arbitrary points (Å)."""
    from dcmnet.generate.qm import esp_on_points
    ref = reference(name)
    return esp_on_points(ref["mol"], ref["dm"], np.asarray(points_angstrom, float))


# ---------------------------------------------------------------------------- writers
def _d(x: float) -> str:
    """Fortran D16.8-style number (0.xxxxxxxxD+ee), as Gaussian prints it."""
    x = float(x)
    if x == 0.0:
        return " 0.00000000D+00"
    e = int(np.floor(np.log10(abs(x)))) + 1
    m = x / 10.0 ** e
    if round(abs(m), 8) >= 1.0:
        m, e = m / 10, e + 1
    return f"{m:15.8f}D{e:+03d}"


def cube_files(name: str, folder: Path, n: int = 40) -> tuple[Path, Path]:
    """Potential and density cubes written by PySCF's ``cubegen`` (Bohr, ``%13.5E``)."""
    from pyscf.tools import cubegen
    ref = reference(name)
    folder.mkdir(parents=True, exist_ok=True)
    pot, dens = folder / f"{name}_pot.cube", folder / f"{name}_dens.cube"
    if not pot.exists():
        cubegen.mep(ref["mol"], str(pot), ref["dm"], nx=n, ny=n, nz=n)
        cubegen.density(ref["mol"], str(dens), ref["dm"], nx=n, ny=n, nz=n)
    return pot, dens


def gaussian_esp_file(name: str, path: Path) -> Path:
    """Gaussian ``iop(6/50=1)`` layout: header, atoms + ESP charges, dipole, quadrupole,
    ``ESP VALUES AND GRID POINT COORDINATES``; Bohr, D exponents."""
    ref = reference(name)
    Z, Rb = ref["Z"], ref["R"] * ANGSTROM_TO_BOHR
    q = int(ref["net_charge"])
    mult = 1
    lines = [" ESP FILE - ATOMIC UNITS",
             f" CHARGE = {q:2d} - MULTIPLICITY = {mult:3d}",
             f" ATOMIC COORDINATES AND ESP CHARGES. #ATOMS = {len(Z):5d}"]
    for z, r, c in zip(Z, Rb, ref["mono"]):
        lines.append(f" {SYMBOL[z]:<2s}{_d(r[0])}{_d(r[1])}{_d(r[2])}{_d(c)}")
    d = ref["dipole0_au"]
    lines.append(" DIPOLE MOMENT:")
    lines.append(f" X={_d(d[0])} Y={_d(d[1])} Z={_d(d[2])} Total={_d(np.linalg.norm(d))}")
    lines.append(" TRACELESS QUADRUPOLE MOMENT:")
    lines.append(f"   XX={_d(0.1)}   YY={_d(-0.05)}   ZZ={_d(-0.05)}")
    lines.append(f"   XY={_d(0.0)}   XZ={_d(0.0)}   YZ={_d(0.0)}")
    gb = ref["grid"] * ANGSTROM_TO_BOHR
    lines.append(f" ESP VALUES AND GRID POINT COORDINATES. #POINTS = {len(gb):8d}")
    for v, g in zip(ref["esp"], gb):
        lines.append(f" {_d(v)}{_d(g[0])}{_d(g[1])}{_d(g[2])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def xyz_file(name: str, path: Path, comment: str | None = None) -> Path:
    """Plain xyz (Å); the comment defaults to a free-text title (no charge)."""
    ref = reference(name)
    rows = [f"{SYMBOL[z]:<2s} {r[0]:14.8f} {r[1]:14.8f} {r[2]:14.8f}"
            for z, r in zip(ref["Z"], ref["R"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{len(rows)}\n{comment or name + ' HF/6-31G'}\n" + "\n".join(rows) + "\n")
    return path


def espot_file(name: str, path: Path) -> Path:
    """AmberTools espot as espgen writes it: ``%5d%5d%5d``, ``%32.7E%16.7E%16.7E``,
    ``%16.7E%16.7E%16.7E%16.7E``; Bohr and Hartree/e."""
    ref = reference(name)
    Rb, gb = ref["R"] * ANGSTROM_TO_BOHR, ref["grid"] * ANGSTROM_TO_BOHR
    out = [f"{len(Rb):5d}{len(gb):5d}{0:5d}"]
    out += [f"{r[0]:32.7E}{r[1]:16.7E}{r[2]:16.7E}" for r in Rb]
    out += [f"{v:16.7E}{g[0]:16.7E}{g[1]:16.7E}{g[2]:16.7E}" for v, g in zip(ref["esp"], gb)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    return path


def psi4_files(name: str, folder: Path, with_output: bool = True) -> Path:
    """psi4 GRID_ESP files: grid.dat (Å, as the geometry), grid_esp.dat (``%16.10f``) and
    an output file with psi4's geometry block (charge, multiplicity)."""
    ref = reference(name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grid.dat").write_text("".join(
        f"{g[0]:16.10f}{g[1]:16.10f}{g[2]:16.10f}\n" for g in ref["grid"]))
    (folder / "grid_esp.dat").write_text("".join(f"{v:16.10f}\n" for v in ref["esp"]))
    if with_output:
        from ase.data import atomic_masses
        rows = [f"         {SYMBOL[z]:<2s}    {r[0]:18.12f} {r[1]:18.12f} {r[2]:18.12f} "
                f"{atomic_masses[z]:18.12f}" for z, r in zip(ref["Z"], ref["R"])]
        (folder / "output.dat").write_text(
            "\n  Psi4: An Open-Source Ab Initio Electronic Structure Package\n\n"
            "  ==> Geometry <==\n\n    Molecular point group: c1\n\n"
            f"    Geometry (in Angstrom), charge = {int(ref['net_charge'])}, multiplicity "
            "= 1:\n\n"
            "       Center              X                  Y                   Z       "
            "        Mass       \n"
            "    ------------   -----------------  -----------------  -----------------  "
            "-----------------\n" + "\n".join(rows) + "\n\n  Running in c1 symmetry.\n")
    return folder


def orca_files(name: str, folder: Path) -> tuple[Path, Path]:
    """An ORCA input (``* xyz q m`` block, Å) and an ``orca_vpot`` output (count, then
    ``x y z V`` in Bohr / Hartree/e)."""
    ref = reference(name)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"  {SYMBOL[z]:<2s} {r[0]:14.8f} {r[1]:14.8f} {r[2]:14.8f}"
            for z, r in zip(ref["Z"], ref["R"])]
    inp = folder / f"{name}.inp"
    inp.write_text(f"! HF 6-31G KeepDens\n\n* xyz {int(ref['net_charge'])} 1\n"
                   + "\n".join(rows) + "\n*\n")
    gb = ref["grid"] * ANGSTROM_TO_BOHR
    out = folder / f"{name}_vpot.out"
    out.write_text(f"{len(gb)}\n" + "".join(
        f"{g[0]:14.6f}{g[1]:14.6f}{g[2]:14.6f}{v:22.12E}\n" for g, v in zip(gb, ref["esp"])))
    return inp, out


def hdf5_file(names, path: Path) -> Path:
    """SPICE-like HDF5: one group per molecule (two conformers: the reference twice) with
    atomic_numbers, conformations (Bohr), smiles, mbis_charges and the ESP datasets."""
    import h5py
    smiles = {"water": "[H]O[H]", "hydronium": "[H][O+]([H])[H]", "formate": "[H]C(=O)[O-]"}
    with h5py.File(path, "w") as f:
        for name in names:
            ref = reference(name)
            g = f.create_group(smiles[name])
            g.create_dataset("subset", data=["dcmnet test"], dtype=h5py.string_dtype())
            g.create_dataset("smiles", data=[smiles[name]], dtype=h5py.string_dtype())
            g.create_dataset("atomic_numbers", data=ref["Z"].astype(np.int16))
            X = np.stack([ref["R"], ref["R"]]) * ANGSTROM_TO_BOHR
            d = g.create_dataset("conformations", data=X.astype(np.float64))
            d.attrs["units"] = "bohr"
            d = g.create_dataset("esp_grid", data=np.stack([ref["grid"]] * 2) * ANGSTROM_TO_BOHR)
            d.attrs["units"] = "bohr"
            d = g.create_dataset("esp", data=np.stack([ref["esp"]] * 2))
            d.attrs["units"] = "hartree/elementary_charge"
            d = g.create_dataset("mbis_charges", data=np.stack([ref["mono"]] * 2)[..., None])
            d.attrs["units"] = "elementary_charge"
    return path


def extxyz_file(names, path: Path) -> Path:
    """extxyz frames: atoms + 'X' rows carrying the ESP (``esp`` column), per-atom
    ``charges`` and ``charge=`` in the comment line (Å, Hartree/e)."""
    out = []
    for name in names:
        ref = reference(name)
        out.append(str(len(ref["Z"]) + len(ref["esp"])))
        out.append(f'Properties=species:S:1:pos:R:3:charges:R:1:esp:R:1 '
                   f'charge={int(ref["net_charge"])} name={name}')
        for z, r, c in zip(ref["Z"], ref["R"], ref["mono"]):
            out.append(f"{SYMBOL[z]} {r[0]:.10f} {r[1]:.10f} {r[2]:.10f} {c:.10f} 0.0")
        for g, v in zip(ref["grid"], ref["esp"]):
            out.append(f"X {g[0]:.10f} {g[1]:.10f} {g[2]:.10f} 0.0 {v:.12e}")
    path.write_text("\n".join(out) + "\n")
    return path


# ---------------------------------------------------------------------------- shared files
def build_all(base: Path, cube_n: int = 32) -> dict:
    """Write every format's files for the three molecules under ``base`` (once per folder).

    Returns:
        dict of paths: ``cube`` (folder with *_pot.cube + *_dens.cube), ``gesp``, ``espot``,
        ``psi4`` (one sub-folder per molecule), ``orca`` folders, ``hdf5`` and ``extxyz``
        files.
    """
    names = list(MOLECULES)
    out = {"cube": base / "cube", "gesp": base / "gesp", "espot": base / "espot",
           "psi4": base / "psi4", "orca": base / "orca", "hdf5": base / "spice_like.h5",
           "extxyz": base / "molecules.extxyz"}
    done = base / ".done"
    if done.exists():
        return out
    base.mkdir(parents=True, exist_ok=True)
    for n in names:
        cube_files(n, out["cube"], cube_n)
        gaussian_esp_file(n, out["gesp"] / f"{n}.esp")
        espot_file(n, out["espot"] / f"{n}.espot")
        xyz_file(n, out["espot"] / f"{n}.xyz")
        psi4_files(n, out["psi4"] / n)
        orca_files(n, out["orca"])
    try:
        hdf5_file(names, out["hdf5"])
    except ImportError:  # h5py missing: the HDF5 tests skip themselves
        pass
    extxyz_file(names, out["extxyz"])
    done.write_text("ok\n")
    return out


def qm_files_fixture(tmp_path_factory) -> dict:
    """Body of the session fixtures: the files live in the session's base temp folder, so
    every test module that asks gets the same files (built once)."""
    return build_all(tmp_path_factory.getbasetemp() / "qm_reference_files")
