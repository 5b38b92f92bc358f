"""``dcmnet models``: the pretrained models shipped with dcmnet and their cards."""
from __future__ import annotations


def add_parsers(sub) -> None:
    """Register ``models``."""
    p = sub.add_parser(
        "models", help="list the shipped pretrained models (or show one model's card)",
        description="Lists the DCM-net models shipped inside the package with their card's "
                    "summary. A model's name works wherever an experiment folder does "
                    "(dcmnet predict dcmnet-general --structures mol.xyz). With NAME, prints "
                    "that model's card (data, level of theory, domain, accuracy, commands).")
    p.add_argument("name", nargs="?", default=None, help="a shipped model's name")
    p.set_defaults(func=run_models)


def _headline(card) -> str:
    acc = card.accuracy.get("overall", {}) if isinstance(card.accuracy, dict) else {}
    model = acc.get(card.name) or acc.get("DCM-net") or {}
    med = model.get("esp_rmse_median")
    return f"{med:.2f}" if isinstance(med, (int, float)) else "-"


def run_models(args) -> int:
    from ase.data import chemical_symbols
    from rich.console import Console

    from dcmnet.errors import DCMNetError
    from dcmnet.models import list_models, shipped_model_dir

    out = Console()
    cards = list_models()
    if args.name:
        d = shipped_model_dir(args.name)
        if d is None:
            names = ", ".join(c.name for c in cards) or "none"
            raise DCMNetError(f"no shipped model named '{args.name}' (shipped: {names}).")
        md = d / "card.md"
        out.print(md.read_text() if md.exists() else (d / "card.json").read_text(),
                  markup=False, highlight=False)
        return 0
    if not cards:
        out.print("no models are shipped with this installation.")
        return 0
    out.print("shipped DCM-net models (dcmnet models NAME shows a card; the name works "
              "wherever an experiment folder does):", highlight=False)
    for c in cards:
        charges = " ".join(f"{q:+d}" if q else "0" for q in sorted(c.net_charges))
        elements = " ".join(chemical_symbols[z] for z in sorted(c.elements))
        out.print(f"\n[bold]{c.name}[/]  n_dcm {c.n_dcm}, {c.level_of_theory}, elements "
                  f"{elements}, net charges {charges}", highlight=False)
        out.print(f"    {c.summary}", highlight=False, markup=False)
        out.print(f"    held-out median ESP RMSE: {_headline(c)} kcal/(mol·e)", highlight=False)
    return 0
