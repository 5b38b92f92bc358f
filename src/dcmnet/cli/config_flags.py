"""Command-line flags generated from the config dataclasses (:mod:`dcmnet.config`).

Every field of ``ExperimentConfig``, ``ModelConfig`` and ``TrainingConfig`` whose metadata
does not say ``cli=False`` becomes one flag ``--field-name`` (dest = the field name):
booleans as ``--x/--no-x`` (``argparse.BooleanOptionalAction``), lists with ``nargs``,
``int | None`` as int. The help text is the field's ``help`` and ``unit`` metadata plus the
dataclass default, read from the dataclass (never written a second time). Every flag
defaults to ``None`` so that only given flags override a config file or a preset
(:func:`config_overrides`). Values are checked by the config's ``validate`` only.
"""
from __future__ import annotations

import argparse
import dataclasses

from dcmnet.config import ExperimentConfig, ModelConfig, TrainingConfig

#: (argument-group title, dataclass) in the order ``--help`` shows them.
SECTIONS = (("experiment settings (ExperimentConfig)", ExperimentConfig),
            ("model settings (ModelConfig)", ModelConfig),
            ("training settings (TrainingConfig)", TrainingConfig))

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list}


def config_fields(skip=()) -> list[tuple[str, dataclasses.Field]]:
    """``(group title, field)`` of every field that has a flag, ``skip`` (names) left out."""
    out = []
    for title, cls in SECTIONS:
        for f in dataclasses.fields(cls):
            if f.name in ("model", "training") or f.name in skip:
                continue
            if f.metadata.get("cli", True):
                out.append((title, f))
    return out


def flag_name(f: dataclasses.Field) -> str:
    """``--num-epochs`` for the field ``num_epochs``."""
    return "--" + f.name.replace("_", "-")


def field_type(f: dataclasses.Field) -> type:
    """The Python type of a field (``int | None`` → int), from its annotation."""
    name = str(f.type).replace(" | None", "").replace("Optional[", "").rstrip("]").strip()
    if name not in _TYPES:
        raise TypeError(f"config field {f.name}: no command-line type for {f.type!r}")
    return _TYPES[name]


def default_of(f: dataclasses.Field):
    """The dataclass default of a field (calling its ``default_factory``)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def shown_default(f: dataclasses.Field) -> str:
    """How ``--help`` states the default: ``on``/``off``, the value, or ``default_text``."""
    d = default_of(f)
    if isinstance(d, bool):
        return "on" if d else "off"
    if d is None or d == []:
        return f.metadata.get("default_text", "none")
    return str(d)


def help_text(f: dataclasses.Field) -> str:
    """``help [unit]; one of a, b (default: X)`` with ``%`` escaped for argparse."""
    m = f.metadata
    text = m.get("help", f.name)
    if m.get("unit"):
        text += f" [{m['unit']}]"
    if m.get("choices"):
        text += "; one of " + ", ".join(m["choices"])
    text += f" (default: {shown_default(f)})"
    return text.replace("%", "%%")


def _metavar(f: dataclasses.Field, typ: type) -> str:
    if "metavar" in f.metadata:
        return f.metadata["metavar"]
    return {int: "N", float: "X"}.get(typ) or f.name.split("_")[-1].upper()


def add_config_flags(parser: argparse.ArgumentParser, skip=(), note: str = "") -> None:
    """Add one flag per config field (see the module doc), grouped by section.

    Args:
        parser: the subcommand's parser.
        skip: field names the command sets itself (e.g. ``num_epochs`` in ``dcmnet tune``).
        note: appended to each group title (``", fixed for all trials"``).
    """
    groups: dict[str, argparse._ArgumentGroup] = {}
    for title, f in config_fields(skip):
        if title not in groups:
            groups[title] = parser.add_argument_group(title + note)
        typ = field_type(f)
        kw = {"default": None, "dest": f.name, "help": help_text(f)}
        if typ is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = str if typ is list else typ
            kw["metavar"] = _metavar(f, typ)
            if "nargs" in f.metadata:
                kw["nargs"] = f.metadata["nargs"]
        groups[title].add_argument(flag_name(f), **kw)


def config_overrides(args: argparse.Namespace, skip=()) -> dict:
    """Field name → value of every config flag given on the command line (lists as lists)."""
    out = {}
    for _, f in config_fields(skip):
        v = getattr(args, f.name, None)
        if v is not None:
            out[f.name] = list(v) if isinstance(v, (list, tuple)) else v
    return out
