"""What a training run shows: progress bars, the per-epoch table or line, verbose arrays.

After each epoch (its checkpoints recorded by the CheckpointPolicy) the loop calls ``on_epoch_end(epoch, row, history, improved)``
of every :class:`Reporter`, in order: :class:`EpochReporter` (rich progress, the epoch table
every ``table_every`` epochs and a compact line otherwise),
:class:`dcmnet.training.monitor.Monitor` (TensorBoard, ``training_history.csv``, MLflow) and
:class:`CallbackReporter` (a user's ``f(epoch, row)``, e.g. Optuna's pruning).
"""
from __future__ import annotations

import math
import time
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from dcmnet.config import flatten_config

#: Metrics shown in the per-epoch table, with their labels.
TABLE_METRICS = (("loss", "loss"), ("esp_mae", "ESP MAE [kcal/(mol·e)]"),
                 ("esp_rmse", "ESP RMSE [kcal/(mol·e)]"), ("charge_mae", "charge MAE vs mono [e]"),
                 ("charge_rmse", "charge RMSE vs mono [e]"), ("dipole_mae", "dipole MAE [D]"),
                 ("q_std", "q std [e]"), ("q_min", "q min [e]"),
                 ("q_max", "q max [e]"))


#: The flat view of a config for MLflow (kept under the loop's name for it).
_flat_config = flatten_config


class Reporter(Protocol):
    """Something told about every finished epoch (its checkpoints are recorded by then; CheckpointPolicy decides when they are written)."""

    def on_epoch_end(self, epoch: int, row: dict, history: list[dict],
                     improved: bool) -> None:
        """``epoch``: 1-based; ``row``: its history row (``epoch``, ``time_s``, ``lr``,
        ``train_<metric>``, ``valid_<metric>``; ESP in kcal/(mol·e), dipole in D);
        ``history``: every row so far, this one last; ``improved``: a new best validation
        loss. An exception raised here ends training and propagates."""


class CallbackReporter:
    """A :class:`Reporter` calling ``fn(epoch, row)`` (the ``on_epoch_end`` argument of
    :func:`dcmnet.training.loop.train_model`, e.g. Optuna's pruning check)."""

    def __init__(self, fn):
        self.fn = fn

    def on_epoch_end(self, epoch: int, row: dict, history: list[dict],
                     improved: bool) -> None:
        self.fn(epoch, row)


def row_metrics(row: dict, prefix: str) -> dict:
    """The metrics of one side of a history row: ``{"loss": row["train_loss"], ...}`` for
    ``prefix="train"`` (likewise ``"valid"``)."""
    head = prefix + "_"
    return {k[len(head):]: v for k, v in row.items() if k.startswith(head)}


def _show_arrays(console, batch: dict, model, params) -> None:
    """Verbose mode: the first batch and predicted charges as lovely-jax summaries."""
    try:
        import lovely_jax as lj
    except ImportError:
        console.print("[yellow]--verbose: install lovely-jax for array summaries "
                      "(pip install 'dcmnet[tracking]')[/]")
        return
    charges, positions = model.apply(params, batch["Z"], batch["R"], batch["atom_mask"],
                                     batch["net_charge"])
    for k, v in list(batch.items()) + [("charges", charges), ("positions", positions)]:
        console.print(f"{k:>12}: {lj.lovely(jnp.asarray(v))}", highlight=False)


def epoch_table(epoch: int, train: dict, valid: dict, seconds: float, lr: float,
                ema: bool = False):
    """The seed's per-epoch table (rich): Metric | Train | Valid | Diff | % Diff.

    The mean charge (``q mean``) is not shown: it equals net charge / sites by construction.
    ``ema``: validation used the EMA parameters (said in the title; it is why validation is
    often better than training, whose metrics come from the raw parameters during the epoch).
    """
    from rich.markup import escape
    from rich.table import Table

    note = ("; Valid uses the EMA parameters, Train the running parameters" if ema else "")
    t = Table(title=f"Epoch {epoch}  ({seconds:.1f} s, lr {lr:.2e}{note})", title_justify="left",
              show_edge=False, header_style="bold")
    for c in ("Metric", "Train", "Valid", "Diff", "% Diff"):
        t.add_column(c, justify="left" if c == "Metric" else "right")
    for key, label in TABLE_METRICS:
        a, b = train.get(key, math.nan), valid.get(key, math.nan)
        if math.isnan(a) and math.isnan(b):
            continue
        d = b - a
        # a % change of the mean charge (≈ net charge / sites, near 0) means nothing
        pct = (100.0 * d / abs(a) if key != "q_mean" and a != 0.0 and not math.isnan(a)
               else math.nan)
        t.add_row(escape(label), f"{a:.6g}", f"{b:.6g}", f"{d:+.3g}",
                  "" if math.isnan(pct) else f"{pct:+.2f}%")
    return t


def announce(console, config, train_data, valid_data, n_batches: int, shapes, state,
             start_epoch: int) -> None:
    """The run's opening line (data, batches, padding shapes, parameter count)."""
    tcfg = config.training
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(state["params"]))
    console.print(f"[bold]{config.name}[/]: {len(train_data)} training / {len(valid_data)} "
                  f"validation conformers (split by {config.split_by}), batch "
                  f"{tcfg.batch_size} × accumulation "
                  f"{tcfg.gradient_accumulation_steps}, {n_batches} batches/epoch, padding "
                  f"shapes (atoms, grid points) {shapes}, {n_params:,} parameters, n_dcm "
                  f"{config.model.n_dcm}")
    if start_epoch >= tcfg.num_epochs:
        console.print(f"already trained for {start_epoch} epochs (num_epochs "
                      f"{tcfg.num_epochs}); nothing to do. Raise --num-epochs to continue.")


class EpochReporter:
    """Progress bars (epochs, batches of the epoch) and the per-epoch output of a run.

    Args:
        console: a ``rich.console.Console``; progress: show the bars.
        training: the :class:`~dcmnet.config.TrainingConfig`; start_epoch, end_epoch: the
            epochs (0-based, end exclusive) of this call; n_batches: batches per epoch.
        table_every: the full table every N epochs (always the last), a compact line
            (epoch/total, loss, valid ESP RMSE, time, ETA) for the others; 0 prints neither.
    """

    def __init__(self, console, progress: bool, training, start_epoch: int, end_epoch: int,
                 n_batches: int, table_every: int):
        self.console, self.progress, self.tcfg = console, progress, training
        self.start, self.end, self.n_batches = start_epoch, end_epoch, n_batches
        self.table_every = table_every
        self._first_done = None  # perf_counter at the end of this run's first epoch

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                   TextColumn("{task.fields[info]}")]
        self.bar = Progress(*columns, console=self.console, disable=not self.progress,
                            transient=False)
        self.bar.__enter__()
        self.ep_task = self.bar.add_task("epochs", total=self.tcfg.num_epochs,
                                         completed=self.start, info="")
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def begin_epoch(self, epoch: int) -> None:
        """A bar for the batches of ``epoch`` (0-based)."""
        self.b_task = self.bar.add_task(f"epoch {epoch + 1}", total=self.n_batches, info="")

    def step(self, loss: float) -> None:
        """One more batch done; ``loss`` is the latest loss read from the device (NaN
        before the first read of the epoch, then shown as no value)."""
        info = f"loss {loss:.4g}" if math.isfinite(loss) else ""
        self.bar.update(self.b_task, advance=1, info=info)

    def end_batches(self) -> None:
        self.bar.remove_task(self.b_task)

    def epoch_done(self, epoch: int, train_m: dict, valid_m: dict, seconds: float, lr: float,
                   improved: bool) -> None:
        """The table or the compact line of ``epoch`` (1-based)."""
        tcfg = self.tcfg
        if epoch - self.start == 1:
            self._first_done = time.perf_counter()
        if not self.table_every:
            return
        if epoch % self.table_every == 0 or epoch == tcfg.num_epochs:
            self.bar.console.print(epoch_table(epoch, train_m, valid_m, seconds, lr,
                                               ema=tcfg.use_ema))
            return
        self.bar.console.print(
            f"epoch {epoch}/{tcfg.num_epochs}  loss {train_m['loss']:.4g}  "
            f"valid ESP RMSE {valid_m['esp_rmse']:.3f} kcal/(mol·e)"
            f"{' (EMA)' if tcfg.use_ema else ''}{' *' if improved else ''}  "
            f"{seconds:.1f} s  ETA {self._eta(epoch)}", highlight=False)

    def _eta(self, epoch: int) -> str:
        """Time left from the epochs after this run's first one (which compiles the steps
        and would inflate the estimate many times over); unknown after the first."""
        if epoch - self.start <= 1 or self._first_done is None:
            return "after the next epoch (the first compiles)"
        per_epoch = (time.perf_counter() - self._first_done) / (epoch - self.start - 1)
        return f"{per_epoch * (self.end - epoch) / 60:.1f} min"

    def on_epoch_end(self, epoch: int, row: dict, history: list[dict],
                     improved: bool) -> None:
        """The table or line of ``epoch`` (1-based), then one step of the epochs bar."""
        valid_m = row_metrics(row, "valid")
        self.epoch_done(epoch, row_metrics(row, "train"), valid_m, row["time_s"], row["lr"],
                        improved)
        self.advance(valid_m, improved)

    def advance(self, valid_m: dict, improved: bool) -> None:
        self.bar.update(self.ep_task, advance=1,
                        info=f"valid ESP RMSE {valid_m['esp_rmse']:.3f} kcal/(mol·e)"
                             f"{' *' if improved else ''}")
