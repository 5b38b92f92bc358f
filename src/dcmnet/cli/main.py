"""The ``dcmnet`` command line: one subcommand per task.

Every subcommand lives in its own module and is imported lazily, so ``dcmnet generate``
never imports JAX and ``dcmnet train`` never imports PySCF. User errors
(:class:`dcmnet.errors.DCMNetError`) are printed as one clear message with exit status 2.
"""
from __future__ import annotations

import argparse
import shlex
import sys


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands)."""
    from dcmnet import __version__
    from dcmnet.cli.generate import add_parsers as add_generate

    parser = argparse.ArgumentParser(
        prog="dcmnet",
        description="Distributed charge models learned by an equivariant neural network.")
    parser.add_argument("--version", action="version", version=f"dcmnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _command_modules():
        add(sub)
    add_generate(sub)
    for p in sub.choices.values():
        p.allow_abbrev = False  # --num-epoch must not silently mean --num-epochs
    return parser


def _unknown_arguments(parser, args, extra: list[str]) -> None:
    """Report unknown flags with the subcommand's usage and a close match (exits 2)."""
    import difflib

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    target = sub.choices.get(getattr(args, "command", None) or "", parser)
    known = [o for a in target._actions for o in a.option_strings]
    hints = []
    for e in extra:
        close = difflib.get_close_matches(e.split("=")[0], known, n=1) if e.startswith("-") else []
        if close:
            hints.append(f"{e} (did you mean {close[0]}?)")
    msg = f"unrecognized arguments: {' '.join(extra)}"
    if hints:
        msg += "; " + "; ".join(hints)
    target.error(msg)


def _check_command(parser, argv: list[str]) -> None:
    """A misspelled subcommand: usage and a close match ("did you mean train?"); exits 2."""
    import difflib

    if not argv or argv[0].startswith("-"):
        return
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv[0] not in sub.choices:
        close = difflib.get_close_matches(argv[0], list(sub.choices), n=1)
        parser.error(f"unknown command {argv[0]!r}"
                     + (f" (did you mean {close[0]}?)" if close else "")
                     + f"; commands: {', '.join(sub.choices)}")


def _format_warnings() -> None:
    """Print Python warnings (``UserWarning`` from dcmnet and libraries) as one
    ``warning: message`` line on stderr, without source path and code line."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        from rich.console import Console
        from rich.markup import escape
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(str(message))}",
                                   highlight=False)

    warnings.showwarning = show


def _command_modules():
    """``add_parsers`` functions of the subcommand modules (cheap: they import no JAX)."""
    import dcmnet.cli.analysis as analysis
    import dcmnet.cli.data as data
    import dcmnet.cli.export as export
    import dcmnet.cli.fit as fit
    import dcmnet.cli.models as models
    import dcmnet.cli.train as train
    import dcmnet.cli.tune as tune
    return [train.add_parsers, analysis.add_parsers, tune.add_parsers,
            data.add_parsers, models.add_parsers, export.add_parsers, fit.add_parsers]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dcmnet`` console script; returns the exit status."""
    from dcmnet.errors import DCMNetError

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_command(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown_arguments(parser, args, extra)
    args.command_line = "dcmnet " + " ".join(shlex.quote(a) for a in argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    import signal

    def _terminate(signum, frame):  # SIGTERM (cluster time limit, kill): like Ctrl-C
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    _format_warnings()
    try:
        return int(args.func(args) or 0)
    except DCMNetError as exc:
        from rich.console import Console
        from rich.markup import escape
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
