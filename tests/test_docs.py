"""The docs test runner: every command in ``docs/*.md`` and ``README.md`` is executed.

How it works (the rules a doc writer needs to know)
===================================================

1. **Blocks.** Fenced code blocks are read in file order. Executed are ```` ```bash ````
   blocks (shell commands) and ```` ```python ```` blocks; ``text``, ``json`` and unlabelled
   blocks are shown output and are not run.
2. **Commands.** In a bash block every line that starts with ``dcmnet `` or ``python ``
   (lines ending in ``\\`` are joined with the next; ``# comments`` are dropped) is one
   command. Any other line (``pip install``, ``srun``, ``tensorboard`` ...) fails the test
   unless the whole block opts out (rule 5), so nothing in a bash block goes untested by
   accident.
3. **Tiny settings.** Commands keep their real, user-facing flags in the docs; the test
   *appends* :data:`TINY_APPEND` for the verb (argparse: the last flag wins), plus
   ``--data-files <16 small molecules>`` for ``train`` and ``tune`` unless the command gives
   ``--data-files``. Nothing is appended to ``--help``/``--version`` commands.
4. **Where and how.** Each doc file runs in its own empty working folder (``examples/`` is
   linked into it), commands and Python blocks in order, so later commands see what earlier
   ones wrote. ``dcmnet ARGS`` and ``python -m dcmnet ARGS`` run in-process through
   :func:`dcmnet.cli.main` (JAX starts once) and must return 0; ``python FILE.py ARGS`` runs
   the script in-process with ``--tiny`` appended. A command that starts with environment
   assignments (``XLA_FLAGS=... dcmnet ...``) runs as a subprocess, because that is the
   point of it. Python blocks share one namespace per doc file; in them
   :func:`dcmnet.training.runner.run_training` and :func:`dcmnet.tune.run_study` get the same tiny
   settings (and the small data set unless data are given; split sizes are dropped then).
5. **Markers** (an HTML comment on the line right before the fence, invisible on GitHub):

   * ``<!-- doc-test: skip (reason) -->``: the block is not run (``pip install``, ``srun``,
     ``sbatch``, ``tensorboard``). Use sparingly; the reason is required.
   * ``<!-- doc-test: expect-error -->``: a bash block with one command that must fail with
     exit status 2; the next fenced block (``text``) holds the message, which must match
     the real output (whitespace-insensitive; ``...`` matches anything). Nothing is
     appended to these commands and no training may start (they fail before it); a tiny
     trained ``experiments/demo`` exists for them.
   * ``<!-- doc-test: message -->``: a ``text`` block quoting an error message that is too
     costly to provoke; every piece between ``...`` must occur literally in a string of
     ``src/dcmnet`` (so a reworded message fails the test).
6. **Placeholders.** Input files a command or a Python string literal names and that do
   not exist yet are made from the bundled data: ``*.npz`` → the 16-molecule set,
   ``*.smi`` → two molecules, structures (``--structures`` values, ``*.xyz``, ``*.sdf``,
   ``*.pdb`` in Python) → two conformers of the bundled molecule named by the file stem
   (default methanol), ESP files (``*.esp``, ``*.espot``, ``*.h5``, ``*.extxyz`` as data)
   → that file format, ``experiments/NAME`` → a copy of a tiny trained experiment,
   ``EXP/checkpoints/KIND/STEP`` → a copy of its newest ``latest`` step, and the names in
   :data:`SPECIAL` (unit-mistake files, a folder of QM program outputs, ...). Only inputs
   are considered (found with dcmnet's own argument parser: ``--data-files``,
   ``--structures``, ``--config``, positional files and experiments), never outputs. In
   ``expect-error`` blocks only :data:`SPECIAL` names are made (a misspelt path must stay
   missing).

The executed command counts per doc file are printed (``pytest -s``) and written to
``doc_command_counts.json`` in the pytest temp folder.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, bundled_subset

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
DOC_IDS = [p.relative_to(ROOT).as_posix() for p in DOCS]

TINY_MODEL = ["--features", str(TINY["features"]), "--max-degree", str(TINY["max_degree"]),
              "--num-iterations", str(TINY["num_iterations"]),
              "--num-basis-functions", str(TINY["num_basis_functions"]), "--batch-size", "4"]
#: flags appended to each verb (the last flag wins in argparse)
TINY_APPEND = {
    "train": ["--num-epochs", "1", *TINY_MODEL, "--no-progress"],
    "tune": ["--n-trials", "2", "--num-epochs", "1", *TINY_MODEL],
    "generate": ["--method", "hf", "--basis", "sto-3g", "--n-conformers", "1", "--workers",
                 "1", "--no-progress"],
    "predict": ["--no-progress"],
    "plot": ["--dpi", "40"],
}
#: verbs that get ``--data-files SMALL`` unless the command names data files
DATA_VERBS = ("train", "tune")
#: the same tiny settings for the Python API
TINY_KWARGS = dict(num_epochs=1, features=TINY["features"], max_degree=TINY["max_degree"],
                   num_iterations=TINY["num_iterations"],
                   num_basis_functions=TINY["num_basis_functions"], batch_size=4)
#: argparse destinations that name inputs, and what kind of input
ATTR_ROLES = {"experiment": "experiment", "experiments": "experiment", "files": "data",
              "data_files": "data", "structures": "structures", "smiles": "data",
              "restart_checkpoint": "experiment", "config": "data", "search_space": "data"}
STRUCTURE_SUFFIXES = (".xyz", ".extxyz", ".sdf", ".pdb")
DATA_SUFFIXES = (".npz", ".esp", ".espot", ".h5", ".hdf5", ".extxyz")
MARKER_RE = re.compile(r"^\s*<!--\s*doc-test:\s*(skip|expect-error|message)\s*"
                       r"(?:\((.*)\))?\s*-->\s*$")
FENCE_RE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)\s*$")
COUNTS: dict[str, dict[str, int]] = {}


pytestmark = pytest.mark.usefixtures("jax_compile_cache")


# ----------------------------------------------------------------------------- parsing
@dataclasses.dataclass
class Block:
    doc: str
    lang: str
    text: str
    line: int
    marker: str | None = None
    reason: str = ""


def parse_blocks(path: Path) -> list[Block]:
    """Fenced blocks of a markdown file with their doc-test markers."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    rel = path.relative_to(ROOT).as_posix()
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = "\n".join(ln[len(indent):] if ln.startswith(indent) else ln
                         for ln in lines[i + 1:j])
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = MARKER_RE.match(lines[k]) if k >= 0 else None
        blocks.append(Block(rel, lang.lower(), body, i + 1,
                            marker.group(1) if marker else None,
                            (marker.group(2) or "").strip() if marker else ""))
        i = j + 1
    return blocks


def block_commands(block: Block) -> tuple[list[list[str]], list[str]]:
    """(commands as argv lists, lines that are not dcmnet/python commands)."""
    logical, cur = [], ""
    for ln in block.text.splitlines():
        if ln.rstrip().endswith("\\"):
            cur += ln.rstrip()[:-1] + " "
            continue
        logical.append(cur + ln)
        cur = ""
    if cur:
        logical.append(cur)
    cmds, other = [], []
    for ln in logical:
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        argv = shlex.split(s, comments=True)
        if not argv:
            continue
        k = 0
        while k < len(argv) and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[k]):
            k += 1
        if k < len(argv) and argv[k] in ("dcmnet", "python"):
            cmds.append(argv)
        else:
            other.append(s)
    return cmds, other


# ----------------------------------------------------------------------------- placeholders
def _bundled(name: str, n: int):
    from dcmnet.data.dataset import Dataset
    from dcmnet.data.loader import bundled_dataset_path

    ds = Dataset.load(bundled_dataset_path())
    names = set(ds.name.tolist())
    stem = Path(name.rstrip("/")).name.split(".")[0]
    mol = next((c for c in (stem, stem.split("_")[0]) if c in names), "methanol")
    return bundled_subset([mol], n)


def _write_structures(path: Path, n: int = 2) -> None:
    from ase import Atoms
    from ase.io import write

    ds = _bundled(path.name, n)
    frames = []
    for i in range(len(ds)):
        m = ds.molecule(i)
        a = Atoms(numbers=m["Z"], positions=m["R"])
        a.info["charge"] = int(round(float(m["net_charge"])))
        frames.append(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".sdf":                       # ASE reads SDF but does not write it
        from ase.data import chemical_symbols
        out = []
        for a in frames:
            out += [str(path.stem), "  dcmnet-docs", "",
                    f"{len(a):3d}  0  0  0  0  0  0  0  0  0999 V2000"]
            out += [f"{x:10.4f}{y:10.4f}{z:10.4f} {chemical_symbols[Zi]:<3s} 0  0  0  0  0  0"
                    "  0  0  0  0  0  0" for (x, y, z), Zi in zip(a.positions, a.numbers)]
            out += ["M  END", "$$$$"]
        path.write_text("\n".join(out) + "\n")
    else:
        write(str(path), frames, format="extxyz" if path.suffix == ".extxyz" else None)


def _write_qm_folder(folder: Path) -> None:
    """Outputs of several QM programs: Gaussian .esp (water, 3 conformers), psi4
    (methylammonium, +1) and ORCA (acetate, -1) files in sub-folders."""
    from dcmnet.data.readers import write_gaussian_esp, write_orca, write_psi4_grid

    folder.mkdir(parents=True, exist_ok=True)
    write_gaussian_esp(bundled_subset(["water"], 3), folder / "water.esp")
    write_psi4_grid(bundled_subset(["methylammonium"], 1).molecule(0),
                    folder / "methylammonium_psi4")
    write_orca(bundled_subset(["acetate"], 1).molecule(0), folder / "acetate_orca",
               name="acetate")


def _special_kcal(path: Path) -> None:
    from dcmnet.data.readers import write_extxyz
    from dcmnet.units import HARTREE_TO_KCAL_MOL

    ds = bundled_subset(["water"], 1)
    ds.esp = (ds.esp * HARTREE_TO_KCAL_MOL).astype(np.float32)
    write_extxyz(ds, path)


def _special_bohr(path: Path) -> None:
    from dcmnet.data.readers import write_extxyz
    from dcmnet.units import ANGSTROM_TO_BOHR

    ds = bundled_subset(["methanol"], 1)
    ds.R = ds.R * ANGSTROM_TO_BOHR
    ds.grid = (ds.grid * ANGSTROM_TO_BOHR).astype(np.float32)
    write_extxyz(ds, path)


def _special_mmml(path: Path) -> None:
    from dcmnet.data.mmml import write_mmml_npz

    write_mmml_npz(bundled_subset(["water", "methanol", "acetate", "methylammonium"], 2), path)


def _special_text(text: str):
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return make


def _special_bromomethane(path: Path) -> None:
    from ase import Atoms
    from ase.io import write

    write(str(path), Atoms("CBrHHH", positions=[
        [0.0, 0.0, 0.0], [0.0, 0.0, 1.94], [1.03, 0.0, -0.36], [-0.51, 0.89, -0.36],
        [-0.51, -0.89, -0.36]]))


#: placeholders made by name (also in expect-error blocks)
SPECIAL = {
    "kcal_esp.extxyz": _special_kcal,
    "bohr_esp.extxyz": _special_bohr,
    "old.npz": _special_mmml,
    "old_script.npz": _special_mmml,
    "runs/": _write_qm_folder,
    "qm_runs/": _write_qm_folder,
    "bad_space.json": _special_text('{"n_dmc": [1, 2, 3]}\n'),
    "charged.smi": _special_text("CC(=O)[O-] acetate 0\n"),
    "bromomethane.xyz": _special_bromomethane,
}
DEFAULT_SMILES = "# SMILES name [net charge]\nO water\nC[NH3+] methylammonium 1\n"


class Workspace:
    """The working folder of one doc file and the placeholder factory."""

    def __init__(self, root: Path, request, small_npz: Path):
        self.root = root
        self.request = request
        self.small = Path(small_npz)
        self.made: list[str] = []

    # -- experiments
    def experiment(self, rel: str) -> None:
        from dcmnet.config import ExperimentConfig

        parts = Path(rel).parts
        exp = self.root / Path(*parts[:2])
        if not exp.exists():
            src = Path(self.request.getfixturevalue("tiny_experiment"))
            shutil.copytree(src, exp)
            cfg = ExperimentConfig.load(exp / "config.json")
            cfg.name, cfg.output_dir = exp.name, str(exp.parent)
            cfg.save(exp / "config.json")
            self.made.append(str(exp.relative_to(self.root)))
        m = re.search(r"checkpoints/(best|latest|periodic)/(\d+)$", rel)
        target = self.root / rel
        if m and not target.exists():
            latest = exp / "checkpoints" / "latest"
            newest = max((p for p in latest.iterdir() if p.name.isdigit()),
                         key=lambda p: int(p.name))
            shutil.copytree(newest, target)
            self.made.append(rel)

    # -- files
    def ensure(self, name: str, role: str, special_only: bool = False) -> None:
        """Make the input ``name`` (relative to the working folder) if it is missing."""
        if not name or name.startswith("-") or "$" in name or "://" in name:
            return
        p = Path(name)
        if p.is_absolute():
            return
        target = self.root / p
        key = name if name in SPECIAL else (p.name + "/" if name.endswith("/") else p.name)
        if name.startswith("experiments/") and len(p.parts) >= 2:
            if not special_only or name.rstrip("/") == "experiments/demo":
                self.experiment(name.rstrip("/"))
            return
        if target.exists():
            return
        if key in SPECIAL:
            SPECIAL[key](target)
        elif special_only:
            return
        elif role == "structures" and p.suffix in STRUCTURE_SUFFIXES:
            _write_structures(target)
        elif p.suffix == ".npz":
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.small, target)
        elif p.suffix == ".smi":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(DEFAULT_SMILES)
        elif p.suffix in DATA_SUFFIXES and role == "data":
            ds = _bundled(p.name, 2)
            from dcmnet.data.readers import write_espot, write_extxyz, write_gaussian_esp, \
                write_hdf5
            target.parent.mkdir(parents=True, exist_ok=True)
            if p.suffix == ".esp":
                write_gaussian_esp(ds, target)
            elif p.suffix == ".espot":
                write_espot(ds.subset([0]), target)
            elif p.suffix in (".h5", ".hdf5"):
                write_hdf5(ds, target)
            else:
                write_extxyz(ds, target)
        elif p.suffix in STRUCTURE_SUFFIXES:
            _write_structures(target)
        elif name.endswith("/") and role == "data":
            _write_qm_folder(target)
        else:
            return
        self.made.append(name)

    def ensure_argv(self, argv: list[str], special_only: bool = False) -> None:
        """Placeholders for the inputs of a ``dcmnet`` command line (``argv[0]`` = verb),
        found with dcmnet's own argument parser."""
        from dcmnet.cli.main import build_parser

        try:
            import contextlib
            import io
            with contextlib.redirect_stderr(io.StringIO()):
                args = build_parser().parse_args(argv)
        except SystemExit:
            return
        for attr, role in ATTR_ROLES.items():
            value = getattr(args, attr, None)
            if value is None or argv[0] == "merge":
                continue
            for v in value if isinstance(value, list) else [value]:
                self.ensure(str(v), role, special_only)

    def ensure_python(self, code: str) -> None:
        """Placeholders for string literals in a Python block that name input files."""
        for s in re.findall(r"[\"']([\w./-]+)[\"']", code):
            p = Path(s)
            if s.startswith("experiments/"):
                self.ensure(s, "experiment")
            elif s in SPECIAL:
                self.ensure(s, "data")
            elif p.suffix in STRUCTURE_SUFFIXES:
                self.ensure(s, "structures")
            elif p.suffix == ".npz":
                self.ensure(s, "data")


# ----------------------------------------------------------------------------- running
def tiny_argv(argv: list[str], small: Path) -> list[str]:
    """``argv`` (without the program name) with the tiny settings of its verb appended."""
    if not argv or any(a in ("-h", "--help", "--version") for a in argv):
        return list(argv)
    verb = argv[0]
    out = list(argv) + TINY_APPEND.get(verb, [])
    if verb in DATA_VERBS and "--data-files" not in argv:
        out += ["--data-files", str(small)]
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _squash(text: str) -> str:
    """Text without any whitespace (rich wraps long messages, even inside long words)."""
    return re.sub(r"\s+", "", text)


def message_regex(text: str) -> re.Pattern:
    """A quoted message as a regex over squashed output: ``...`` matches anything."""
    return re.compile(".*?".join(re.escape(_squash(p)) for p in text.strip().split("...")),
                      re.S)


def _run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from dcmnet.cli.main import main

    try:
        rc = main(argv)
    except SystemExit as exc:          # argparse: --help (0) or a usage error (2)
        rc = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    sys.stdout.write(out.out)
    sys.stderr.write(out.err)
    return rc, out.out + out.err


def _run_script(argv: list[str], capsys) -> tuple[int, str]:
    script = Path(argv[0])
    old = sys.argv
    sys.argv = [str(script)] + argv[1:]
    rc = 0
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    sys.stdout.write(out.out)
    sys.stderr.write(out.err)
    return rc, out.out + out.err


def _run_subprocess(env_assign: list[str], argv: list[str]) -> tuple[int, str]:
    env = dict(os.environ)
    for a in env_assign:
        k, v = a.split("=", 1)
        env[k] = v
    if argv[0] == "dcmnet":
        cmd = [sys.executable, "-m", "dcmnet"] + argv[1:]
    else:
        cmd = [sys.executable] + argv[1:]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    return p.returncode, p.stdout + p.stderr


class DocRunner:
    def __init__(self, doc: str, ws: Workspace, capsys, monkeypatch):
        self.doc, self.ws, self.capsys, self.monkeypatch = doc, ws, capsys, monkeypatch
        self.ns: dict = {"__name__": "__doc_test__"}
        self.counts = {"commands": 0, "python_blocks": 0, "expected_errors": 0,
                       "skipped_blocks": 0, "quoted_messages": 0}

    def where(self, block: Block) -> str:
        return f"{block.doc}:{block.line}"

    def run_command(self, argv: list[str], block: Block) -> None:
        env_assign = []
        while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
            env_assign.append(argv.pop(0))
        prog, args = argv[0], argv[1:]
        if prog == "python" and args[:2] == ["-m", "dcmnet"]:
            prog, args = "dcmnet", args[2:]
        shown = " ".join(argv)
        if prog == "dcmnet":
            self.ws.ensure_argv(args)
            full = tiny_argv(args, self.ws.small)
            if env_assign:
                rc, out = _run_subprocess(env_assign, ["dcmnet"] + full)
            else:
                rc, out = _run_cli(full, self.capsys)
        else:
            if args and args[0] == "-c":
                rc, out = _run_subprocess(env_assign, ["python"] + args)
            else:
                script = Path(args[0])
                assert script.suffix == ".py", f"{self.where(block)}: cannot run {shown!r}"
                full = [str(script)] + args[1:] + ["--tiny"]
                rc, out = (_run_subprocess(env_assign, ["python"] + full) if env_assign
                           else _run_script(full, self.capsys))
        assert rc == 0, (f"{self.where(block)}: `{shown}` exited with {rc}; run with tiny "
                         f"settings appended. Output:\n{out[-4000:]}")
        self.counts["commands"] += 1

    def run_expected_error(self, block: Block, expected: Block | None) -> None:
        cmds, other = block_commands(block)
        assert len(cmds) == 1 and not other, (
            f"{self.where(block)}: an expect-error block holds exactly one command")
        assert expected is not None and expected.lang in ("text", ""), (
            f"{self.where(block)}: an expect-error block must be followed by a text block "
            "with the message")
        argv = cmds[0]
        assert argv[0] == "dcmnet", f"{self.where(block)}: expect-error needs a dcmnet command"
        self.ws.ensure("experiments/demo", "experiment")
        self.ws.ensure_argv(argv[1:], special_only=True)

        def no_training(*a, **k):
            raise AssertionError(f"{self.where(block)}: training started; an expect-error "
                                 "command must fail before it")
        with self.monkeypatch.context() as mp:
            import dcmnet.training.loop
            mp.setattr(dcmnet.training.loop, "train_model", no_training)
            rc, out = _run_cli(argv[1:], self.capsys)
        assert rc == 2, f"{self.where(block)}: expected exit status 2, got {rc}:\n{out}"
        assert message_regex(expected.text).search(_squash(out)), (
            f"{self.where(expected)}: the quoted message does not match the real output.\n"
            f"quoted:\n{expected.text.strip()}\nreal:\n{out.strip()}")
        self.counts["expected_errors"] += 1

    def run_python(self, block: Block) -> None:
        """Execute a Python block; run_training/run_study get the tiny settings."""
        import dcmnet.training.runner
        import dcmnet.tune

        small = str(self.ws.small)
        real_train, real_study = dcmnet.training.runner.run_training, dcmnet.tune.run_study

        def tiny_data(kw, config=None):
            if not kw.get("data_files") and not (config is not None and config.data_files):
                kw["data_files"] = [small]
                kw.pop("num_train", None)
                kw.pop("num_valid", None)

        def run_training(name=None, **kw):
            tiny_data(kw, kw.get("config"))
            kw.update(TINY_KWARGS)
            kw.setdefault("progress", False)
            return real_train(name, **kw)

        def run_study(study_name, **kw):
            tiny_data(kw)
            kw.update(TINY_KWARGS, n_trials=2)
            return real_study(study_name, **kw)

        self.ws.ensure_python(block.text)
        code = compile(block.text, self.where(block), "exec")
        with self.monkeypatch.context() as mp:
            mp.setattr(dcmnet.training.runner, "run_training", run_training)
            mp.setattr(dcmnet.tune, "run_study", run_study)
            exec(code, self.ns)                               # noqa: S102 - the docs' code
        out = self.capsys.readouterr()
        sys.stdout.write(out.out)
        sys.stderr.write(out.err)
        self.counts["python_blocks"] += 1

    def run(self, blocks: list[Block]) -> None:
        for n, block in enumerate(blocks):
            nxt = blocks[n + 1] if n + 1 < len(blocks) else None
            if block.marker == "skip":
                self.counts["skipped_blocks"] += 1
                continue
            if block.marker == "message":
                check_quoted_message(block)
                self.counts["quoted_messages"] += 1
                continue
            if block.lang == "bash" and block.marker == "expect-error":
                self.run_expected_error(block, nxt)
            elif block.lang == "bash":
                cmds, other = block_commands(block)
                assert not other, (f"{self.where(block)}: not a dcmnet/python command: "
                                   f"{other}; mark the block <!-- doc-test: skip (reason) -->")
                for argv in cmds:
                    self.run_command(argv, block)
            elif block.lang == "python":
                self.run_python(block)


# ----------------------------------------------------------------------------- messages
def _source_literals() -> list[str]:
    """The literal pieces of every string in src/dcmnet (f-string parts split at fields)."""
    pieces = []
    for f in (ROOT / "src" / "dcmnet").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces.append(node.value)
            elif isinstance(node, ast.JoinedStr):
                pieces += [v.value for v in node.values
                           if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return pieces


_LITERALS: list[str] = []


def check_quoted_message(block: Block) -> None:
    """Every piece between ``...`` of a quoted message occurs in one source string."""
    if not _LITERALS:
        _LITERALS.extend(_norm(s) for s in _source_literals())
    text = block.text.strip()
    if text.startswith("error: "):
        text = text[len("error: "):]
    pieces = [_norm(p) for p in text.split("...") if _norm(p)]
    assert sum(len(p) for p in pieces) >= 20, f"{block.doc}:{block.line}: message too short"
    for p in pieces:
        assert any(p in lit for lit in _LITERALS), (
            f"{block.doc}:{block.line}: quoted message piece not found in src/dcmnet: {p!r}")


# ----------------------------------------------------------------------------- tests
def test_docs_are_runnable_as_written():
    """Static checks (no JAX): every executable block yields commands, markers have reasons,
    expect-error blocks are followed by their message."""
    problems, n_cmds = [], 0
    for doc in DOCS:
        blocks = parse_blocks(doc)
        for n, b in enumerate(blocks):
            where = f"{b.doc}:{b.line}"
            if b.marker == "skip":
                if not b.reason:
                    problems.append(f"{where}: skip marker without a reason")
                continue
            if b.marker == "message":
                if b.lang not in ("text", ""):
                    problems.append(f"{where}: a message marker belongs before a text block")
                continue
            if b.lang == "bash":
                cmds, other = block_commands(b)
                n_cmds += len(cmds)
                if other:
                    problems.append(f"{where}: lines that are not dcmnet/python commands: "
                                    f"{other} (mark the block skip with a reason)")
                if not cmds:
                    problems.append(f"{where}: a bash block without commands")
                if b.marker == "expect-error" and (
                        n + 1 >= len(blocks) or blocks[n + 1].lang not in ("text", "")):
                    problems.append(f"{where}: expect-error block without a message block")
                for argv in cmds:
                    if any(t in ("...", "FILE", "NAME") or t.startswith("[") for t in argv):
                        problems.append(f"{where}: placeholder token in {' '.join(argv)!r}")
            elif b.marker == "expect-error":
                problems.append(f"{where}: expect-error on a {b.lang or 'plain'} block")
    assert not problems, "\n".join(problems)
    assert n_cmds >= 40


def test_quoted_error_messages_exist_in_the_source():
    for doc in DOCS:
        for b in parse_blocks(doc):
            if b.marker == "message":
                check_quoted_message(b)


def test_troubleshooting_covers_the_error_families():
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    for word in ("DataError", "ConfigError", "CheckpointError", "OptionalDependencyError",
                 "TrainingDiverged", "--esp-unit", "--length-unit", "--net-charge",
                 "--overwrite", "--max-atomic-number"):
        assert word in text, word


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_doc_commands_run(doc, tmp_path, monkeypatch, capsys, request, small_npz,
                          tmp_path_factory):
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(work)
    ws = Workspace(work, request, small_npz)
    runner = DocRunner(doc.relative_to(ROOT).as_posix(), ws, capsys, monkeypatch)
    blocks = parse_blocks(doc)
    runner.run(blocks)
    COUNTS[runner.doc] = {**runner.counts, "placeholders": len(ws.made)}
    print(f"\n{runner.doc}: {runner.counts}; placeholders made: {ws.made}")
    out = tmp_path_factory.getbasetemp() / "doc_command_counts.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**old, **COUNTS}, indent=1))
    executable = any(b.lang in ("bash", "python") and b.marker != "skip" for b in blocks)
    assert not executable or sum(runner.counts[k] for k in (
        "commands", "python_blocks", "expected_errors")) > 0
