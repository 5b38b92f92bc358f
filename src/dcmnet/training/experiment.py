"""The experiment folder: its layout, and loading a trained model back from it.

Layout (``output_dir/name``)::

    config.json              resolved ExperimentConfig (+ dcmnet version, git commit)
    split.json               training / validation molecule indices and seed
    checkpoints/latest/<e>/  orbax: parameters, optimizer, EMA, epoch (for resuming)
    checkpoints/best/<e>/    orbax: the epoch with the lowest validation loss
    checkpoints/periodic/<e>/ every ``save_every_n_epochs`` epochs (the last K kept)
    training_history.csv     one row per epoch (train_* and valid_* metrics, lr, time)
    tensorboard/             TensorBoard event files (tensorboardX)
    analysis/                written by ``dcmnet evaluate`` / ``dcmnet analyze``
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dcmnet.config import ExperimentConfig
from dcmnet.errors import CheckpointError, DCMNetError

CONFIG_NAME = "config.json"
SPLIT_NAME = "split.json"
HISTORY_NAME = "training_history.csv"


LOCK_NAME = ".lock"


@contextlib.contextmanager
def experiment_lock(exp_dir):
    """Hold an exclusive lock on an experiment folder while training it.

    ``fcntl.flock`` on ``EXP/.lock``: released by the kernel when the process ends, even
    by SIGKILL, so a crashed run never leaves a stale lock.

    Raises:
        DCMNetError: another process is training this experiment (its pid is named).
    """
    import fcntl

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    fh = open(exp_dir / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            raise DCMNetError(f"{exp_dir} is being trained by another process (pid {pid}); "
                              "wait for it to finish or use another --name.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()


def resolve_experiment_path(path) -> Path:
    """The absolute folder meant by ``path``: an existing folder, or a shipped model's name.

    A folder of that name in the working directory wins over a shipped model of the same
    name (a warning says so; write ``./NAME`` to silence it, or rename the folder).

    Raises:
        CheckpointError: neither a folder nor the name of a shipped model.
    """
    import warnings

    from dcmnet.models import list_models, shipped_model_dir

    p = Path(path)
    shipped = shipped_model_dir(path) if not str(path).startswith("./") else None
    if p.exists():
        if shipped is not None and p.resolve() != shipped:
            warnings.warn(f"'{path}' is both a folder here and a shipped model; using the "
                          f"folder {p.resolve()} (rename it to use the shipped model).",
                          stacklevel=2)
        return p.resolve()
    if shipped is not None:
        return shipped
    names = ", ".join(c.name for c in list_models()) or "none"
    raise CheckpointError(f"{path}: no such experiment or checkpoint folder, and no shipped "
                          f"model of that name (shipped models: {names}; see dcmnet models).")


def find_experiment_dir(path) -> Path:
    """The experiment folder that holds ``path`` (itself, a checkpoint folder inside it, or
    a shipped model's name, see :func:`resolve_experiment_path`).

    Raises:
        CheckpointError: no such folder or model, or no ``config.json`` in ``path`` or any
            parent up to three levels.
    """
    p = resolve_experiment_path(path)
    for cand in [p, *list(p.parents)[:4]]:
        if (cand / CONFIG_NAME).exists():
            return cand
    raise CheckpointError(f"{path}: not inside an experiment folder (no {CONFIG_NAME} found); "
                          "give a folder such as experiments/NAME.")


def load_experiment(path, kind: str = "best"):
    """Configuration, model and parameters of a trained experiment.

    Args:
        path: experiment folder, a checkpoint folder inside it (``.../checkpoints/latest``
            or ``.../checkpoints/best/12``), or a shipped model's name (``dcmnet models``).
        kind: which checkpoint when ``path`` is the experiment folder: ``best`` (default;
            falls back to ``latest``) or ``latest``.
    Returns:
        ``(config, model, params, meta)``; ``params`` are the EMA parameters used for
        validation (the plain parameters when EMA is off).
    Raises:
        CheckpointError: no usable checkpoint.
    """
    import jax

    from dcmnet.training.checkpoint import CheckpointStore
    from dcmnet.training.checkpoint_load import resolve_checkpoint
    from dcmnet.model import create_model

    p = resolve_experiment_path(path)
    exp_dir = find_experiment_dir(p)
    cfg = ExperimentConfig.load(exp_dir / CONFIG_NAME)
    model = create_model(**vars(cfg.model))
    if p == exp_dir:
        store = CheckpointStore(exp_dir)
        kinds = [kind] + [k for k in ("best", "latest") if k != kind]
        kind_used = next((k for k in kinds if store.steps(k)), None)
        if kind_used is None:
            raise CheckpointError(f"{exp_dir}: no checkpoint yet (train it first).")
        step = None
    else:
        _, kind_used, step = resolve_checkpoint(p)
        store = CheckpointStore(exp_dir)
    state, meta, _ = store.restore(kind_used, target=None, step=step)
    params = state.get("ema_params") or state["params"]
    params = jax.tree_util.tree_map(jax.numpy.asarray, params)
    return cfg, model, params, meta
