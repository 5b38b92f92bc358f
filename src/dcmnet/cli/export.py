"""``dcmnet export``: DCM-net charges of a structure as input for an MD engine."""
from __future__ import annotations

FORMATS = ("openmm", "charmm")


def add_parsers(sub) -> None:
    """Register ``export``."""
    p = sub.add_parser(
        "export", help="write DCM-net charges for OpenMM or CHARMM (fixed geometry)",
        description="Predicts the distributed charges of each structure and writes them for "
                    "an MD engine, as local-frame sites that follow the molecule's rigid "
                    "motion (the charges of the given conformation). openmm: "
                    "DIR/<name>_system.xml (OpenMM System, one virtual site per charge), "
                    "DIR/<name>.pdb and DIR/<name>_forcefield.xml (residue template). "
                    "charmm: DIR/<name>.dcm (CHARMM DCM module) and DIR/<name>_frames.txt. "
                    "See docs/md.md.")
    p.add_argument("experiment", metavar="MODEL",
                   help="experiment folder, checkpoint folder or shipped model name")
    p.add_argument("--structures", required=True, nargs="+",
                   help="structure file(s) ASE reads (xyz, sdf, pdb, ...); every frame is "
                        "exported (<name> = file stem, _<k> for frame k > 0)")
    p.add_argument("--format", required=True, choices=FORMATS, help="target engine")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--charge", type=float, nargs="+", default=None,
                   help="net charge (e): one number, or one per molecule (default: from "
                        "the file)")
    p.add_argument("--kind", choices=("best", "latest"), default="best",
                   help="checkpoint of an experiment folder")
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from dcmnet.md.calculator import DCMNetCalculator
    from dcmnet.errors import ConfigError
    from dcmnet.training.experiment import find_experiment_dir
    from dcmnet.inference.structures import read_structures

    out = Console()
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file; give a folder.")
    if args.format == "openmm":
        from dcmnet.export.openmm import require_openmm
        require_openmm()
    exp_dir = find_experiment_dir(args.experiment)
    calc = DCMNetCalculator(args.experiment, kind=args.kind)
    frames = read_structures(args.structures)
    charge = None
    if args.charge is not None:
        charge = args.charge[0] if len(args.charge) == 1 else list(args.charge)
    seen: dict = {}
    for at in frames:
        stem = Path(str(at.info.get("source", "mol")).split("@")[0]).stem or "mol"
        k = seen.get(stem, 0)
        seen[stem] = k + 1
        name = stem if k == 0 else f"{stem}_{k}"
        calc.charge = charge
        if args.format == "openmm":
            from dcmnet.export.openmm import to_openmm

            files = to_openmm(calc, at, charge=charge).write(out_dir, name)
        else:
            from dcmnet.export.charmm import to_charmm

            files = to_charmm(calc, at, out_dir, name=name, charge=charge)
            files.pop("prediction")
        out.print(f"{name}: " + ", ".join(str(p) for p in files.values()), highlight=False)
    out.print(f"model {exp_dir}; charges of the given conformation(s) (fixed geometry).",
              highlight=False)
    return 0
