"""The training history of an experiment and a diagnosis in words
(:func:`analyze_training_history`)."""
from __future__ import annotations

import math

import numpy as np

from dcmnet.errors import CheckpointError
from dcmnet.training.monitor import read_history_csv


def analyze_training_history(exp_dir, *, plateau_tol: float = 0.01,
                             overfit_tol: float = 0.05) -> dict:
    """The training history of an experiment, its best epoch and a diagnosis in words.

    Diagnosis (``status``), on the validation loss ``v`` and training loss ``t``:

    * ``too_short``: fewer than 3 epochs;
    * ``overfitting``: the last ``v`` exceeds its minimum by more than ``overfit_tol``
      (relative) while ``t`` kept falling after the best epoch;
    * ``plateau``: over the last ``w = max(3, n/5)`` epochs the best ``v`` improved by less
      than ``plateau_tol`` (relative) on the best before them;
    * ``improving``: otherwise.

    Args:
        exp_dir: experiment folder (holding ``training_history.csv``).
    Returns:
        dict ``{rows, columns, n_epochs, best_epoch, best_valid_loss, best (row),
        last (row), status, diagnosis (sentences), generalisation_gap}``.
    Raises:
        CheckpointError: no history file.
    """
    from dcmnet.training.experiment import HISTORY_NAME, find_experiment_dir

    exp = find_experiment_dir(exp_dir)
    path = exp / HISTORY_NAME
    if not path.exists():
        raise CheckpointError(f"{path}: no training history (train the experiment first).")
    rows = read_history_csv(path)
    if not rows:
        raise CheckpointError(f"{exp / HISTORY_NAME}: the training history is empty.")
    columns = list(rows[0])
    v = np.array([r.get("valid_loss", math.nan) for r in rows], np.float64)
    t = np.array([r.get("train_loss", math.nan) for r in rows], np.float64)
    n = len(rows)
    vv = np.where(np.isfinite(v), v, np.inf)
    b = int(np.argmin(vv))
    best_epoch = int(rows[b].get("epoch", b + 1))
    words: list[str] = []
    gap = float(v[b] / t[b]) if t[b] > 0 and math.isfinite(v[b]) else None
    if n < 3:
        status = "too_short"
        words.append(f"Only {n} epoch(s): too few to judge convergence.")
    else:
        w = max(3, n // 5)
        best_before = float(np.min(vv[:-w])) if n > w else float(vv[0])
        best_recent = float(np.min(vv[-w:]))
        rel_gain = (best_before - best_recent) / abs(best_before) if best_before else 0.0
        rise = (v[-1] - v[b]) / abs(v[b]) if v[b] else 0.0
        train_fall = (t[b] - t[-1]) / abs(t[b]) if t[b] else 0.0
        if b < n - 1 and rise > overfit_tol and train_fall > 0:
            status = "overfitting"
            words.append(f"Overfitting: the validation loss rose {100 * rise:.1f} % above its "
                         f"minimum at epoch {best_epoch} while the training loss fell a further "
                         f"{100 * train_fall:.1f} %. Use the 'best' checkpoint, more data or a "
                         "smaller model.")
        elif rel_gain < plateau_tol:
            status = "plateau"
            words.append(f"Plateau: over the last {w} epochs the best validation loss improved "
                         f"by only {100 * max(rel_gain, 0):.2f} % (< {100 * plateau_tol:g} %). "
                         "More epochs at this learning rate will help little.")
        else:
            status = "improving"
            words.append(f"Still improving: the best validation loss fell {100 * rel_gain:.1f} % "
                         f"over the last {w} epochs; more epochs should help.")
    if gap is not None and gap > 1.5:
        words.append(f"At the best epoch the validation loss is {gap:.2f}× the training loss "
                     "(a generalisation gap).")
    lr = [r.get("lr") for r in rows if isinstance(r.get("lr"), float)]
    if lr and max(lr) > 0 and lr[-1] / max(lr) < 0.1:
        words.append(f"The learning rate has decayed to {lr[-1] / max(lr):.2g} of its peak.")
    return {"rows": rows, "columns": columns, "n_epochs": n, "best_epoch": best_epoch,
            "best_valid_loss": float(v[b]), "best": rows[b], "last": rows[-1],
            "status": status, "diagnosis": " ".join(words), "generalisation_gap": gap}
