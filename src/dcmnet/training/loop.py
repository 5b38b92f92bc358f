"""Training DCM-net: jit-compiled steps, EMA, checkpoints, resume, monitoring.

``train_model`` runs the epochs of one experiment on given training / validation datasets;
``run_training`` (in :mod:`dcmnet.training.runner`) adds data loading, the split and the folder.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from dcmnet.config import ExperimentConfig
from dcmnet.data.batching import BatchIterator, bucket_shapes
from dcmnet.data.dataset import Dataset
from dcmnet.data.prefetch import prefetch_batches
from dcmnet.errors import ConfigError, DCMNetError
from dcmnet.model import check_atomic_numbers, create_model
from dcmnet.training.loss import accumulate, epoch_metrics, loss_and_metrics, weights_array
from dcmnet.training.optim import make_optimizer, make_schedule
from dcmnet.training.reporting import EpochReporter, _flat_config, _show_arrays, announce
from dcmnet.training.state import initial_state, load_init_source, record_training_elements, resume


class TrainingDiverged(DCMNetError):
    """The loss became NaN or Inf; ``best`` and ``latest`` checkpoints are left intact."""


@dataclasses.dataclass
class TrainResult:
    """What a training run returns: EMA parameters of the best epoch and its loss."""

    params: dict
    best_valid_loss: float
    best_epoch: int
    experiment_dir: Path
    history: list


def _build_steps(model, tx, cfg: ExperimentConfig):
    """Jitted ``train_step(state, batch, weights)`` and ``eval_step(params, batch, weights)``."""
    tcfg = cfg.training
    chunk = tcfg.esp_chunk_size or None
    decay = jnp.float32(tcfg.ema_decay if tcfg.use_ema else 0.0)
    accumulating = tcfg.gradient_accumulation_steps > 1

    def train_step(state, batch, weights):
        def lf(p):
            loss, (sums, _) = loss_and_metrics(model, p, batch, weights, chunk)
            return loss, sums
        (loss, sums), grads = jax.value_and_grad(lf, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        updated = tx.has_updated(opt_state) if accumulating else jnp.bool_(True)
        ema = jax.tree_util.tree_map(
            # where p == e the average is e: keep it bitwise (frozen parameters stay exact)
            lambda e, p: jnp.where(updated & (e != p), decay * e + (1.0 - decay) * p, e),
            state["ema_params"], params)
        new = {"params": params, "opt_state": opt_state, "ema_params": ema,
               "step": state["step"] + 1}
        return new, loss, sums

    def eval_step(params, batch, weights):
        loss, (sums, _) = loss_and_metrics(model, params, batch, weights, chunk)
        return loss, sums

    return jax.jit(train_step, donate_argnums=(0,)), jax.jit(eval_step)


def train_model(config: ExperimentConfig = None, train_data: Dataset = None,
                valid_data: Dataset = None, *original_args,
                resume_from: Path | None = None, console=None, progress: bool = True,
                table_every: int = 1, stop_after_epochs: int | None = None,
                mlflow: bool | str = False, verbose: bool = False,
                on_epoch_end=None, **original_kwargs) -> TrainResult:
    """Train DCM-net for ``config.training.num_epochs`` epochs (or up to it when resuming).

    The original tool's form, ``train_model(key=..., model=..., train_data=...,
    valid_data=..., num_epochs=..., ...)`` returning ``(params, best_valid_loss)``, is
    :func:`dcmnet.compat.training.train_model` (see docs/coming_from_mmml.md).

    Args:
        config: the experiment configuration (folder ``config.experiment_dir``).
        train_data, valid_data: ragged datasets (validation may not be empty).
        resume_from: a checkpoint folder to continue from (``.../checkpoints/latest`` or an
            experiment folder); ``None`` continues this experiment's ``latest`` checkpoint
            when it exists, otherwise starts fresh.
        console: a ``rich.console.Console`` for messages (default: stderr console).
        progress: show progress bars.
        table_every: print the full per-epoch table every N epochs (always the last) and one
            compact line (epoch/total, loss, valid ESP RMSE, time, ETA) for the others; 0
            prints neither.
        stop_after_epochs: stop after this many epochs of *this* call (for job time limits;
            rerun to continue: the result equals an uninterrupted run).
        mlflow: also log to MLflow (extra ``dcmnet[tracking]``): ``True`` for the local
            store ``<output_dir>/mlruns``, or a tracking URI string.
        verbose: show the first batch and the first predicted charges with lovely-jax
            (when installed).
        on_epoch_end: optional ``f(epoch, row)`` called after each epoch's checkpoint with
            the history row (``valid_esp_rmse`` etc.); an exception it raises (e.g.
            ``optuna.TrialPruned``) ends training and propagates.
    Returns:
        :class:`TrainResult` with the EMA parameters of the best validation epoch.
    Raises:
        TrainingDiverged: NaN/Inf loss (names epoch and step); checkpoints stay intact.
        DataError / ConfigError: bad data or settings.
    """
    from rich.console import Console

    from dcmnet.training.checkpoint import CheckpointStore
    from dcmnet.training.monitor import Monitor
    from dcmnet.training.parallel import maybe_data_parallel

    _check_call(config, original_args, original_kwargs)
    console = console or Console(stderr=True)
    run = _setup(config, train_data, valid_data, console)
    tcfg, exp_dir = config.training, config.experiment_dir
    state = initial_state(run.model, run.tx, run.first, config, run.source, console)
    dp = maybe_data_parallel(tcfg.batch_size, tcfg.data_parallel, console)
    run.put_batch = dp.put_batch if dp is not None else (lambda b: b)
    store = CheckpointStore(exp_dir, keep_periodic=tcfg.keep_checkpoints)
    state, start_epoch, *best, history = resume(state, store, exp_dir, resume_from, console)
    if dp is not None:
        state = _put_state(dp, state, tcfg.batch_size, console)
    if verbose:
        _show_arrays(console, run.first, run.model, state["params"])
    end_epoch = tcfg.num_epochs if stop_after_epochs is None else min(
        tcfg.num_epochs, start_epoch + int(stop_after_epochs))
    monitor = Monitor(exp_dir, params=_flat_config(config), mlflow=bool(mlflow), mlflow_uri=(
        mlflow if isinstance(mlflow, str) else None)) if end_epoch > start_epoch else None
    announce(console, config, train_data, valid_data, run.n_batches, run.shapes, state,
             start_epoch)
    try:
        with EpochReporter(console, progress, tcfg, start_epoch, end_epoch, run.n_batches,
                           table_every) as reporter:
            for epoch in range(start_epoch, end_epoch):
                state = _epoch(run, config, state, epoch, best, history, monitor, store,
                               reporter, on_epoch_end)
    finally:
        if monitor is not None:
            monitor.close()
        store.close()
    if end_epoch < tcfg.num_epochs:
        console.print(f"stopped after epoch {end_epoch} of {tcfg.num_epochs} as asked; rerun "
                      "the same command to continue.")
    return TrainResult(params=_best_params(exp_dir, state, tcfg.use_ema),
                       best_valid_loss=best[0], best_epoch=best[1], experiment_dir=exp_dir,
                       history=history)


def _put_state(dp, state, batch_size: int, console):
    """The state replicated over the devices of ``dp`` (said on the console)."""
    state = dp.put_state(state)
    console.print(f"data parallel over {dp.size} devices "
                  f"({batch_size // dp.size} molecules per device and batch)")
    return state


def _check_call(config, original_args, original_kwargs) -> None:
    """Refuse the original tool's call form and stray arguments (ConfigError)."""
    if not isinstance(config, ExperimentConfig):
        raise ConfigError(f"train_model: the first argument must be an ExperimentConfig, got "
                          f"{type(config).__name__}; the original tool's call form "
                          "(key=..., model=..., ...) is dcmnet.compat.training.train_model.")
    if original_args or original_kwargs:
        raise ConfigError(f"train_model(config, ...): unexpected argument(s) "
                          f"{', '.join(map(str, original_kwargs)) or original_args}; the "
                          "config form takes the settings from the ExperimentConfig.")


@dataclasses.dataclass
class _Run:
    """What stays fixed during a run: model, batches, optimizer, compiled steps."""

    model: object
    shapes: list
    train_it: BatchIterator
    valid_it: BatchIterator
    n_batches: int
    tx: object
    schedule: object
    weights: dict
    train_step: object
    eval_step: object
    first: dict
    source: dict | None
    put_batch: object = None


def _setup(config: ExperimentConfig, train_data: Dataset, valid_data: Dataset,
           console) -> _Run:
    """Check the data, record its elements, build model, bucket shapes (once, over both
    sets), batch iterators, optimizer, schedule and the jitted steps."""
    config.validate()
    tcfg, mcfg = config.training, config.model
    config.experiment_dir.mkdir(parents=True, exist_ok=True)
    for ds in (train_data, valid_data):
        check_atomic_numbers(ds.Z, mcfg.max_atomic_number)
    record_training_elements(config, train_data)
    model = create_model(**dataclasses.asdict(mcfg))
    shapes = bucket_shapes(Dataset.concatenate([train_data, valid_data]),
                           batch_size=tcfg.batch_size)
    train_it = BatchIterator(train_data, tcfg.batch_size, shuffle=True,
                             seed=config.random_seed, shapes=shapes)
    valid_it = BatchIterator(valid_data, tcfg.batch_size, shuffle=False, shapes=shapes)
    n_batches = len(train_it)
    source = load_init_source(config, train_data, console) if config.init_from else None
    tx = make_optimizer(tcfg, n_batches, freeze=config.freeze)
    train_step, eval_step = _build_steps(model, tx, config)
    return _Run(model=model, shapes=shapes, train_it=train_it, valid_it=valid_it,
                n_batches=n_batches, tx=tx, schedule=make_schedule(tcfg, n_batches),
                weights=weights_array(tcfg.esp_w, tcfg.chg_w, tcfg.dipole_w),
                train_step=train_step, eval_step=eval_step,
                first=next(iter(train_it.epoch_batches(0))), source=source)


def _epoch(run: _Run, config, state, epoch: int, best: list, history: list, monitor, store,
           reporter, on_epoch_end):
    """One epoch: train, evaluate (EMA parameters when used), log, checkpoint, report.
    ``best`` = ``[best_loss, best_epoch]`` is updated in place; returns the new state."""
    tcfg = config.training
    t0 = time.perf_counter()
    state, train_m = _train_epoch(run, state, epoch, reporter, config.experiment_dir)
    valid_m = _evaluate(run, state["ema_params"] if tcfg.use_ema else state["params"])
    seconds = time.perf_counter() - t0
    n_updates = int(state["step"]) // tcfg.gradient_accumulation_steps
    lr = float(run.schedule(max(n_updates - 1, 0)))
    row = {"epoch": epoch + 1, "time_s": round(seconds, 3), "lr": lr}
    row.update({f"train_{k}": v for k, v in train_m.items()})
    row.update({f"valid_{k}": v for k, v in valid_m.items()})
    history.append(row)
    monitor.log_epoch(row, history)
    improved = valid_m["loss"] < best[0]
    if improved:
        best[:] = [valid_m["loss"], epoch + 1]
    _save_checkpoints(store, config, state, epoch + 1, improved, best, history)
    reporter.epoch_done(epoch + 1, train_m, valid_m, seconds, lr, improved)
    if on_epoch_end is not None:
        on_epoch_end(epoch + 1, row)
    reporter.advance(valid_m, improved)
    return state


def _train_epoch(run: _Run, state, epoch: int, reporter, exp_dir):
    """The optimizer steps of one epoch with the NaN guard; ``(state, train metrics)``."""
    reporter.begin_epoch(epoch)
    total = None
    for i, batch in enumerate(prefetch_batches(run.train_it, epoch)):
        state, loss, sums = run.train_step(state, run.put_batch(batch), run.weights)
        loss = float(loss)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at epoch {epoch + 1}, step {i + 1} of "
                f"{run.n_batches}; checkpoints 'best' and 'latest' in {exp_dir} are "
                "intact. Lower --learning-rate or enable --use-grad-clip.")
        total = accumulate(total, jax.device_get(sums))
        reporter.step(loss)
    reporter.end_batches()
    return state, epoch_metrics(total)


def _evaluate(run: _Run, params) -> dict:
    """Validation metrics of ``params`` over the whole validation set."""
    total = None
    for b in prefetch_batches(run.valid_it, 0):
        _, sums = run.eval_step(params, run.put_batch(b), run.weights)
        total = accumulate(total, jax.device_get(sums))
    return epoch_metrics(total)


def _save_checkpoints(store, config, state, epoch: int, improved: bool, best: list,
                      history: list) -> None:
    """The checkpoint policy: ``best`` when validation improved, ``periodic`` every
    ``save_every_n_epochs``, ``latest`` always (orbax keeps the newest ones)."""
    meta = {"epoch": epoch, "best_valid_loss": best[0], "best_epoch": best[1],
            "history": history, "config": config.to_dict()}
    host_state = jax.device_get(state)
    if improved:
        store.save("best", epoch, host_state, meta)
    every = config.training.save_every_n_epochs
    if every and epoch % every == 0:
        store.save("periodic", epoch, host_state, meta)
    store.save("latest", epoch, host_state, meta)


def _best_params(exp_dir: Path, state, use_ema: bool):
    """Parameters (EMA when used) of the ``best`` checkpoint (``latest`` without one)."""
    from dcmnet.training.checkpoint import CheckpointStore

    best_store = CheckpointStore(exp_dir)
    kind = "best" if best_store.steps("best") else "latest"
    best_state, _, _ = best_store.restore(kind, target=jax.device_get(state))
    best_store.close()
    return best_state["ema_params"] if use_ema else best_state["params"]
