"""Alias of the original tool's ``train_runner``: :func:`dcmnet.training.runner.run_training`, and
``python -m dcmnet.compat.train_runner --name my_model ...`` = ``dcmnet train --name my_model ...``.
"""
from __future__ import annotations

import sys

__all__ = ["run_training", "main"]


def run_training(*args, **kwargs):
    """:func:`dcmnet.training.runner.run_training` (same arguments; returns ``(params,
    best_valid_loss, experiment_dir)``)."""
    from dcmnet.training import runner

    return runner.run_training(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``dcmnet train ARGV`` (same flags; exit status as the CLI's)."""
    from dcmnet.cli.main import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
