"""Pretrained DCM-net models shipped inside the package, and their model cards.

A shipped model is a folder ``dcmnet/models/<name>/`` laid out like an experiment folder
(``config.json`` and an orbax checkpoint under ``checkpoints/best/<step>/`` holding only
the parameters) plus ``card.json`` (machine-readable card: data, level of theory, elements
and charge states covered, split, accuracy) and ``card.md`` (the same for people). Its
name is accepted wherever an experiment folder is (``dcmnet predict dcmnet-general ...``);
a folder of the same name in the working directory takes precedence, with a warning.

This module is low in the layering: it reads JSON and knows paths; it never imports JAX,
training or analysis code.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dcmnet.errors import DataError

#: Folder holding the shipped models.
MODELS_DIR = Path(__file__).resolve().parent
CARD_NAME = "card.json"


@dataclasses.dataclass
class ModelCard:
    """What a shipped model is, where it is valid, and how well it does.

    Attributes:
        name: model name (``dcmnet-general``).
        summary: one line for ``dcmnet models``.
        n_dcm: charges per atom.
        level_of_theory: reference method/basis of the training ESPs.
        elements: atomic numbers present in the training data.
        net_charges: molecular net charges (e) present in the training data.
        max_heavy_atoms: largest training molecule (heavy atoms).
        data: description of the training data (molecules, conformers, sources).
        split: description of the held-out set.
        accuracy: benchmark table (method -> metrics) as printed by
            ``benchmarks/bench_general.py``; numbers are never typed by hand.
        commands: the commands that reproduce the data, training and benchmark.
        path: folder of the model (filled in when loaded).
    """

    name: str
    summary: str
    n_dcm: int
    level_of_theory: str
    elements: list[int]
    net_charges: list[int]
    max_heavy_atoms: int = 0
    data: dict = dataclasses.field(default_factory=dict)
    split: dict = dataclasses.field(default_factory=dict)
    accuracy: dict = dataclasses.field(default_factory=dict)
    commands: list[str] = dataclasses.field(default_factory=list)
    path: str = ""

    @classmethod
    def load(cls, folder) -> "ModelCard":
        """Read ``folder/card.json``.

        Raises:
            DataError: missing or malformed card.
        """
        folder = Path(folder)
        try:
            d = json.loads((folder / CARD_NAME).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{folder / CARD_NAME}: cannot read the model card ({exc}).") from exc
        fields = {f.name for f in dataclasses.fields(cls)}
        card = cls(**{k: v for k, v in d.items() if k in fields})
        card.path = str(folder)
        return card

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def list_models() -> list[ModelCard]:
    """Cards of every shipped model, sorted by name."""
    cards = []
    for d in sorted(MODELS_DIR.iterdir()):
        if d.is_dir() and (d / CARD_NAME).exists():
            cards.append(ModelCard.load(d))
    return cards


def shipped_model_dir(name) -> Path | None:
    """Folder of the shipped model called ``name`` (a plain name, no path), or None."""
    s = str(name)
    if not s or "/" in s or "\\" in s or s.startswith("."):
        return None
    d = MODELS_DIR / s
    return d if (d / CARD_NAME).exists() else None


def card_of(exp_dir) -> ModelCard | None:
    """The card of an experiment folder if it is a shipped model (or carries a card)."""
    p = Path(exp_dir)
    return ModelCard.load(p) if (p / CARD_NAME).exists() else None


class DomainWarning(UserWarning):
    """A structure lies outside the training domain of the model predicting it."""


def electron_count(Z, net_charge: float) -> int:
    """Number of electrons of a molecule with atomic numbers Z and net charge (e)."""
    return int(sum(int(z) for z in Z) - round(float(net_charge)))


def domain_warnings(card: ModelCard, Z, net_charge: float, where: str = "structure") -> list[str]:
    """Reasons why a structure lies outside a model's training domain (empty if none).

    Checks: elements absent from the training data (each atom named by index and symbol),
    a net charge absent from the training data, an odd electron count for the given net
    charge (a radical: the model was trained on closed shells only), and molecules larger
    than any training molecule.

    Args:
        card: the model's card.
        Z: (N,) atomic numbers of the structure.
        net_charge: its net charge (e).
        where: how to name the structure in the messages (file and frame).
    """
    from ase.data import chemical_symbols

    out = []
    known = set(int(z) for z in card.elements)
    missing = [(i, int(z)) for i, z in enumerate(Z) if int(z) not in known]
    if missing:
        atoms = ", ".join(f"atom {i} ({chemical_symbols[z]})" for i, z in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        trained = " ".join(chemical_symbols[z] for z in sorted(known))
        out.append(f"{where}: {atoms}{more}: element not in the training data of "
                   f"{card.name} (trained on {trained}); its charges are extrapolated. "
                   f"Fix: fine-tune on reference data with this element "
                   f"(dcmnet generate, then dcmnet train --init-from {card.name}).")
    q = int(round(float(net_charge)))
    if card.net_charges and q not in set(int(c) for c in card.net_charges):
        out.append(f"{where}: net charge {q:+d} e is not in the training data of {card.name} "
                   f"(net charges {sorted(card.net_charges)}); check the charge or fine-tune.")
    if electron_count(Z, net_charge) % 2:
        out.append(f"{where}: {electron_count(Z, net_charge)} electrons for net charge {q:+d} "
                   f"(odd: a radical); {card.name} was trained on closed shells. Fix: give "
                   "the right net charge (--charge, or formal charges in an SDF file).")
    heavy = sum(1 for z in Z if int(z) > 1)
    if card.max_heavy_atoms and heavy > 2 * card.max_heavy_atoms:
        out.append(f"{where}: {heavy} heavy atoms, more than twice the largest training "
                   f"molecule of {card.name} ({card.max_heavy_atoms}); expect larger errors.")
    return out


def render_card_markdown(card: ModelCard) -> str:
    """The human-readable model card (``card.md``) made from ``card.json``'s fields, so the
    two never disagree; the accuracy table is the benchmark's output as stored."""
    from ase.data import chemical_symbols

    lines = [f"# {card.name}", "", card.summary, "",
             "| | |", "|---|---|",
             f"| charges per atom (n_dcm) | {card.n_dcm} |",
             f"| level of theory | {card.level_of_theory} |",
             f"| elements | {' '.join(chemical_symbols[z] for z in sorted(card.elements))} |",
             f"| net charges (e) | {' '.join(f'{q:+d}' if q else '0' for q in sorted(card.net_charges))} |",
             f"| largest training molecule | {card.max_heavy_atoms} heavy atoms |"]
    for k, v in card.data.items():
        lines.append(f"| data: {k} | {v} |")
    for k, v in card.split.items():
        lines.append(f"| split: {k} | {v} |")
    lines += ["", "## Accuracy on held-out molecules", ""]
    acc = card.accuracy or {}
    if not acc:
        lines.append("Not benchmarked yet (run benchmarks/bench_general.py --write-card).")
    else:
        if acc.get("command"):
            lines += [f"Produced by `{acc['command']}` ({acc.get('date', '')}).", ""]
        for group, table in acc.items():
            if not isinstance(table, dict) or not table:
                continue
            cols = sorted({c for row in table.values() if isinstance(row, dict) for c in row})
            lines += [f"### {group}", "", "| method | " + " | ".join(cols) + " |",
                      "|---|" + "---|" * len(cols)]
            for method, row in table.items():
                if isinstance(row, dict):
                    cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else
                             str(row.get(c, "")) for c in cols]
                    lines.append(f"| {method} | " + " | ".join(cells) + " |")
            lines.append("")
        if acc.get("units"):
            lines += [f"Units: {acc['units']}", ""]
    lines += ["## Domain", "",
              "Structures with elements or net charges absent from the training data, odd "
              "electron counts, or far larger molecules get a warning naming the atom and "
              "the fix; elements beyond the embedding are refused.", "",
              "## Reproduce", ""]
    lines += [f"    {c}" for c in card.commands]
    return "\n".join(lines) + "\n"
