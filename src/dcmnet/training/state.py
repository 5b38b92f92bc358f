"""The training state: fresh, fine-tuned from another model, or resumed from a checkpoint.

The state is a dict ``{params, opt_state, ema_params, step}`` (a pytree that orbax saves
whole); :func:`initial_state` makes it, :func:`resume` restores it with the epoch counter,
the best validation loss and the history.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dcmnet.config import ExperimentConfig
from dcmnet.data.dataset import Dataset
from dcmnet.errors import ConfigError


def load_init_source(config: ExperimentConfig, train_data: Dataset, console=None) -> dict:
    """The parameters a fine-tuning run starts from (``config.init_from``), checked.

    ``init_from`` is an experiment folder, a checkpoint folder inside one, or a shipped
    model's name (resolved by :func:`dcmnet.training.experiment.load_experiment`). Its validation
    parameters (EMA when the source used EMA) are returned; optimizer state, schedule and
    EMA of the new run start fresh.

    Also records ``config.training_elements`` (the elements of ``train_data``) and warns
    (``UserWarning``) about elements absent from the source's training data.

    Returns:
        ``{"params", "config" (the source's ExperimentConfig), "path"}``.
    Raises:
        ConfigError: the architecture differs (names each differing setting with both
            values); CheckpointError: no such experiment, checkpoint or model.
    """
    import warnings

    from ase.data import chemical_symbols

    from dcmnet.training.experiment import load_experiment

    src_cfg, _, params, meta = load_experiment(config.init_from)
    a, b = dataclasses.asdict(src_cfg.model), dataclasses.asdict(config.model)
    diff = [f"{k} ({a[k]} in the source, {b[k]} here)" for k in b if a.get(k) != b[k]]
    if diff:
        raise ConfigError(
            f"--init-from {config.init_from}: the source model's architecture differs: "
            f"{', '.join(diff)}. Fine-tuning needs the same architecture: drop these flags "
            "(they default to the source's when you start from its config: --config "
            "SOURCE/config.json) or train from scratch.")
    here = sorted({int(z) for z in np.unique(train_data.Z) if z > 0})
    config.training_elements = here
    seen = list(src_cfg.training_elements or
                (meta.get("config") or {}).get("training_elements") or [])
    if seen:
        new = [z for z in here if z not in seen]
        if new:
            warnings.warn(
                f"--init-from {config.init_from}: element(s) "
                f"{', '.join(f'{chemical_symbols[z]} (Z={z})' for z in new)} are absent from "
                "the source model's training data; their embedding starts untrained "
                "(do not freeze 'embed' for them).", UserWarning, stacklevel=2)
    elif console is not None:
        console.print(f"note: {config.init_from} does not record its training elements; "
                      "new elements cannot be checked.")
    return {"params": params, "config": src_cfg, "path": str(config.init_from)}


def record_training_elements(config: ExperimentConfig, train_data: Dataset) -> None:
    """Store the elements of the training data in ``config`` and in the experiment's
    ``config.json`` (only that key is rewritten, atomically) when it is not there yet."""
    import json

    from dcmnet.fileio import atomic_write_json
    from dcmnet.training.experiment import CONFIG_NAME

    here = sorted({int(z) for z in np.unique(train_data.Z) if z > 0})
    config.training_elements = here
    path = config.experiment_dir / CONFIG_NAME
    if path.exists():
        d = json.loads(path.read_text())
        if d.get("training_elements") != here:
            d["training_elements"] = here
            atomic_write_json(path, d)


def init_state(model, tx, batch: dict, seed: int) -> dict:
    """Fresh training state: parameters, optimizer state, EMA copy, step counter."""
    params = model.init(jax.random.PRNGKey(seed), jnp.asarray(batch["Z"]),
                        jnp.asarray(batch["R"]), jnp.asarray(batch["atom_mask"]),
                        jnp.asarray(batch["net_charge"]))
    return {"params": params, "opt_state": tx.init(params),
            "ema_params": jax.tree_util.tree_map(jnp.array, params),
            "step": jnp.int32(0)}


def initial_state(model, tx, first: dict, config: ExperimentConfig, source: dict | None,
                  console) -> dict:
    """A fresh state, or (fine-tuning, ``source`` from :func:`load_init_source`) the source's
    parameters with a fresh optimizer state and EMA."""
    state = init_state(model, tx, first, config.random_seed)
    if source is None:
        return state
    params = jax.tree_util.tree_map(
        lambda t, v: jnp.asarray(v, dtype=t.dtype), state["params"], source["params"])
    console.print(f"fine-tuning from {source['path']}: its parameters, a fresh optimizer, "
                  f"schedule and EMA; frozen: {', '.join(config.freeze) or 'nothing'}")
    return {"params": params, "opt_state": tx.init(params),
            "ema_params": jax.tree_util.tree_map(jnp.array, params), "step": jnp.int32(0)}


def resume(state: dict, store, exp_dir: Path, resume_from, console):
    """Continue from ``resume_from`` (a checkpoint or experiment folder) or, without it, from
    this experiment's ``latest`` checkpoint when there is one.

    Returns:
        ``(state, start_epoch, best_loss, best_epoch, history)``; ``(state, 0, inf, -1, [])``
        when there is nothing to resume.
    Raises:
        CheckpointError: ``resume_from`` is no checkpoint.
    """
    from dcmnet.training.checkpoint import CheckpointStore
    from dcmnet.training.checkpoint_load import resolve_checkpoint

    src_store, src_kind, src_step, src_dir = store, "latest", None, exp_dir
    if resume_from is not None:
        src_dir, src_kind, src_step = resolve_checkpoint(resume_from)
        src_store = CheckpointStore(src_dir) if Path(src_dir) != exp_dir else store
    if not src_store.steps(src_kind):
        return state, 0, math.inf, -1, []
    state, meta, _ = src_store.restore(src_kind, target=state, step=src_step)
    start_epoch = int(meta["epoch"])
    console.print(f"resuming from {src_kind} checkpoint (epoch {start_epoch}) of {src_dir}")
    return (state, start_epoch, float(meta.get("best_valid_loss", math.inf)),
            int(meta.get("best_epoch", -1)), list(meta.get("history", []))[:start_epoch])
