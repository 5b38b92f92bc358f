"""Optimiser, learning-rate schedules and gradient accumulation (all from optax).

Schedules count *optimizer updates*: with gradient accumulation over k micro-batches,
one update happens every k micro-batches (``optax.MultiSteps``), and the schedule, warmup
and EMA advance once per update.

* ``constant``: ``learning_rate``.
* ``cosine``: cosine decay from ``learning_rate`` to ``min_lr_factor × learning_rate`` at
  the last update (``optax.warmup_cosine_decay_schedule``).
* ``exponential``: ``learning_rate × decay_rate^(t / decay_steps)`` with ``decay_steps`` the
  post-warmup length, floored at ``min_lr_factor × learning_rate``
  (``optax.warmup_exponential_decay_schedule``).
* ``step``: multiply by ``decay_rate`` every ``step_every_epochs`` epochs (default a third
  of the run), floored at ``min_lr_factor × learning_rate``
  (``optax.piecewise_constant_schedule``).

Each has a linear warmup over ``warmup_epochs`` from ``learning_rate / warmup_steps``.
"""
from __future__ import annotations

import math

import optax

from dcmnet.config import TrainingConfig


def total_updates(cfg: TrainingConfig, batches_per_epoch: int) -> int:
    """Optimizer updates of the whole run: ⌊epochs × batches / accumulation⌋ (at least 1)."""
    return max(1, (cfg.num_epochs * batches_per_epoch) // cfg.gradient_accumulation_steps)


def make_schedule(cfg: TrainingConfig, batches_per_epoch: int) -> optax.Schedule:
    """The learning-rate schedule (a function of the optimizer-update count)."""
    lr = float(cfg.learning_rate)
    floor = lr * float(cfg.min_lr_factor)
    upe = batches_per_epoch / cfg.gradient_accumulation_steps  # updates per epoch
    total = total_updates(cfg, batches_per_epoch)
    warm = min(int(round(cfg.warmup_epochs * upe)), max(total - 1, 0))
    init = lr / max(warm, 1)
    kind = cfg.lr_schedule_type if cfg.use_lr_schedule else "constant"
    if kind == "cosine":
        return optax.warmup_cosine_decay_schedule(init if warm else lr, lr, warm,
                                                  max(total, warm + 1), floor)
    if kind == "exponential":
        return optax.warmup_exponential_decay_schedule(
            init if warm else lr, lr, warm, max(total - warm, 1), cfg.decay_rate,
            end_value=floor)
    if kind == "step":
        every = cfg.step_every_epochs or max(cfg.num_epochs // 3, 1)
        every_u = max(int(round(every * upe)), 1)
        n_drops = int(math.floor(math.log(max(cfg.min_lr_factor, 1e-12))
                                 / math.log(cfg.decay_rate))) if 0 < cfg.decay_rate < 1 else 0
        bounds = {every_u * (i + 1): cfg.decay_rate for i in range(max(n_drops, 0))}
        main = optax.piecewise_constant_schedule(lr, bounds)
    else:
        main = optax.constant_schedule(lr)
    if warm == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(init, lr, warm), main], [warm])


def freeze_labels(groups) -> callable:
    """Label function for ``optax.multi_transform``: ``"frozen"`` for the parameters of the
    named groups (:data:`dcmnet.config.FREEZE_GROUPS`), ``"trainable"`` for the rest.

    Groups are matched on the top-level module names of :class:`dcmnet.model.DCMNet`:
    ``embed`` → ``embed``; ``message`` → ``message_<i>``, ``update_<i>_a/b``; ``head`` →
    ``head_a``, ``head_b``; ``all-but-head`` → everything but ``head_*``.
    """
    import jax

    groups = set(groups)

    def frozen(name: str) -> bool:
        is_head = name.startswith("head")
        is_msg = name.startswith(("message_", "update_"))
        return (("embed" in groups and name == "embed") or ("message" in groups and is_msg)
                or ("head" in groups and is_head) or ("all-but-head" in groups and not is_head))

    def labels(params):
        def one(path, _):
            names = [getattr(k, "key", str(k)) for k in path]
            mod = names[1] if len(names) > 1 and names[0] == "params" else names[0]
            return "frozen" if frozen(str(mod)) else "trainable"
        return jax.tree_util.tree_map_with_path(one, params)

    return labels


def make_optimizer(cfg: TrainingConfig, batches_per_epoch: int,
                   freeze=()) -> optax.GradientTransformation:
    """Adam with the schedule, optional global-norm clipping, optional accumulation.

    Returns an ``optax.MultiSteps`` when ``gradient_accumulation_steps > 1``: its inner
    optimizer (and so the schedule and clipping) sees the mean gradient of k micro-batches.
    With ``freeze`` (parameter groups, see :func:`freeze_labels`) the inner optimizer is an
    ``optax.multi_transform`` that sends the frozen parameters through
    ``optax.set_to_zero()`` (zero updates: they stay bitwise unchanged) and the others
    through the optimizer above (clipping then sees the trainable gradients only).
    """
    parts = []
    if cfg.use_grad_clip:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
    parts.append(optax.adam(make_schedule(cfg, batches_per_epoch)))
    tx = optax.chain(*parts)
    if freeze:
        tx = optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()},
                                   freeze_labels(freeze))
    if cfg.gradient_accumulation_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=cfg.gradient_accumulation_steps)
    return tx
