"""The Optuna objective of a search: one ordinary experiment per trial
(:func:`make_objective`)."""
from __future__ import annotations

import contextlib
import math
import shutil
import time
from pathlib import Path

from dcmnet.config import TrainingConfig, create_default_config
from dcmnet.errors import ConfigError
from dcmnet.tune.space import SHORT, SearchSpace, _fmt
from dcmnet.tune.study import _optuna


def make_objective(space: SearchSpace, settings: dict, trials_dir, *, console=None):
    """The Optuna objective: one normal experiment per trial, pruned on validation ESP RMSE.

    Args:
        space: the search space (fixed entries apply to every trial).
        settings: further fixed settings for every trial (``data_files``, ``num_epochs``,
            ``num_train``, ...), any name accepted by
            :func:`dcmnet.config.create_default_config`; they win over the space.
        trials_dir: parent of the trial folders ``trial_<number>``.
        console: rich console for one line per trial.
    Returns:
        ``objective(trial) -> float``: the validation ESP RMSE (kcal/(mol·e)) at the epoch
        with the lowest validation loss. Training output goes to ``<trial folder>/train.log``.
    Raises (from the objective):
        optuna.TrialPruned: the pruner stopped the trial, or training diverged (NaN/Inf
            loss; recorded in the trial's user attribute ``diverged``).
        ConfigError, DataError: bad settings or data (they end the study run).
    """
    optuna = _optuna()
    from rich.console import Console

    console = console or Console(stderr=True)
    trials_dir = Path(trials_dir).resolve()
    num_epochs = int(settings.get("num_epochs", TrainingConfig.num_epochs))

    def objective(trial) -> float:
        sampled, cfg = _trial_setup(trial, space, settings, trials_dir)
        rows: list[dict] = []
        t0 = time.perf_counter()

        def line(what: str, value=None) -> None:
            _line(console, trial, what, rows, t0, sampled, space, value)

        _train_trial(optuna, trial, cfg, _pruner(optuna, trial, rows, num_epochs), rows,
                     console, line)
        return _trial_value(optuna, trial, cfg.experiment_dir, rows, line)

    return objective


def _trial_setup(trial, space: SearchSpace, settings: dict, trials_dir: Path):
    """Sample the trial's values, build its config and an empty experiment folder
    (``trial_<number>``; one left over from an earlier study is removed).

    Returns:
        ``(sampled values, ExperimentConfig)``.
    """
    sampled = space.suggest(trial)
    flat = {**sampled, **settings}
    cfg = create_default_config(f"trial_{trial.number}", output_dir=str(trials_dir), **flat)
    exp_dir = cfg.experiment_dir
    trial.set_user_attr("experiment_dir", str(exp_dir))
    trial.set_user_attr("config", {k: v for k, v in flat.items()})
    if exp_dir.exists():       # left over from an earlier study of this folder
        shutil.rmtree(exp_dir)
    exp_dir.mkdir(parents=True)
    return sampled, cfg


def _pruner(optuna, trial, rows: list, num_epochs: int):
    """``on_epoch_end(epoch, row)``: collect the row, report its validation ESP RMSE
    (kcal/(mol·e)) to Optuna, raise ``optuna.TrialPruned`` when the pruner says so (never
    at the last epoch)."""
    def on_epoch_end(epoch: int, row: dict) -> None:
        rows.append(row)
        value = float(row["valid_esp_rmse"])
        trial.report(value, epoch)
        if epoch < num_epochs and trial.should_prune():
            trial.set_user_attr("pruned_at_epoch", epoch)
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: valid ESP RMSE "
                                     f"{value:.4g} kcal/(mol·e)")
    return on_epoch_end


def _train_trial(optuna, trial, cfg, on_epoch_end, rows: list, console, line) -> None:
    """Train the trial's experiment with its output in ``train.log`` (``rows``: the epoch
    rows ``on_epoch_end`` collected). Raises
    ``optuna.TrialPruned`` (pruned or diverged, with a console line) or the training's own
    error (after naming the log)."""
    from rich.console import Console

    from dcmnet.training.loop import TrainingDiverged
    from dcmnet.training.runner import run_training

    exp_dir = cfg.experiment_dir
    with open(exp_dir / "train.log", "w") as log:
        trial_console = Console(file=log, width=110, force_terminal=False)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                run_training(config=cfg, progress=False, table_every=1,
                             console=trial_console, on_epoch_end=on_epoch_end)
        except TrainingDiverged as exc:
            trial.set_user_attr("diverged", str(exc))
            trial.set_user_attr("pruned_at_epoch", len(rows) + 1)
            line("pruned (diverged)")
            raise optuna.TrialPruned(str(exc)) from exc
        except optuna.TrialPruned:
            line("pruned")
            raise
        except BaseException:
            console.print(f"trial {trial.number} failed; its training output is in "
                          f"{exp_dir / 'train.log'}", highlight=False, soft_wrap=True)
            raise


def _trial_value(optuna, trial, exp_dir: Path, rows: list, line) -> float:
    """The trial's value: validation ESP RMSE (kcal/(mol·e)) at the epoch of lowest
    validation loss, with the best epoch in the trial's user attributes.

    Raises:
        ConfigError: no epoch ran. optuna.TrialPruned: a non-finite value.
    """
    if not rows:
        raise ConfigError(f"{exp_dir}: training ran no epoch.")
    best = min(range(len(rows)), key=lambda i: rows[i]["valid_loss"])
    value = float(rows[best]["valid_esp_rmse"])
    trial.set_user_attr("best_epoch", int(rows[best]["epoch"]))
    trial.set_user_attr("epochs_run", len(rows))
    trial.set_user_attr("min_valid_esp_rmse",
                        float(min(r["valid_esp_rmse"] for r in rows)))
    if not math.isfinite(value):
        trial.set_user_attr("diverged", f"validation ESP RMSE {value}")
        line("pruned (non-finite)")
        raise optuna.TrialPruned(f"validation ESP RMSE is {value}")
    line("complete", value)
    return value


def _line(console, trial, what, rows, t0, sampled, space, value=None) -> None:
    last = rows[-1]["valid_esp_rmse"] if rows else math.nan
    v = value if value is not None else last
    params = " ".join(f"{SHORT.get(n, n)}={_fmt(sampled[n])}" for n in space.searched)
    console.print(f"trial {trial.number:>3} {what:<19} ep {len(rows):>3}  ESP RMSE {v:8.4f}  "
                  f"{time.perf_counter() - t0:5.0f} s  {params}", highlight=False,
                  soft_wrap=True)
