"""DCM-net charges for OpenMM: a ``System`` with one massless virtual site per charge site.

:func:`to_openmm` predicts the charges of one conformation and builds

* an ``openmm.System``: the atoms (masses from ASE, **no charge of their own**) in input
  order, then one massless virtual site per charge site in atom order (site ``k`` of atom
  ``i``). A site of atom ``i`` is a ``LocalCoordinatesSite`` on three atoms of its molecule
  ``(i, b, c)`` (origin ``i``, x axis towards ``b``, the frame's xy plane through ``c``;
  :func:`dcmnet.export.frames.frame_atoms`), so the sites follow any rigid motion of the
  molecule. All charges sit in one ``NonbondedForce`` (``NoCutoff``, Lennard-Jones
  ε = 0): pairs inside one molecule are exceptions with zero charge product, exactly like
  :mod:`dcmnet.md.energy`;
* a PDB (atoms then sites; sites as element-less atoms named after their parent atom,
  in the molecule's residue; with several molecules all sites form one extra residue
  ``DCM``, as OpenMM wants a residue's atoms contiguous) with bonds (CONECT);
* a ForceField XML residue template (one residue per molecule type) with the same virtual
  sites, so the molecule can join a user's system built by ``openmm.app.ForceField``.

Fallback for molecules without a three-atom frame (fewer than three atoms, or linear):
a site on the molecular axis becomes a ``TwoParticleAverageSite`` of the two outermost atoms
(exact along the axis); a monatomic molecule's sites (on the nucleus, as DCM-net predicts
for a lone atom) are merged into the atom's own charge and add no virtual site. Sites off
the axis of a linear molecule cannot be expressed: :class:`~dcmnet.errors.DataError`.

Fixed vs conformation-dependent: the charges and local coordinates are those of the
exported conformation (a fixed-geometry DCM, the way MDCM models are used); for charges
that follow the conformation use :class:`dcmnet.md.calculator.DCMNetCalculator` in ASE.

ForceField template caveat: ``openmm.app.ForceField`` derives exclusions from bonds and
wants the same 1-4 scales in every file; the template uses the AMBER/TIP3P scales
(coulomb 1/1.2, LJ 0.5) so it combines with OpenMM's water files. After ``createSystem``
call :func:`apply_dcm_exclusions` to exclude the electrostatics of every pair inside the
molecule, as DCM charges require (the serialized System has this already). Lennard-Jones
parameters are not predicted: the template carries ε = 0; add your own.

Units: OpenMM works in nm, kJ/mol and e; conversions use ``openmm.unit``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from dcmnet.errors import OptionalDependencyError
from dcmnet.export.frames import (Prediction, check_linear_sites, frame_atoms,
                                  predict_structure)

__all__ = ["to_openmm", "OpenMMExport", "require_openmm", "apply_dcm_exclusions"]


def apply_dcm_exclusions(system, topology, residue_name: str = "LIG") -> int:
    """Exclude the Coulomb interaction of every particle pair inside each residue named
    ``residue_name`` (atoms and virtual sites) in a System built by ``openmm.app.ForceField``
    from the exported template.

    Existing exceptions keep their Lennard-Jones part; new ones get the Lorentz-Berthelot
    combination of the particles' σ and ε (so only the charges are excluded).

    Returns:
        the number of pairs changed. Raises ValueError: no NonbondedForce in ``system``.
    """
    import math

    import openmm

    nbs = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    if not nbs:
        raise ValueError("the System has no NonbondedForce")
    nb = nbs[0]
    existing = {}
    for k in range(nb.getNumExceptions()):
        i, j, _, sig, eps = nb.getExceptionParameters(k)
        existing[(min(i, j), max(i, j))] = (k, sig, eps)
    changed = 0
    for res in topology.residues():
        if res.name != residue_name:
            continue
        idx = sorted(a.index for a in res.atoms())
        for u in range(len(idx)):
            for v in range(u + 1, len(idx)):
                key = (idx[u], idx[v])
                if key in existing:
                    k, sig, eps = existing[key]
                    nb.setExceptionParameters(k, key[0], key[1], 0.0, sig, eps)
                else:
                    _, s1, e1 = nb.getParticleParameters(key[0])
                    _, s2, e2 = nb.getParticleParameters(key[1])
                    nb.addException(key[0], key[1], 0.0, (s1 + s2) / 2,
                                    math.sqrt(e1.value_in_unit(e1.unit) * e2.value_in_unit(
                                        e1.unit)) * e1.unit)
                changed += 1
    return changed


def require_openmm():
    """Import OpenMM. Raises OptionalDependencyError (``pip install 'dcmnet[md]'``)."""
    try:
        import openmm
        import openmm.app  # noqa: F401
    except ImportError as exc:
        raise OptionalDependencyError(
            "the OpenMM export needs OpenMM: pip install 'dcmnet[md]' (or pip install "
            "openmm).") from exc
    return openmm


@dataclasses.dataclass
class OpenMMExport:
    """Result of :func:`to_openmm`.

    Attributes:
        system: ``openmm.System`` (atoms, then virtual sites).
        topology: ``openmm.app.Topology`` (one residue per molecule; sites as ``EP`` atoms).
        positions: (P, 3) positions of all particles, Å (sites at their predicted place).
        charges: (P,) particle charges, e (0 for atoms except merged monatomic ones).
        site_parent: (S,) index of the parent atom of every virtual site.
        forcefield_xml: ForceField XML text with one residue template per molecule.
        prediction: the :class:`~dcmnet.export.frames.Prediction` exported.
    """

    system: object
    topology: object
    positions: np.ndarray
    charges: np.ndarray
    site_parent: np.ndarray
    forcefield_xml: str
    prediction: Prediction

    def write(self, out_dir, name: str | None = None) -> dict:
        """Write ``<name>_system.xml`` (XmlSerializer), ``<name>.pdb`` and
        ``<name>_forcefield.xml`` to ``out_dir``; returns ``{kind: Path}``."""
        import io

        import openmm
        from openmm import unit
        from openmm.app import PDBFile

        from dcmnet.fileio.tables import write_text

        name = name or self.prediction.name
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {"system": write_text(openmm.XmlSerializer.serialize(self.system),
                                      out / f"{name}_system.xml")}
        buf = io.StringIO()
        pos = [openmm.Vec3(*p) for p in self.positions] * unit.angstrom
        PDBFile.writeFile(self.topology, pos, buf, keepIds=True)
        files["pdb"] = write_text(buf.getvalue(), out / f"{name}.pdb")
        files["forcefield"] = write_text(self.forcefield_xml, out / f"{name}_forcefield.xml")
        return files


def _local(R, a, b, c, s):
    """OpenMM's LocalCoordinatesSite frame for origin a, xdir b−a, ydir c−a; local coords
    (Å) of point s."""
    ex = R[b] - R[a]
    ex = ex / np.linalg.norm(ex)
    ez = np.cross(R[b] - R[a], R[c] - R[a])
    ez = ez / np.linalg.norm(ez)
    ey = np.cross(ez, ex)
    d = s - R[a]
    return np.array([d @ ex, d @ ey, d @ ez])


@dataclasses.dataclass
class _Sites:
    """The virtual sites of an export, in particle order (site ``j`` is particle ``N + j``).

    ``atom_q``: (N,) charge of each atom, e (0 except merged monatomic molecules);
    ``parent``, ``pos`` (Å), ``q`` (e): parent atom, position and charge of every site;
    ``vsites``: ``(kind, atoms, values)`` for the ForceField XML; ``objects``: the OpenMM
    virtual-site objects.
    """

    atom_q: list
    parent: list = dataclasses.field(default_factory=list)
    pos: list = dataclasses.field(default_factory=list)
    q: list = dataclasses.field(default_factory=list)
    vsites: list = dataclasses.field(default_factory=list)
    objects: list = dataclasses.field(default_factory=list)


def _virtual_sites(openmm, pred: Prediction, M: int) -> _Sites:
    """One OpenMM virtual site per charge site: a ``LocalCoordinatesSite`` on the atom's
    frame, or a ``TwoParticleAverageSite`` for a linear molecule; a monatomic molecule's
    charge goes onto the atom. Raises DataError: sites a linear frame cannot express."""
    from openmm import unit

    R, q, x, mol = pred.R, pred.charges, pred.positions, pred.mol
    n = q.shape[1]
    out = _Sites(atom_q=[0.0] * q.shape[0])
    for m in range(M):
        members = np.flatnonzero(mol == m)
        frames = {int(i): frame_atoms(R, int(i), members) for i in members}
        linear = any(f is None for f in frames.values())
        if linear:
            a, b = check_linear_sites(pred, m)
        for i in members:
            if linear and a == b:                          # monatomic: charge on the atom
                out.atom_q[i] += float(q[i].sum())
                continue
            for k in range(n):
                s = x[i, k]
                if linear:
                    t = float((s - R[a]) @ (R[b] - R[a]) / np.sum((R[b] - R[a]) ** 2))
                    vs = openmm.TwoParticleAverageSite(int(a), int(b), 1.0 - t, t)
                    out.vsites.append(("average2", (int(a), int(b)), (1.0 - t, t)))
                else:
                    fb, fc = frames[int(i)]
                    loc = _local(R, int(i), fb, fc, s)
                    vs = openmm.LocalCoordinatesSite(
                        int(i), fb, fc, openmm.Vec3(1, 0, 0), openmm.Vec3(-1, 1, 0),
                        openmm.Vec3(-1, 0, 1),
                        openmm.Vec3(*loc) * unit.angstrom)
                    out.vsites.append(("localCoords", (int(i), fb, fc), tuple(loc)))
                out.objects.append(vs)
                out.parent.append(int(i))
                out.pos.append(s)
                out.q.append(float(q[i, k]))
    return out


def _system(openmm, pred: Prediction, sites: _Sites, M: int):
    """``openmm.System``: the atoms (ASE masses), the massless sites, one ``NonbondedForce``
    (NoCutoff, ε = 0) with every intramolecular pair excluded."""
    from ase.data import atomic_masses
    from openmm import unit

    mol = pred.mol
    system = openmm.System()
    for i in range(len(pred.Z)):
        system.addParticle(float(atomic_masses[pred.Z[i]]) * unit.dalton)
    for vs in sites.objects:
        system.setVirtualSite(system.addParticle(0.0), vs)
    nb = openmm.NonbondedForce()
    nb.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    for qq in sites.atom_q + sites.q:
        nb.addParticle(qq * unit.elementary_charge, 1.0 * unit.nanometer,
                       0.0 * unit.kilojoule_per_mole)
    # exclusions: every pair of particles inside one molecule
    part_mol = np.concatenate([mol, mol[np.asarray(sites.parent, int)]]) if sites.parent \
        else mol.copy()
    for m in range(M):
        idx = np.flatnonzero(part_mol == m)
        for u in range(len(idx)):
            for v in range(u + 1, len(idx)):
                nb.addException(int(idx[u]), int(idx[v]), 0.0, 1.0, 0.0)
    system.addForce(nb)
    return system


def _topology(pred: Prediction, residue_names, site_parent, bonds):
    """``openmm.app.Topology``: one chain, one residue per molecule, atoms then sites
    (particle order). Returns ``(topology, atom names, site names)``."""
    from openmm import app

    mol, M = pred.mol, len(residue_names)
    top = app.Topology()
    chain = top.addChain()
    residues = [top.addResidue(residue_names[m], chain) for m in range(M)]
    names, atom_objs = [], []
    counters: dict = {}
    for i in range(len(pred.Z)):
        key = (int(mol[i]), pred.symbols[i])
        counters[key] = counters.get(key, 0) + 1
        nm = f"{pred.symbols[i]}{counters[key]}"
        names.append(nm)
        atom_objs.append(top.addAtom(nm, app.Element.getByAtomicNumber(int(pred.Z[i])),
                                     residues[mol[i]]))
    site_names = []
    per_atom: dict = {}
    # OpenMM wants the atoms of a residue contiguous: with several molecules the sites
    # (which follow all atoms) form one extra residue "DCM"
    site_res = residues[0] if M == 1 else (top.addResidue("DCM", chain) if site_parent
                                           else None)
    for i in site_parent:
        per_atom[i] = per_atom.get(i, 0) + 1
        nm = f"{names[i]}_{per_atom[i]}"[:8]
        site_names.append(nm)
        top.addAtom(nm, None, site_res)
    for (i, j) in bonds:
        top.addBond(atom_objs[i], atom_objs[j])
    return top, names, site_names


def to_openmm(model, atoms, charge=None, residue_names=None) -> OpenMMExport:
    """Export the DCM-net charges of ``atoms`` (one conformation) to OpenMM.

    Args:
        model: experiment folder or shipped model name, a DCMNetCalculator, or a
            ``(DCMNet, params)`` tuple.
        atoms: ``ase.Atoms``, one or several molecules (``arrays["mol_id"]`` or
            connectivity); periodic cells are ignored (the System has no box).
        charge: net charge(s) of the molecules (default from the structure).
        residue_names: one residue name per molecule (default ``LIG`` for a single
            molecule, else ``M01``, ``M02``, …).
    Returns:
        :class:`OpenMMExport`.
    Raises:
        OptionalDependencyError: OpenMM missing. DataError: a molecule whose sites no frame
        can express (see the module docstring).
    """
    openmm = require_openmm()

    pred = predict_structure(model, atoms, charge=charge)
    M = int(pred.mol.max()) + 1
    if residue_names is None:
        residue_names = [f"M{m + 1:02d}" for m in range(M)]
        if M == 1:
            residue_names = ["LIG"]
    sites = _virtual_sites(openmm, pred, M)
    system = _system(openmm, pred, sites, M)
    bonds = _bonds(atoms, pred.mol)
    top, names, site_names = _topology(pred, residue_names, sites.parent, bonds)
    positions = np.concatenate([pred.R, np.asarray(sites.pos).reshape(-1, 3)])
    xml = _forcefield_xml(pred, residue_names, names, site_names, sites.parent, sites.vsites,
                          sites.atom_q, sites.q, bonds)
    return OpenMMExport(system=system, topology=top, positions=positions,
                        charges=np.asarray(sites.atom_q + sites.q),
                        site_parent=np.asarray(sites.parent, int),
                        forcefield_xml=xml, prediction=pred)


def _bonds(atoms, mol):
    """Covalent bonds (the criterion of :func:`dcmnet.data.connectivity.find_molecules`, no
    periodic images) inside each molecule; ``(i, j)`` with ``i < j``."""
    from dcmnet.data.connectivity import neighbour_list

    at = atoms.copy()
    at.pbc = False
    if len(at) < 2:
        return []
    nl = neighbour_list(at, bothways=False)
    return [(int(i), int(j)) for i in range(len(at)) for j in nl.get_neighbors(i)[0]
            if i < j and mol[i] == mol[j]]


def _forcefield_xml(pred, residue_names, names, site_names, site_parent, vsites, charges,
                    site_q, bonds) -> str:
    """ForceField XML: atom types, one residue template per molecule, virtual sites,
    NonbondedForce with charges from the residue (LJ ε = 0)."""
    from ase.data import atomic_masses
    from openmm import unit

    root = ET.Element("ForceField")
    ET.SubElement(root, "Info").text = (
        "dcmnet DCM charges of one conformation; virtual sites carry the charges, atoms "
        "none; Lennard-Jones epsilon = 0 (add your own)")
    types = ET.SubElement(root, "AtomTypes")
    res_el = ET.SubElement(root, "Residues")
    # the 1-4 scales of the AMBER/TIP3P files, so the template combines with them (OpenMM
    # refuses different scales); apply_dcm_exclusions() then excludes all intramolecular pairs
    nbf = ET.SubElement(root, "NonbondedForce", coulomb14scale=str(1 / 1.2), lj14scale="0.5")
    ET.SubElement(nbf, "UseAttributeFromResidue", name="charge")
    M = len(residue_names)
    for m in range(M):
        rn = residue_names[m]
        r = ET.SubElement(res_el, "Residue", name=rn)
        members = np.flatnonzero(pred.mol == m)
        for i in members:
            t = f"{rn}-{names[i]}"
            ET.SubElement(types, "Type", name=t, **{"class": t}, element=pred.symbols[i],
                          mass=f"{float(atomic_masses[pred.Z[i]]):.6f}")
            ET.SubElement(r, "Atom", name=names[i], type=t, charge=f"{charges[i]:.10f}")
            ET.SubElement(nbf, "Atom", type=t, sigma="1.0", epsilon="0.0")
        for j, i in enumerate(site_parent):
            if pred.mol[i] != m:
                continue
            t = f"{rn}-{site_names[j]}"
            ET.SubElement(types, "Type", name=t, **{"class": t}, mass="0.0")
            ET.SubElement(r, "Atom", name=site_names[j], type=t, charge=f"{site_q[j]:.10f}")
            ET.SubElement(nbf, "Atom", type=t, sigma="1.0", epsilon="0.0")
        for j, i in enumerate(site_parent):
            if pred.mol[i] != m:
                continue
            kind, parts, vals = vsites[j]
            attrs = {"type": kind, "siteName": site_names[j]}
            for k, p in enumerate(parts):
                attrs[f"atomName{k + 1}"] = names[p]
            if kind == "average2":
                attrs.update(weight1=f"{vals[0]:.12f}", weight2=f"{vals[1]:.12f}")
            else:
                attrs.update(wo1="1", wo2="0", wo3="0", wx1="-1", wx2="1", wx3="0",
                             wy1="-1", wy2="0", wy3="1")
                for k, v in enumerate(vals):
                    nm_v = (float(v) * unit.angstrom).value_in_unit(unit.nanometer)
                    attrs[f"p{k + 1}"] = f"{nm_v:.12f}"
            ET.SubElement(r, "VirtualSite", **attrs)
        for (a, b) in bonds:
            if pred.mol[a] == m:
                ET.SubElement(r, "Bond", atomName1=names[a], atomName2=names[b])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
