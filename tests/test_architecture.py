"""The layering of docs/architecture.md holds in the code (read with ast, nothing imported).

* no module of ``src/dcmnet`` imports a module of a higher layer (function-level imports
  count too: a lazy import must not hide an upward dependency);
* inside ``dcmnet.data`` the same holds for its own layers;
* the top level of ``src/dcmnet`` holds at most 12 modules, no module is over 450 lines,
  no function over 80 lines;
* ruff (``[tool.ruff]`` in pyproject.toml) finds nothing, when it is installed.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dcmnet"

#: The layers of docs/architecture.md, lowest first: a module may import its own layer and
#: the layers below it. Each entry is a module or a package (then all of its modules).
LAYERS: list[tuple[str, ...]] = [
    ("dcmnet", "dcmnet.errors", "dcmnet.units", "dcmnet.fileio"),          # foundation
    ("dcmnet.electrostatics", "dcmnet.surface", "dcmnet.fitting", "dcmnet.fragments",  # physics
     "dcmnet.config"),
    ("dcmnet.data",),                                                       # data
    ("dcmnet.model", "dcmnet.message_passing", "dcmnet.models",             # model, QM data,
     "dcmnet.generate", "dcmnet.fitting_dcm"),                              # fitted DCM
    ("dcmnet.training",),                                                   # training
    ("dcmnet.inference",),                                                  # prediction
    ("dcmnet.md",),                                                         # simulation
    ("dcmnet.export",),                                                     # MD engines
    ("dcmnet.analysis",),                                                   # reports
    ("dcmnet.tune",),                                                       # search
    ("dcmnet.cli", "dcmnet.__main__"),                                      # command line
    ("dcmnet.compat",),                                                     # original tool
]

#: The layers inside ``dcmnet.data`` (its ``__init__`` faces stand above them all).
DATA_LAYERS: list[tuple[str, ...]] = [
    ("dcmnet.data.dataset", "dcmnet.data.ondisk", "dcmnet.data.ondisk_writer",
     "dcmnet.data.split", "dcmnet.data.mmml", "dcmnet.data.mmml_build", "dcmnet.data.batching",
     "dcmnet.data.prefetch"),
    ("dcmnet.data.readers",),
    ("dcmnet.data.sanity", "dcmnet.data.connectivity"),
    ("dcmnet.data.loader", "dcmnet.data.prepare"),
]

MAX_TOP_LEVEL_MODULES = 12
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """dcmnet modules that ``path`` imports anywhere in it (``from a import b`` → ``a.b``
    when that is a module, else ``a``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "dcmnet":
                continue
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known:
                out.add(name)
    return out


def _layer_of(module: str, layers) -> int | None:
    best, rank = -1, None
    for i, layer in enumerate(layers):
        for prefix in layer:
            hit = module == prefix or (prefix != "dcmnet" and module.startswith(prefix + "."))
            if hit and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def _upward(layers, scope: str = "") -> list[str]:
    mods = _modules()
    known = set(mods)
    bad = []
    for mod, path in mods.items():
        if scope and not mod.startswith(scope + "."):
            continue
        own = _layer_of(mod, layers)
        if own is None:
            if scope and path.name == "__init__.py":
                continue                    # a package face inside the scope: on top
            bad.append(f"{mod}: in no layer (add it to LAYERS and docs/architecture.md)")
            continue
        for dep in sorted(_imports(path, known)):
            if scope and not dep.startswith(scope + "."):
                continue
            if scope and mods[dep].name == "__init__.py" and dep == scope:
                continue
            theirs = _layer_of(dep, layers)
            if theirs is not None and theirs > own:
                bad.append(f"{mod} (layer {own}) imports {dep} (layer {theirs})")
    return bad


def test_every_module_sits_in_a_layer_and_imports_none_above_it():
    assert _upward(LAYERS) == []


def test_data_package_layers():
    assert _upward(DATA_LAYERS, scope="dcmnet.data") == []


def test_layering_check_can_fail(tmp_path):
    """The checker sees an upward import (here: units importing the CLI)."""
    src = tmp_path / "units.py"
    src.write_text("def f():\n    from dcmnet.cli.main import main\n")
    known = set(_modules())
    deps = _imports(src, known)
    assert deps == {"dcmnet.cli.main"}
    assert _layer_of("dcmnet.cli.main", LAYERS) > _layer_of("dcmnet.units", LAYERS)
    assert _layer_of("dcmnet.data.readers.npz", DATA_LAYERS) == 1


def test_top_level_holds_few_modules():
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    assert not [p for p in top if p.startswith(("cli", "train"))], top


def test_no_module_over_the_line_limit():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``module:function (lines)`` for each function of ``path`` longer than ``limit``
    lines (docstring and comments included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                rel = "/".join(path.parts[len(path.parts) - path.parts[::-1].index("dcmnet") - 1:])
                out.append(f"{rel}:{node.name} ({n} lines)")
    return out


def test_no_function_over_the_line_limit():
    long = [f for p in sorted(SRC.rglob("*.py")) for f in long_functions(p)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them): {long}"


def test_function_limit_check_can_fail(tmp_path):
    f = tmp_path / "dcmnet" / "m.py"
    f.parent.mkdir()
    f.write_text("def f():\n" + "    x = 1\n" * 85)
    assert long_functions(f) == ["dcmnet/m.py:f (86 lines)"]


def test_architecture_page_names_every_layer():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer in LAYERS:
        for prefix in layer:
            if prefix != "dcmnet":
                assert f"`{prefix.removeprefix('dcmnet.')}" in page, prefix


#: ruff next to this Python (a virtual environment) or on PATH.
RUFF = (str(Path(sys.executable).parent / "ruff")
        if (Path(sys.executable).parent / "ruff").exists() else shutil.which("ruff"))


@pytest.mark.skipif(RUFF is None, reason="ruff not installed (the test extra has it)")
def test_ruff_finds_nothing():
    exe = RUFF
    res = subprocess.run([exe, "check", "--quiet", "src", "tests", "benchmarks", "scripts",
                          "examples"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
