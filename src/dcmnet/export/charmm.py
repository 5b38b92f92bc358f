"""DCM-net charges for CHARMM's DCM module: the ``.dcm`` parameter file and its frames file.

Layout of the ``.dcm`` file as read by CHARMM's DCM module (described in the CHARMM
documentation, "dcm" section, and produced by the MDCM tools; written here by our own
code), whitespace separated, ``!`` starts a comment::

    1          ! no. residue types defined here

    MEOH       ! residue name
    2          ! no. axis system frames
     1  2  3 BO  ! atom indices involved in frame 1
    2  0          ! no. chgs and polarizable sites for atom 1
       x  y  z  q    (one line per charge: local coordinates in Å, charge in e)
       ...
    2  0          ! ... for atom 2
    2  0          ! ... for atom 3
     4  2  5 BO  ! atom indices involved in frame 2
    ...

Frames are triples ``(a1, a2, a3)`` of 1-based atom indices of the residue (topology
order), ``a2`` the central atom; every atom appears in at least one frame and its charges
are listed in the first frame holding it (``0 0`` in later ones). Local axes of a ``BO``
(bond) frame, with ``b1 = unit(r_a1 − r_a2)`` and ``b2 = unit(r_a3 − r_a2)``:

* atoms a1 and a2: ``ez = b1``, ``ey = unit(b1 × b2)``, ``ex = unit(b1 × ey)``;
* atom a3: ``ez = b2``, the same ``ey``, ``ex = unit(b2 × ey)``;

a charge's local coordinates are the projections of (site − its atom's nucleus) on
``(ex, ey, ez)``. The frames file (``<name>_frames.txt``, the MDCM tools' input) has the
residue name on the first line and one ``a1 a2 a3 BO`` line per frame.

Fixed geometry: the charges and local coordinates are those of the exported conformation.
Molecules that CHARMM frames cannot describe are refused with
:class:`~dcmnet.errors.DataError`: several molecules in one file (export them one by one),
fewer than three atoms, or a linear molecule (use the OpenMM export, which has an on-axis
fallback).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcmnet.errors import DataError
from dcmnet.export.frames import COLLINEAR_SIN, Prediction, predict_structure

__all__ = ["to_charmm", "charmm_frames", "write_dcm", "write_frames", "read_dcm",
           "dcm_global_sites", "frame_axes"]


def frame_axes(R: np.ndarray, frame) -> list[np.ndarray]:
    """The three (3, 3) axis matrices (rows ex, ey, ez) of a BO frame ``(a1, a2, a3)``
    (0-based) for its atoms a1, a2, a3 (see the module docstring)."""
    a1, a2, a3 = frame
    b1 = R[a1] - R[a2]
    b1 = b1 / np.linalg.norm(b1)
    b2 = R[a3] - R[a2]
    b2 = b2 / np.linalg.norm(b2)
    ey = np.cross(b1, b2)
    ey = ey / np.linalg.norm(ey)
    ex1 = np.cross(b1, ey)
    ex1 = ex1 / np.linalg.norm(ex1)
    ex3 = np.cross(b2, ey)
    ex3 = ex3 / np.linalg.norm(ex3)
    first = np.stack([ex1, ey, b1])
    return [first, first, np.stack([ex3, ey, b2])]


def charmm_frames(R: np.ndarray) -> list[tuple[int, int, int]]:
    """BO frames (0-based triples) covering every atom of one molecule.

    For each atom not yet covered (in order): the central atom is its nearest atom, the
    third the atom nearest to the centre whose bond makes a non-collinear angle (sine above
    :data:`~dcmnet.export.frames.COLLINEAR_SIN`) with the first bond.

    Raises:
        DataError: fewer than three atoms, or no non-collinear triple (linear molecule).
    """
    N = len(R)
    if N < 3:
        raise DataError(f"CHARMM DCM frames need three atoms; this molecule has {N}. Use "
                        "--format openmm (on-axis fallback) or DCMNetCalculator.")
    covered: set[int] = set()
    frames = []
    for a in range(N):
        if a in covered:
            continue
        d = np.linalg.norm(R - R[a], axis=1)
        d[a] = np.inf
        c = int(np.argmin(d))
        dc = np.linalg.norm(R - R[c], axis=1)
        found = None
        for t in np.argsort(dc, kind="stable"):
            t = int(t)
            if t in (a, c):
                continue
            u, v = R[a] - R[c], R[t] - R[c]
            s = np.linalg.norm(np.cross(u / np.linalg.norm(u), v / np.linalg.norm(v)))
            if s > COLLINEAR_SIN:
                found = t
                break
        if found is None:
            raise DataError("the molecule is linear: no three of its atoms span a CHARMM "
                            "DCM frame. Use --format openmm (on-axis fallback) or "
                            "DCMNetCalculator.")
        frames.append((a, c, found))
        covered.update((a, c, found))
    return frames


def write_dcm(path, pred: Prediction, frames, resname: str) -> Path:
    """Write the ``.dcm`` file of one molecule (``pred`` from
    :func:`~dcmnet.export.frames.predict_structure`) with the given BO ``frames``."""
    from dcmnet.fileio.tables import write_text

    R, q, x = pred.R, pred.charges, pred.positions
    lines = ["1          ! no. residue types defined here", "",
             f"{resname}          ! residue name",
             f"{len(frames)}          ! no. axis system frames"]
    done: set[int] = set()
    for k, fr in enumerate(frames):
        lines.append(f" {fr[0] + 1}  {fr[1] + 1}  {fr[2] + 1} BO  ! atom indices involved "
                     f"in frame {k + 1}")
        for atom, axes in zip(fr, frame_axes(R, fr)):
            if atom in done:
                lines.append(f"0  0          ! no. chgs and polarizable sites for atom "
                             f"{atom + 1}")
                continue
            done.add(atom)
            lines.append(f"{q.shape[1]}  0          ! no. chgs and polarizable sites for "
                         f"atom {atom + 1}")
            for s in range(q.shape[1]):
                loc = axes @ (x[atom, s] - R[atom])
                lines.append(f"     {loc[0]: .10f}      {loc[1]: .10f}      {loc[2]: .10f}"
                             f"      {q[atom, s]: .10f}")
    return write_text("\n".join(lines) + "\n\n", path)


def write_frames(path, frames, resname: str) -> Path:
    """Write the MDCM frames file: residue name, then ``a1 a2 a3 BO`` (1-based) per frame."""
    from dcmnet.fileio.tables import write_text

    body = "".join(f"{a + 1}    {b + 1}    {c + 1}    BO\n" for a, b, c in frames)
    return write_text(f"{resname}\n{body}", path)


def read_dcm(path) -> dict:
    """Read a ``.dcm`` file (the layout of the module docstring).

    Returns:
        ``{residue: [(frame (a1, a2, a3) 0-based, kind, [charges of a1, a2, a3])]}`` with
        each atom's charges an (n, 4) array of local x, y, z (Å) and q (e).
    Raises:
        DataError: a malformed file (the line number is named).
    """
    path = Path(path)
    toks = []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        body = line.split("!")[0].split()
        if body:
            toks.append((no, body))
    pos = 0

    def take():
        nonlocal pos
        if pos >= len(toks):
            raise DataError(f"{path}: ends early (a count promised more lines)")
        pos += 1
        return toks[pos - 1]

    try:
        out = {}
        n_res = int(take()[1][0])
        for _ in range(n_res):
            resname = take()[1][0]
            n_fr = int(take()[1][0])
            frames = []
            for _ in range(n_fr):
                no, f = take()
                fr = tuple(int(v) - 1 for v in f[:3])
                kind = f[3] if len(f) > 3 else "BO"
                per_atom = []
                for _ in range(3):
                    nq = int(take()[1][0])
                    per_atom.append(np.array([[float(v) for v in take()[1][:4]]
                                              for _ in range(nq)]).reshape(-1, 4))
                frames.append((fr, kind, per_atom))
            out[resname] = frames
    except (ValueError, IndexError) as exc:
        no = toks[pos - 1][0] if pos else 0
        raise DataError(f"{path}, line {no}: not a .dcm file ({exc})") from exc
    return out


def dcm_global_sites(frames, R: np.ndarray):
    """Global sites of one residue's frames (from :func:`read_dcm`) for nuclei ``R`` (N, 3)
    Å: returns ``(atom (S,), charges (S,) e, positions (S, 3) Å)`` in file order.

    Raises:
        DataError: a frame kind other than ``BO``.
    """
    atoms, qs, xs = [], [], []
    for fr, kind, per_atom in frames:
        if kind != "BO":
            raise DataError(f"frame {tuple(a + 1 for a in fr)}: only BO frames are supported")
        for atom, axes, loc in zip(fr, frame_axes(R, fr), per_atom):
            for row in loc:
                atoms.append(atom)
                qs.append(row[3])
                xs.append(R[atom] + row[:3] @ axes)
    return np.asarray(atoms, int), np.asarray(qs), np.asarray(xs).reshape(-1, 3)


def to_charmm(model, atoms, out_dir, name: str | None = None, charge=None,
              resname: str | None = None) -> dict:
    """Write ``<name>.dcm`` and ``<name>_frames.txt`` for one molecule.

    Args:
        model: experiment folder or shipped model name, DCMNetCalculator or
            ``(DCMNet, params)``; atoms: ``ase.Atoms`` of one molecule (atom order = the
            CHARMM topology order); charge: its net charge; resname: CHARMM residue name
            (default: the file stem, upper case, 4 characters).
    Returns:
        ``{"dcm": Path, "frames": Path, "prediction": Prediction}``.
    Raises:
        DataError: several molecules, fewer than three atoms, or a linear molecule.
    """
    pred = predict_structure(model, atoms, charge=charge, name=name)
    M = int(pred.mol.max()) + 1
    if M != 1:
        raise DataError(f"the structure holds {M} molecules; a .dcm residue describes one "
                        "molecule: export each molecule on its own (or set "
                        "atoms.arrays['mol_id'] to one value if it is one molecule).")
    frames = charmm_frames(pred.R)
    rn = resname or ("".join(ch for ch in pred.name if ch.isalnum())[:4].upper() or "MOL")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or pred.name
    return {"dcm": write_dcm(out / f"{stem}.dcm", pred, frames, rn),
            "frames": write_frames(out / f"{stem}_frames.txt", frames, rn),
            "prediction": pred}
