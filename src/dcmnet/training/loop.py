"""Training DCM-net: jit-compiled steps, EMA, checkpoints, resume, monitoring.

``train_model`` runs the epochs of one experiment on given training / validation datasets;
``run_training`` (in :mod:`dcmnet.training.runner`) adds data loading, the split and the folder.
Its parts: :func:`_setup` (model, bucket shapes, batches, optimizer, the jitted steps of
:mod:`dcmnet.training.steps`),
:func:`init_or_resume`, :func:`run_epoch`, :func:`evaluate_epoch`, :class:`CheckpointPolicy`
and the reporters of :mod:`dcmnet.training.reporting` (``on_epoch_end`` after each epoch).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import jax

from dcmnet.config import ExperimentConfig
from dcmnet.data.batching import BatchIterator, bucket_shapes
from dcmnet.data.dataset import Dataset
from dcmnet.data.prefetch import prefetch_batches
from dcmnet.errors import ConfigError, DCMNetError
from dcmnet.model import check_atomic_numbers, create_model
from dcmnet.training.loss import accumulate, epoch_metrics, weights_array
from dcmnet.training.optim import make_optimizer, make_schedule
from dcmnet.training.reporting import (
    CallbackReporter,
    EpochReporter,
    _flat_config,
    _show_arrays,
    announce,
)
from dcmnet.training.state import (
    RunProgress,
    TrainState,
    initial_state,
    load_init_source,
    record_training_elements,
    resume,
)
from dcmnet.training.steps import build_steps


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
        on_epoch_end: optional ``f(epoch, row)`` called after each epoch with the history
            row (``valid_esp_rmse`` etc.); an exception it raises (e.g.
            ``optuna.TrialPruned``) ends training (the checkpoints held back are written,
            see :class:`CheckpointPolicy`) and propagates.
    Returns:
        :class:`TrainResult` with the EMA parameters of the best validation epoch.
    Raises:
        TrainingDiverged: NaN/Inf loss (names epoch and step); checkpoints stay intact.
        DataError / ConfigError: bad data or settings.
    """
    from rich.console import Console

    from dcmnet.training.checkpoint import CheckpointStore

    _check_call(config, original_args, original_kwargs)
    console = console or Console(stderr=True)
    run = _setup(config, train_data, valid_data, console)
    tcfg, exp_dir = config.training, config.experiment_dir
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(CheckpointStore(exp_dir, keep_periodic=tcfg.keep_checkpoints))
        state, prog = init_or_resume(run, config, store, resume_from, console)
        if verbose:
            _show_arrays(console, run.first, run.model, state.params)
        end_epoch = tcfg.num_epochs if stop_after_epochs is None else min(
            tcfg.num_epochs, prog.start_epoch + int(stop_after_epochs))
        announce(console, config, train_data, valid_data, run.n_batches, run.shapes, state,
                 prog.start_epoch)
        reporters = _open_reporters(stack, config, run.n_batches, prog.start_epoch, end_epoch,
                                    console, progress, table_every, mlflow, on_epoch_end)
        policy = CheckpointPolicy(store, config)
        stack.push(policy.exit_handler(console))  # after the last epoch, a stop, an error
        _terminate_as_exit(stack)
        for epoch in range(prog.start_epoch, end_epoch):
            state = _epoch(run, config, state, epoch, prog, policy, reporters)
    if end_epoch < tcfg.num_epochs:
        console.print(f"stopped after epoch {end_epoch} of {tcfg.num_epochs} as asked; rerun "
                      "the same command to continue.")
    return TrainResult(params=_best_params(exp_dir, state, tcfg.use_ema),
                       best_valid_loss=prog.best_loss, best_epoch=prog.best_epoch,
                       experiment_dir=exp_dir, history=prog.history)


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
    """What stays fixed during a run: model, batches, optimizer, compiled steps, devices."""

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
    dp: object = None

    def put_batch(self, batch: dict) -> dict:
        """A host batch placed for the step (sharded over the devices when data parallel)."""
        return self.dp.put_batch(batch) if self.dp is not None else batch


def _setup(config: ExperimentConfig, train_data: Dataset, valid_data: Dataset,
           console) -> _Run:
    """Check the data, record its elements, build model, bucket shapes (once, over both
    sets), batch iterators, optimizer, schedule, the jitted steps and the device mesh."""
    from dcmnet.training.parallel import maybe_data_parallel

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
    train_step, eval_step = build_steps(model, tx, config)
    return _Run(model=model, shapes=shapes, train_it=train_it, valid_it=valid_it,
                n_batches=n_batches, tx=tx, schedule=make_schedule(tcfg, n_batches),
                weights=weights_array(tcfg.esp_w, tcfg.chg_w, tcfg.dipole_w, tcfg.esp_rmse_w),
                train_step=train_step, eval_step=eval_step,
                first=next(iter(train_it.epoch_batches(0))), source=source,
                dp=maybe_data_parallel(tcfg.batch_size, tcfg.data_parallel, console))


def init_or_resume(run: _Run, config: ExperimentConfig, store, resume_from,
                   console) -> tuple[TrainState, RunProgress]:
    """The state to train from: fresh (or fine-tuned from ``run.source``), then resumed
    from ``resume_from`` or this experiment's ``latest`` checkpoint when there is one
    (:func:`~dcmnet.training.state.resume`), replicated over the devices when data parallel.

    Raises:
        CheckpointError: ``resume_from`` is no checkpoint, or a checkpoint does not fit.
    """
    state = initial_state(run.model, run.tx, run.first, config, run.source, console)
    state, prog = resume(state, store, config.experiment_dir, resume_from, console)
    if run.dp is not None:
        state = run.dp.put_state(state)
        console.print(f"data parallel over {run.dp.size} devices "
                      f"({config.training.batch_size // run.dp.size} molecules per device "
                      "and batch)")
    return state, prog


def _open_reporters(stack, config, n_batches: int, start_epoch: int, end_epoch: int, console,
                    progress: bool, table_every: int, mlflow, on_epoch_end) -> list:
    """The run's reporters, entered on ``stack`` (closed with it): the console
    (:class:`EpochReporter`, first: :func:`run_epoch` drives its bars), then TensorBoard /
    CSV / MLflow (:class:`~dcmnet.training.monitor.Monitor`, when there are epochs to run),
    then ``on_epoch_end``."""
    from dcmnet.training.monitor import Monitor

    reporters = [stack.enter_context(EpochReporter(
        console, progress, config.training, start_epoch, end_epoch, n_batches, table_every))]
    if end_epoch > start_epoch:
        monitor = Monitor(config.experiment_dir, params=_flat_config(config),
                          mlflow=bool(mlflow),
                          mlflow_uri=mlflow if isinstance(mlflow, str) else None)
        stack.callback(monitor.close)
        reporters.append(monitor)
    if on_epoch_end is not None:
        reporters.append(CallbackReporter(on_epoch_end))
    return reporters


def _epoch(run: _Run, config, state: TrainState, epoch: int, prog: RunProgress,
           policy: CheckpointPolicy, reporters: list) -> TrainState:
    """One epoch (0-based ``epoch``): train, evaluate (EMA parameters when used), record,
    checkpoint, then every reporter's ``on_epoch_end``; returns the new state."""
    tcfg = config.training
    t0 = time.perf_counter()
    state, train_m = run_epoch(run, state, epoch, reporters[0], config.experiment_dir)
    valid_m = evaluate_epoch(run, state.ema_params if tcfg.use_ema else state.params)
    seconds = time.perf_counter() - t0
    n_updates = int(state.step) // tcfg.gradient_accumulation_steps
    row = {"epoch": epoch + 1, "time_s": round(seconds, 3),
           "lr": float(run.schedule(max(n_updates - 1, 0)))}
    row.update({f"train_{k}": v for k, v in train_m.items()})
    row.update({f"valid_{k}": v for k, v in valid_m.items()})
    improved = prog.record(epoch + 1, row, valid_m["loss"])
    policy.save(state, epoch + 1, improved, prog)
    for reporter in reporters:
        reporter.on_epoch_end(epoch + 1, row, prog.history, improved)
    return state


#: Steps between two reads of the losses and metric sums from the device during an
#: epoch. A read waits for the step, so reading after every step stops the host from
#: dispatching the next one while the device computes: 10–20 % of an epoch of the
#: bundled data on 2 CPU cores (BENCHMARKS.md). The NaN guard and the progress bar see the
#: losses at these reads.
SYNC_EVERY = 16


def _fetch(pending: list, total: dict | None, first_step: int, epoch: int, run: _Run,
           exp_dir) -> tuple[float, dict]:
    """Read the ``(loss, sums)`` device pairs of consecutive steps (0-based from
    ``first_step``); returns the last loss and the running sums with theirs added in step
    order. Raises :class:`TrainingDiverged` at the first non-finite loss."""
    fetched = jax.device_get(pending)
    for j, (loss, _) in enumerate(fetched):
        loss = float(loss)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at epoch {epoch + 1}, step {first_step + j + 1} of "
                f"{run.n_batches}; checkpoints 'best' and 'latest' in {exp_dir} are "
                "intact. Lower --learning-rate or enable --use-grad-clip.")
    return loss, _accumulate_all(total, [sums for _, sums in fetched])


def run_epoch(run: _Run, state: TrainState, epoch: int, bars, exp_dir) -> tuple[TrainState, dict]:
    """The optimizer steps of 0-based ``epoch`` with the NaN guard.

    ``bars``: an :class:`EpochReporter` (``begin_epoch``, ``step``, ``end_batches``).
    Losses and metric sums are read every :data:`SYNC_EVERY` steps and at the end (summed
    in step order, so the totals do not depend on ``SYNC_EVERY``).
    Returns ``(state, train metrics)``. Raises :class:`TrainingDiverged` on a NaN/Inf loss.
    """
    bars.begin_epoch(epoch)
    pending, total, first, last = [], None, 0, math.nan
    for i, batch in enumerate(prefetch_batches(run.train_it, epoch)):
        state, loss, sums = run.train_step(state, run.put_batch(batch), run.weights)
        pending.append((loss, sums))
        if len(pending) == SYNC_EVERY:
            last, total = _fetch(pending, total, first, epoch, run, exp_dir)
            first, pending = i + 1, []
        bars.step(last)
    if pending:
        last, total = _fetch(pending, total, first, epoch, run, exp_dir)
    bars.end_batches()
    return state, epoch_metrics(total)


def evaluate_epoch(run: _Run, params) -> dict:
    """Validation metrics of ``params`` over the whole validation set (keys as
    :func:`~dcmnet.training.loss.epoch_metrics`; sums read every :data:`SYNC_EVERY`
    batches)."""
    pending, total = [], None
    for b in prefetch_batches(run.valid_it, 0):
        pending.append(run.eval_step(params, run.put_batch(b), run.weights)[1])
        if len(pending) == SYNC_EVERY:
            total = _accumulate_all(total, pending)
            pending = []
    return epoch_metrics(_accumulate_all(total, pending))


def _accumulate_all(total: dict | None, pending: list) -> dict | None:
    for sums in jax.device_get(pending):
        total = accumulate(total, sums)
    return total


class CheckpointPolicy:
    """Which checkpoints an epoch writes, and when: ``best`` when validation improved,
    ``periodic`` every ``training.save_every_n_epochs`` (0: never), ``latest`` always (last,
    so a ``latest`` checkpoint implies the others of its epoch). How many of each are kept
    is the :class:`~dcmnet.training.checkpoint.CheckpointStore`'s (orbax preservation).

    An orbax save costs 0.1–0.5 s, about as much as a training epoch of the bundled data on
    2 CPU cores, so ``best`` and ``latest`` are held on the host and written at most every
    ``training.checkpoint_interval_s`` seconds (0: every epoch; always 0 with several JAX
    processes), at every periodic epoch and by :meth:`flush` (end of the run,
    ``stop_after_epochs``, a diverged loss, any exception, SIGTERM): a run killed hard
    (SIGKILL, power loss) loses at most that interval plus one epoch of training.
    """

    def __init__(self, store, config: ExperimentConfig, clock=time.monotonic):
        self.store, self.config, self.clock = store, config, clock
        # several processes save together (orbax waits for all): each would decide by its
        # own clock, so multi-host runs write after every epoch
        self.interval = (float(config.training.checkpoint_interval_s)
                         if jax.process_count() == 1 else 0.0)
        self._pending: dict = {}
        self._last = clock()

    def kinds(self, epoch: int, improved: bool) -> list[str]:
        """The kinds written after 1-based ``epoch``, in order."""
        every = self.config.training.save_every_n_epochs
        return ((["best"] if improved else []) +
                (["periodic"] if every and epoch % every == 0 else []) + ["latest"])

    def save(self, state: TrainState, epoch: int, improved: bool, prog: RunProgress) -> None:
        """Record the checkpoints of 1-based ``epoch`` (state on the host, ``prog.meta``);
        write them now when due."""
        meta = prog.meta(epoch, self.config)
        host_state = jax.device_get(state)
        kinds = self.kinds(epoch, improved)
        for kind in kinds:
            self._pending[kind] = (epoch, host_state, meta)
        if ("periodic" in kinds or self.interval <= 0
                or self.clock() - self._last >= self.interval):
            self.flush()

    def flush(self) -> None:
        """Write the checkpoints held back (``best`` and ``periodic`` before ``latest``)."""
        for kind in ("best", "periodic", "latest"):
            if kind in self._pending:
                epoch, host_state, meta = self._pending[kind]
                self.store.save(kind, epoch, host_state, meta)
                del self._pending[kind]  # only once written: a failed save keeps it
        self._last = self.clock()

    def exit_handler(self, console):
        """An ``ExitStack.push`` handler: :meth:`flush` when the run ends; when it ends by
        an exception, a failing write is reported on ``console`` and the original
        exception (``TrainingDiverged``, ``optuna.TrialPruned``, ...) propagates."""
        def _exit(exc_type, exc, tb) -> bool:
            if exc_type is None:
                self.flush()
                return False
            try:
                self.flush()
            except Exception as err:  # noqa: BLE001  (the run's own error matters more)
                console.print(f"[red]could not write the held checkpoints: {err}[/red]")
            return False
        return _exit


def _terminate_as_exit(stack) -> None:
    """SIGTERM (a batch system's preemption, ``kill``) ends training like Ctrl-C: the
    held checkpoints are written before the process exits (code 143). Main thread only;
    the previous handler is restored on ``stack``'s exit."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _raise)
    stack.callback(signal.signal, signal.SIGTERM, previous)


def _best_params(exp_dir: Path, state: TrainState, use_ema: bool):
    """Parameters (EMA when used) of the ``best`` checkpoint (``latest`` without one)."""
    from dcmnet.training.checkpoint import CheckpointStore

    with CheckpointStore(exp_dir) as best_store:
        kind = "best" if best_store.steps("best") else "latest"
        best_state, _, _ = best_store.restore(kind, target=jax.device_get(state))
    return best_state.ema_params if use_ema else best_state.params
