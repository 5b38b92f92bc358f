"""Training DCM-net: jit-compiled steps, EMA, checkpoints, resume, monitoring.

``train_model`` runs the epochs of one experiment on given training / validation datasets;
``run_training`` (in :mod:`dcmnet.runner`) adds data loading, the split and the folder.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcmnet.config import ExperimentConfig
from dcmnet.data.batching import BatchIterator, bucket_shapes
from dcmnet.data.dataset import Dataset
from dcmnet.data.prefetch import prefetch_batches
from dcmnet.errors import ConfigError, DCMNetError
from dcmnet.loss import accumulate, epoch_metrics, loss_and_metrics, weights_array
from dcmnet.model import check_atomic_numbers, create_model
from dcmnet.optim import make_optimizer, make_schedule

#: Metrics shown in the per-epoch table, with their labels.
TABLE_METRICS = (("loss", "loss"), ("esp_mae", "ESP MAE [kcal/(mol·e)]"),
                 ("esp_rmse", "ESP RMSE [kcal/(mol·e)]"), ("charge_mae", "charge MAE vs mono [e]"),
                 ("charge_rmse", "charge RMSE vs mono [e]"), ("dipole_mae", "dipole MAE [D]"),
                 ("q_std", "q std [e]"), ("q_min", "q min [e]"),
                 ("q_max", "q max [e]"))


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


def load_init_source(config: ExperimentConfig, train_data: Dataset, console=None) -> dict:
    """The parameters a fine-tuning run starts from (``config.init_from``), checked.

    ``init_from`` is an experiment folder, a checkpoint folder inside one, or a shipped
    model's name (resolved by :func:`dcmnet.experiment.load_experiment`). Its validation
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

    from dcmnet.experiment import load_experiment

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

    from dcmnet.experiment import CONFIG_NAME
    from dcmnet.fileio import atomic_write_json

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


def _flat_config(config: ExperimentConfig) -> dict:
    d = config.to_dict()
    flat = {k: v for k, v in d.items() if k not in ("model", "training")}
    flat.update({f"model.{k}": v for k, v in d["model"].items()})
    flat.update({f"training.{k}": v for k, v in d["training"].items()})
    return flat


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


def train_model(config: ExperimentConfig = None, train_data: Dataset = None,
                valid_data: Dataset = None, *original_args,
                resume_from: Path | None = None, console=None, progress: bool = True,
                table_every: int = 1, stop_after_epochs: int | None = None,
                mlflow: bool | str = False, verbose: bool = False,
                on_epoch_end=None, **original_kwargs) -> TrainResult:
    """Train DCM-net for ``config.training.num_epochs`` epochs (or up to it when resuming).

    The original tool's form, ``train_model(key=..., model=..., train_data=...,
    valid_data=..., num_epochs=..., ...)`` returning ``(params, best_valid_loss)``, is
    accepted too: without an :class:`ExperimentConfig` the call goes to
    :func:`dcmnet.compat.train_model_from_model` (see docs/coming_from_mmml.md).

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
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from dcmnet.checkpoint import CheckpointStore, resolve_checkpoint
    from dcmnet.monitor import Monitor
    from dcmnet.parallel import maybe_data_parallel

    if not isinstance(config, ExperimentConfig):        # the original tool's call form
        from dcmnet.compat import train_model_dispatch
        pos = (config, train_data, valid_data, *original_args) if config is not None else ()
        kw = dict(original_kwargs, console=console, progress=progress,
                  table_every=table_every)
        if config is None:
            kw.update({k: v for k, v in (("train_data", train_data),
                                         ("valid_data", valid_data)) if v is not None})
        return train_model_dispatch(pos, kw)
    if original_args or original_kwargs:
        raise ConfigError(f"train_model(config, ...): unexpected argument(s) "
                          f"{', '.join(map(str, original_kwargs)) or original_args}; the "
                          "config form takes the settings from the ExperimentConfig.")
    console = console or Console(stderr=True)
    config.validate()
    tcfg, mcfg = config.training, config.model
    exp_dir = config.experiment_dir
    exp_dir.mkdir(parents=True, exist_ok=True)
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
    schedule = make_schedule(tcfg, n_batches)
    weights = weights_array(tcfg.esp_w, tcfg.chg_w, tcfg.dipole_w)
    train_step, eval_step = _build_steps(model, tx, config)

    first = next(iter(train_it.epoch_batches(0)))
    state = init_state(model, tx, first, config.random_seed)
    if source is not None:      # fine-tuning: the source's parameters, fresh optimizer and EMA
        params = jax.tree_util.tree_map(
            lambda t, v: jnp.asarray(v, dtype=t.dtype), state["params"], source["params"])
        state = {"params": params, "opt_state": tx.init(params),
                 "ema_params": jax.tree_util.tree_map(jnp.array, params),
                 "step": jnp.int32(0)}
        console.print(f"fine-tuning from {source['path']}: its parameters, a fresh optimizer, "
                      f"schedule and EMA; frozen: {', '.join(config.freeze) or 'nothing'}")
    dp = maybe_data_parallel(tcfg.batch_size, tcfg.data_parallel, console)
    put_batch = dp.put_batch if dp is not None else (lambda b: b)
    store = CheckpointStore(exp_dir, keep_periodic=tcfg.keep_checkpoints)
    start_epoch, best_loss, best_epoch, history = 0, math.inf, -1, []

    src_store, src_kind, src_step, src_dir = store, "latest", None, exp_dir
    if resume_from is not None:
        src_dir, src_kind, src_step = resolve_checkpoint(resume_from)
        src_store = CheckpointStore(src_dir) if Path(src_dir) != exp_dir else store
    if src_store.steps(src_kind):
        state, meta, step = src_store.restore(src_kind, target=state, step=src_step)
        start_epoch = int(meta["epoch"])
        history = list(meta.get("history", []))[:start_epoch]
        best_loss = float(meta.get("best_valid_loss", math.inf))
        best_epoch = int(meta.get("best_epoch", -1))
        console.print(f"resuming from {src_kind} checkpoint (epoch {start_epoch}) of {src_dir}")
    if dp is not None:
        state = dp.put_state(state)
        console.print(f"data parallel over {dp.size} devices "
                      f"({tcfg.batch_size // dp.size} molecules per device and batch)")
    if verbose:
        _show_arrays(console, first, model, state["params"])
    end_epoch = tcfg.num_epochs if stop_after_epochs is None else min(
        tcfg.num_epochs, start_epoch + int(stop_after_epochs))
    monitor = Monitor(exp_dir, params=_flat_config(config), mlflow=bool(mlflow),
                      mlflow_uri=mlflow if isinstance(mlflow, str) else None) \
        if end_epoch > start_epoch else None
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(state["params"]))
    console.print(f"[bold]{config.name}[/]: {len(train_data)} training / {len(valid_data)} "
                  f"validation conformers (split by {config.split_by}), batch {tcfg.batch_size} × accumulation "
                  f"{tcfg.gradient_accumulation_steps}, {n_batches} batches/epoch, padding "
                  f"shapes (atoms, grid points) {shapes}, {n_params:,} parameters, n_dcm "
                  f"{mcfg.n_dcm}")
    if start_epoch >= tcfg.num_epochs:
        console.print(f"already trained for {start_epoch} epochs (num_epochs "
                      f"{tcfg.num_epochs}); nothing to do. Raise --num-epochs to continue.")

    def run_eval(params):
        total = None
        for b in prefetch_batches(valid_it, 0):
            _, sums = eval_step(params, put_batch(b), weights)
            total = accumulate(total, jax.device_get(sums))
        return epoch_metrics(total)

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}")]
    try:
        with Progress(*columns, console=console, disable=not progress,
                      transient=False) as bar:
            ep_task = bar.add_task("epochs", total=tcfg.num_epochs, completed=start_epoch,
                                   info="")
            run_t0 = time.perf_counter()
            for epoch in range(start_epoch, end_epoch):
                t0 = time.perf_counter()
                b_task = bar.add_task(f"epoch {epoch + 1}", total=n_batches, info="")
                total = None
                for i, batch in enumerate(prefetch_batches(train_it, epoch)):
                    state, loss, sums = train_step(state, put_batch(batch), weights)
                    loss = float(loss)
                    if not math.isfinite(loss):
                        raise TrainingDiverged(
                            f"loss became {loss} at epoch {epoch + 1}, step {i + 1} of "
                            f"{n_batches}; checkpoints 'best' and 'latest' in {exp_dir} are "
                            "intact. Lower --learning-rate or enable --use-grad-clip.")
                    total = accumulate(total, jax.device_get(sums))
                    bar.update(b_task, advance=1, info=f"loss {loss:.4g}")
                bar.remove_task(b_task)
                train_m = epoch_metrics(total)
                params_eval = state["ema_params"] if tcfg.use_ema else state["params"]
                valid_m = run_eval(params_eval)
                seconds = time.perf_counter() - t0
                n_updates = int(state["step"]) // tcfg.gradient_accumulation_steps
                lr = float(schedule(max(n_updates - 1, 0)))
                row = {"epoch": epoch + 1, "time_s": round(seconds, 3), "lr": lr}
                row.update({f"train_{k}": v for k, v in train_m.items()})
                row.update({f"valid_{k}": v for k, v in valid_m.items()})
                history.append(row)
                monitor.log_epoch(row, history)
                improved = valid_m["loss"] < best_loss
                if improved:
                    best_loss, best_epoch = valid_m["loss"], epoch + 1
                meta = {"epoch": epoch + 1, "best_valid_loss": best_loss,
                        "best_epoch": best_epoch, "history": history,
                        "config": config.to_dict()}
                host_state = jax.device_get(state)
                if improved:
                    store.save("best", epoch + 1, host_state, meta)
                if tcfg.save_every_n_epochs and (epoch + 1) % tcfg.save_every_n_epochs == 0:
                    store.save("periodic", epoch + 1, host_state, meta)
                store.save("latest", epoch + 1, host_state, meta)
                last = epoch + 1 == tcfg.num_epochs
                if table_every and ((epoch + 1) % table_every == 0 or last):
                    bar.console.print(epoch_table(epoch + 1, train_m, valid_m, seconds, lr,
                                                  ema=tcfg.use_ema))
                elif table_every:
                    done_now = epoch + 1 - start_epoch
                    run_s = time.perf_counter() - run_t0
                    eta = run_s / done_now * (end_epoch - epoch - 1)
                    bar.console.print(
                        f"epoch {epoch + 1}/{tcfg.num_epochs}  loss {train_m['loss']:.4g}  "
                        f"valid ESP RMSE {valid_m['esp_rmse']:.3f} kcal/(mol·e)"
                        f"{' (EMA)' if tcfg.use_ema else ''}{' *' if improved else ''}  "
                        f"{seconds:.1f} s  ETA {eta / 60:.1f} min", highlight=False)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, row)
                bar.update(ep_task, advance=1,
                           info=f"valid ESP RMSE {valid_m['esp_rmse']:.3f} kcal/(mol·e)"
                                f"{' *' if improved else ''}")
    finally:
        if monitor is not None:
            monitor.close()
        store.close()

    if end_epoch < tcfg.num_epochs:
        console.print(f"stopped after epoch {end_epoch} of {tcfg.num_epochs} as asked; rerun "
                      "the same command to continue.")
    best_store = CheckpointStore(exp_dir)
    kind = "best" if best_store.steps("best") else "latest"
    best_state, _, _ = best_store.restore(kind, target=jax.device_get(state))
    best_store.close()
    params = best_state["ema_params"] if tcfg.use_ema else best_state["params"]
    return TrainResult(params=params, best_valid_loss=best_loss, best_epoch=best_epoch,
                       experiment_dir=exp_dir, history=history)
