"""The training state: fresh, fine-tuned from another model, or resumed from a checkpoint.

The state is a :class:`TrainState` (a ``flax.struct`` dataclass: a pytree that orbax saves
whole, with the same items on disk as the former dict ``{params, opt_state, ema_params,
step}``, so checkpoints of either form restore into the other); :func:`initial_state` makes
it, :func:`resume` restores it with the epoch counter, the best validation loss and the
history.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dcmnet.config import ExperimentConfig
from dcmnet.data.dataset import Dataset
from dcmnet.errors import ConfigError
from dcmnet.model import check_atomic_numbers


@flax.struct.dataclass
class TrainState:
    """Everything a training step changes (a pytree; the jitted step donates it).

    Attributes:
        params: the model parameters (flax variables ``{"params": ...}``).
        opt_state: the optax state of :func:`dcmnet.training.optim.make_optimizer`.
        ema_params: the exponential moving average of ``params`` (used for validation when
            ``training.use_ema``; equal to ``params`` at the start).
        step: micro-batch steps taken, int32 scalar (optimizer updates are
            ``step // gradient_accumulation_steps``).

    The epoch, best loss and history live in the checkpoint's ``meta``; the batch order is
    seeded by the epoch, so there is no RNG state to carry. ``state["params"]`` reads a field
    like the former dict state did.
    """

    params: Any
    opt_state: Any
    ema_params: Any
    step: Any

    def __getitem__(self, name: str):
        """The field ``name`` (mapping-style access). Raises KeyError for another name."""
        if name not in ("params", "opt_state", "ema_params", "step"):
            raise KeyError(name)
        return getattr(self, name)

    @classmethod
    def create(cls, params, tx) -> TrainState:
        """Step 0: ``params``, a fresh ``tx.init(params)`` and an EMA copy of ``params``."""
        return cls(params=params, opt_state=tx.init(params),
                   ema_params=jax.tree_util.tree_map(jnp.array, params), step=jnp.int32(0))


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


def init_state(model, tx, batch: dict, seed: int) -> TrainState:
    """Fresh training state: parameters initialised on ``batch`` with ``PRNGKey(seed)``,
    optimizer state, EMA copy, step 0.

    ``model.init`` runs under ``jax.jit``: run eagerly, each of its few hundred operations
    is compiled on its own: 15–17 s against 8–9 s as one program (2 CPU cores, load ≈ 4).
    The atomic numbers are checked first (:func:`dcmnet.model.check_atomic_numbers`;
    raises :class:`~dcmnet.errors.DataError`), since under ``jit`` the model cannot."""
    check_atomic_numbers(batch["Z"], model.max_atomic_number)
    params = jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.asarray(batch["Z"]),
                                 jnp.asarray(batch["R"]), jnp.asarray(batch["atom_mask"]),
                                 jnp.asarray(batch["net_charge"]))
    return TrainState.create(params, tx)


def initial_state(model, tx, first: dict, config: ExperimentConfig, source: dict | None,
                  console) -> TrainState:
    """A fresh state, or (fine-tuning, ``source`` from :func:`load_init_source`) the source's
    parameters with a fresh optimizer state and EMA."""
    state = init_state(model, tx, first, config.random_seed)
    if source is None:
        return state
    params = jax.tree_util.tree_map(
        lambda t, v: jnp.asarray(v, dtype=t.dtype), state.params, source["params"])
    console.print(f"fine-tuning from {source['path']}: its parameters, a fresh optimizer, "
                  f"schedule and EMA; frozen: {', '.join(config.freeze) or 'nothing'}")
    return TrainState.create(params, tx)


@dataclasses.dataclass
class RunProgress:
    """Where a run stands between epochs (what the checkpoint's ``meta`` records).

    Attributes:
        start_epoch: epochs done before this call (0 for a fresh run).
        best_loss: the best validation loss so far (``inf`` before the first epoch).
        best_epoch: its 1-based epoch (-1 before the first epoch).
        history: one row per finished epoch (see :class:`dcmnet.training.reporting.Reporter`).
    """

    start_epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = -1
    history: list = dataclasses.field(default_factory=list)

    def record(self, epoch: int, row: dict, valid_loss: float) -> bool:
        """Append ``row`` for 1-based ``epoch``; True (and remembered) when ``valid_loss``
        is a new best."""
        self.history.append(row)
        improved = valid_loss < self.best_loss
        if improved:
            self.best_loss, self.best_epoch = valid_loss, epoch
        return improved

    def meta(self, epoch: int, config: ExperimentConfig) -> dict:
        """The checkpoint ``meta`` after 1-based ``epoch`` (read back by :func:`resume`)."""
        return {"epoch": epoch, "best_valid_loss": self.best_loss,
                "best_epoch": self.best_epoch, "history": list(self.history),
                "config": config.to_dict()}


def resume(state: TrainState, store, exp_dir: Path, resume_from,
           console) -> tuple[TrainState, RunProgress]:
    """Continue from ``resume_from`` (a checkpoint or experiment folder) or, without it, from
    this experiment's ``latest`` checkpoint when there is one.

    Returns:
        ``(state, progress)``; ``(state, RunProgress())`` when there is nothing to resume.
    Raises:
        CheckpointError: ``resume_from`` is no checkpoint.
    """
    from dcmnet.training.checkpoint import CheckpointStore
    from dcmnet.training.checkpoint_load import resolve_checkpoint

    src_store, src_kind, src_step, src_dir = store, "latest", None, exp_dir
    if resume_from is not None:
        src_dir, src_kind, src_step = resolve_checkpoint(resume_from)
        src_store = CheckpointStore(src_dir) if Path(src_dir) != exp_dir else store
    try:
        if not src_store.steps(src_kind):
            return state, RunProgress()
        state, meta, _ = src_store.restore(src_kind, target=state, step=src_step)
    finally:
        if src_store is not store:
            src_store.close()
    start_epoch = int(meta["epoch"])
    console.print(f"resuming from {src_kind} checkpoint (epoch {start_epoch}) of {src_dir}")
    return state, RunProgress(start_epoch, float(meta.get("best_valid_loss", math.inf)),
                              int(meta.get("best_epoch", -1)),
                              list(meta.get("history", []))[:start_epoch])
