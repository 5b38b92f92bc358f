"""The jitted training and evaluation steps of DCM-net and the EMA update they use.

``build_steps(model, tx, config)`` returns ``train_step`` (loss, gradients, the optax update
and the EMA of the parameters, state donated) and ``eval_step`` (loss and metric sums), both
over the masked losses of :mod:`dcmnet.training.loss`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dcmnet.config import ExperimentConfig
from dcmnet.training.loss import loss_and_metrics
from dcmnet.training.state import TrainState


def ema_update(ema, params, decay, updated):
    """The EMA after an optimizer update: ``optax.incremental_update(params, ema,
    step_size=1 - decay)`` (= ``(1 - decay) * params + decay * ema``).

    Leaves where ``ema == params`` stay bitwise (frozen parameters stay exact), and nothing
    changes while ``updated`` is False (a micro-batch of gradient accumulation).

    Args:
        ema, params: pytrees of the same structure; decay: float32 scalar in [0, 1) (0: the
            EMA follows the parameters); updated: bool scalar.
    Returns:
        The new EMA pytree.
    """
    avg = optax.incremental_update(params, ema, step_size=1.0 - decay)
    return jax.tree_util.tree_map(lambda a, e, p: jnp.where(updated & (e != p), a, e),
                                  avg, ema, params)


def build_steps(model, tx, cfg: ExperimentConfig):
    """Jitted ``train_step(state, batch, weights) -> (state, loss, sums)`` (``state`` a
    :class:`~dcmnet.training.state.TrainState`, donated) and ``eval_step(params, batch,
    weights) -> (loss, sums)``."""
    tcfg = cfg.training
    chunk = tcfg.esp_chunk_size or None
    decay = jnp.float32(tcfg.ema_decay if tcfg.use_ema else 0.0)
    accumulating = tcfg.gradient_accumulation_steps > 1

    def train_step(state: TrainState, batch, weights):
        def lf(p):
            loss, (sums, _) = loss_and_metrics(model, p, batch, weights, chunk)
            return loss, sums
        (loss, sums), grads = jax.value_and_grad(lf, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        updated = tx.has_updated(opt_state) if accumulating else jnp.bool_(True)
        new = state.replace(params=params, opt_state=opt_state,
                            ema_params=ema_update(state.ema_params, params, decay, updated),
                            step=state.step + 1)
        return new, loss, sums

    def eval_step(params, batch, weights):
        loss, (sums, _) = loss_and_metrics(model, params, batch, weights, chunk)
        return loss, sums

    return jax.jit(train_step, donate_argnums=(0,)), jax.jit(eval_step)
