"""Finding and loading checkpoints: which folder a user means, and its parameters.

:func:`resolve_checkpoint` turns an experiment folder, a kind folder
(``checkpoints/best``) or a step folder into one step folder; :func:`load_params` reads the
parameters of one (through :class:`~dcmnet.training.checkpoint.CheckpointStore`, the only
reader and writer of orbax files).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from dcmnet.errors import CheckpointError
from dcmnet.training.checkpoint import (
    _CHECKPOINTS,
    _EXPECTED,
    _STEP_RE,
    KINDS,
    CheckpointStore,
    _abs,
    _list_steps,
)


def resolve_checkpoint(path) -> tuple[Path, str, int | None]:
    """Interpret a user-given checkpoint path.

    Accepted forms (relative or absolute):

    - an experiment folder ``EXP`` (or ``EXP/checkpoints``): its ``latest`` checkpoints (when
      there are none, ``best``, then ``periodic``), newest step;
    - a kind folder ``EXP/checkpoints/latest`` (or ``best``, ``periodic``): newest step;
    - a step folder ``EXP/checkpoints/latest/12``: that step.

    Returns:
        ``(experiment dir (absolute), kind, step or None)``; None means "the newest step".

    Raises:
        CheckpointError: the path does not exist or holds no checkpoint.
    """
    p = _abs(path)
    if not p.exists():
        raise CheckpointError(f"no checkpoint found under {p}: the path does not exist; "
                              f"{_EXPECTED}")

    # step folder: EXP/checkpoints/<kind>/<step>
    if (
        _STEP_RE.match(p.name)
        and p.parent.name in KINDS
        and p.parent.parent.name == _CHECKPOINTS
        and p.is_dir()
    ):
        return p.parent.parent.parent, p.parent.name, int(p.name)

    # kind folder: EXP/checkpoints/<kind>
    if p.name in KINDS and p.parent.name == _CHECKPOINTS:
        if _list_steps(p):
            return p.parent.parent, p.name, None
        raise CheckpointError(f"no checkpoint found under {p}; {_EXPECTED}")

    # experiment folder (or its checkpoints folder)
    exp = p.parent if p.name == _CHECKPOINTS and not (p / _CHECKPOINTS).is_dir() else p
    for kind in KINDS:
        if _list_steps(exp / _CHECKPOINTS / kind):
            return exp, kind, None
    raise CheckpointError(f"no checkpoint found under {p}; {_EXPECTED}")


def _to_numpy(tree):
    """JAX arrays → numpy arrays; Python scalars and numpy arrays stay as they are."""
    return jax.tree.map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, tree)


def load_params(path, target=None) -> tuple[Any, dict]:
    """Load a checkpoint for analysis or prediction.

    Args:
        path: any form accepted by :func:`resolve_checkpoint`.
        target: optional pytree with the saved structure. Without it the state comes back as
            saved on disk, as plain dicts/lists of numpy arrays and Python scalars (optax
            NamedTuples become dicts, tuples become lists, empty states None).

    Returns:
        ``(state, meta)``.

    Raises:
        CheckpointError: nothing usable at ``path`` (see :func:`resolve_checkpoint` and
            :meth:`CheckpointStore.restore`).
    """
    exp, kind, step = resolve_checkpoint(path)
    with CheckpointStore(exp) as store:
        state, meta, _ = store.restore(kind, target, step=step)
    if target is None:
        state = _to_numpy(state)
    return state, meta


__all__ = ["resolve_checkpoint", "load_params"]
