"""Checkpoints of an experiment: saving, pruning, restoring (the only module that imports orbax).

Layout of an experiment folder::

    EXP/checkpoints/latest/<step>/     the most recent steps (``keep_latest`` of them)
    EXP/checkpoints/best/<step>/       the best step so far (exactly one is kept)
    EXP/checkpoints/periodic/<step>/   every-N-epochs snapshots (``keep_periodic`` of them)

Each kind folder is an orbax ``CheckpointManager`` directory and each step folder holds two
items: ``state`` (any pytree of JAX/numpy arrays and Python scalars: parameters, optax state,
EMA parameters, RNG state arrays, counters) and ``meta`` (a JSON dictionary: epoch, best
validation loss, configuration snapshot, ...). Nothing is pickled.

Saving is synchronous and atomic: orbax writes ``<step>.orbax-checkpoint-tmp`` and renames it
to ``<step>`` only when complete, so a process killed mid-save leaves a temporary folder that
:meth:`CheckpointStore.steps` ignores (the next writer's orbax manager removes it:
``cleanup_tmp_directories``). How many steps of a kind are kept is orbax's preservation
policy ``LatestN`` (the step just saved and the highest other steps); orbax renames pruned
steps into ``<kind>/.dcmnet-deleting/`` (``todelete_subdir``) and the store empties that
folder, so a half-deleted folder never looks like a checkpoint. Orbax never overwrites a
step: re-saving one moves the old folder aside (``<step>.dcmnet-replaced``) until the new one
is complete.

"Newest" means the highest step number, as in orbax.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from dcmnet.errors import CheckpointError

__all__ = [
    "KINDS",
    "CheckpointStore",
    "CheckpointWarning",
]

#: The kinds of checkpoint an experiment keeps, one sub-folder of ``EXP/checkpoints`` each.
KINDS: tuple[str, ...] = ("latest", "best", "periodic")

_CHECKPOINTS = "checkpoints"
_ITEMS = ("state", "meta")
_STEP_RE = re.compile(r"^(0|[1-9][0-9]*)$")
_REPLACED = ".dcmnet-replaced"
# orbax's todelete_subdir inside each kind folder (also the suffix of an earlier version's
# ``<step>.dcmnet-deleting`` folders): whatever ends so is removed.
_DELETING = ".dcmnet-deleting"
# Substrings of orbax errors that mean "the target does not fit this checkpoint" (a changed
# model or optimizer), as opposed to a damaged checkpoint. Falling back to an older step would
# hide such a mismatch, so it is reported at once.
_MISMATCH_MARKERS = (
    "tree structures do not match",
    "is not compatible with the stored shape",
    "Restored result is not a scalar",
)

_EXPECTED = (
    "expected an experiment folder such as experiments/NAME or a folder like "
    "experiments/NAME/checkpoints/latest"
)


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (damaged or partial) and an older one is used instead."""


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _abs(path) -> Path:
    """Absolute path (orbax refuses relative ones); symlinks are kept as given."""
    return Path(path).expanduser().absolute()


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def _list_steps(kind_dir: Path) -> list[int]:
    """Steps of complete checkpoints in ``kind_dir``, ascending; temporary folders are ignored."""
    if not kind_dir.is_dir():
        return []
    steps = []
    for child in kind_dir.iterdir():
        if _STEP_RE.match(child.name) and child.is_dir():
            steps.append(int(child.name))
    return sorted(steps)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, jax.Array)):
        return np.asarray(obj).tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _json_meta(meta) -> dict:
    """``meta`` as plain JSON data (numpy scalars/arrays and paths converted)."""
    if not isinstance(meta, dict):
        raise TypeError(f"checkpoint meta must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(meta, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint meta is not JSON serialisable: {exc}") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 300:
        first = first[:300] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _is_mismatch(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and any(m in str(exc) for m in _MISMATCH_MARKERS)


def _shape_mismatches(target, restored) -> list[str]:
    """Leaves whose restored shape differs from the target's (orbax checks shapes only for
    jax.Array targets; numpy targets take whatever shape is on disk)."""
    t_leaves, t_def = jax.tree_util.tree_flatten_with_path(target)
    r_leaves, r_def = jax.tree_util.tree_flatten(restored)
    if t_def != r_def:
        return [f"tree structure {r_def} instead of {t_def}"]
    problems = []
    for (key_path, t), r in zip(t_leaves, r_leaves):
        t_shape = tuple(t.shape) if hasattr(t, "shape") else np.shape(t)
        r_shape = tuple(np.shape(r))
        if t_shape != r_shape:
            name = jax.tree_util.keystr(key_path)
            problems.append(f"{name}: shape {r_shape} on disk, {t_shape} expected")
    return problems


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


class CheckpointStore:
    """The checkpoints of one experiment folder (``EXP/checkpoints/{latest,best,periodic}``).

    Args:
        exp_dir: the experiment folder (relative paths are made absolute). Nothing is created
            until the first :meth:`save`.
        keep_periodic: how many ``periodic`` steps to keep: the step just saved and the
            highest other step numbers.
        keep_latest: how many ``latest`` steps to keep (likewise). ``best`` always keeps one,
            the step saved last.

    Raises:
        ValueError: if ``keep_periodic`` or ``keep_latest`` is smaller than 1.

    Use as a context manager, or call :meth:`close` when done.
    """

    def __init__(self, exp_dir, keep_periodic: int = 3, keep_latest: int = 2):
        for name, value in (("keep_periodic", keep_periodic), ("keep_latest", keep_latest)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.exp_dir: Path = _abs(exp_dir)
        self.root: Path = self.exp_dir / _CHECKPOINTS
        self._keep = {"latest": int(keep_latest), "best": 1, "periodic": int(keep_periodic)}
        self._managers: dict[tuple[str, bool], ocp.CheckpointManager] = {}
        self._recovered: set[str] = set()

    # ---------------------------------------------------------------- paths and listing
    def kind_dir(self, kind: str) -> Path:
        """The folder of one kind, ``EXP/checkpoints/<kind>``. Raises ValueError for an
        unknown kind."""
        return self.root / _check_kind(kind)

    def steps(self, kind: str) -> list[int]:
        """Steps of the complete checkpoints of ``kind``, ascending (temporary, partial and
        half-deleted folders are ignored). Raises ValueError for an unknown kind."""
        return _list_steps(self.kind_dir(kind))

    def latest_step(self, kind: str) -> int | None:
        """The highest step of ``kind``, or None when there is none. Raises ValueError for an
        unknown kind."""
        steps = self.steps(kind)
        return steps[-1] if steps else None

    def _manager(self, kind: str, write: bool = False) -> ocp.CheckpointManager:
        """The orbax manager of ``kind``: read-only for restoring (it deletes nothing, so a
        reader never removes a running writer's temporary folder), or the writer's, which
        keeps ``LatestN`` steps, removes temporary folders of unfinished saves when created
        and renames pruned steps into ``.dcmnet-deleting/``."""
        mngr = self._managers.get((kind, write))
        if mngr is None:
            if write:
                options = ocp.CheckpointManagerOptions(
                    enable_async_checkpointing=False, create=False,
                    preservation_policy=ocp.checkpoint_managers.LatestN(n=self._keep[kind]),
                    cleanup_tmp_directories=True, todelete_subdir=_DELETING)
            else:
                options = ocp.CheckpointManagerOptions(
                    enable_async_checkpointing=False, create=False, read_only=True,
                    save_interval_steps=0)
            absl = logging.getLogger("absl")
            level = absl.level
            if not write:  # orbax warns that a read-only folder is read-only: not news
                absl.setLevel(logging.ERROR)
            try:
                mngr = ocp.CheckpointManager(self.kind_dir(kind), options=options,
                                             item_names=_ITEMS)
            finally:
                absl.setLevel(level)
            self._managers[(kind, write)] = mngr
        return mngr

    def _recover(self, kind: str) -> None:
        """Finish what a killed writer left (this store is taken to be the only writer): put
        back a step that was being replaced when the replacement never completed, remove
        folders that were being deleted, and open the writer's orbax manager (which removes
        orbax's temporary folders of unfinished saves)."""
        kind_dir = self.kind_dir(kind)
        for child in kind_dir.iterdir():
            if child.name.endswith(_DELETING):
                shutil.rmtree(child, ignore_errors=True)
            elif child.name.endswith(_REPLACED):
                final = child.with_name(child.name[: -len(_REPLACED)])
                if final.exists():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.rename(final)
        self._manager(kind, write=True)

    # ---------------------------------------------------------------- save
    def save(self, kind: str, step: int, state, meta: dict, force: bool = True) -> Path:
        """Save ``state`` (a pytree) and ``meta`` (a JSON dict) as ``EXP/checkpoints/<kind>/<step>``.

        Synchronous and atomic: returns once the step folder is complete. Orbax then prunes the
        kind to its ``keep`` count (the step just saved plus the highest other steps); ``best``
        keeps only the step just saved. A :class:`CheckpointWarning` says when kept steps are
        newer than ``step`` (restoring without a step picks the highest).

        Args:
            kind: "latest", "best" or "periodic".
            step: a non-negative integer (for example the epoch).
            state: a pytree of arrays and Python scalars (NamedTuples allowed).
            meta: a JSON-serialisable dict (numpy scalars and arrays are converted).
            force: overwrite the step if it exists already (default). The old folder is kept
                aside until the new one is complete.

        Returns:
            The absolute path of the step folder.

        Raises:
            ValueError: unknown ``kind`` or a negative/non-integer ``step``.
            TypeError: ``meta`` is not a JSON-serialisable dict.
            CheckpointError: the step exists and ``force`` is False, or orbax failed to write.
        """
        kind_dir = self.kind_dir(kind)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"checkpoint step must be a non-negative integer, got {step!r}")
        step = int(step)
        meta = _json_meta(meta)

        kind_dir.mkdir(parents=True, exist_ok=True)
        if kind not in self._recovered:
            self._recover(kind)
            self._recovered.add(kind)
        self._warn_newer(kind, step)

        final = kind_dir / str(step)
        aside = kind_dir / f"{step}{_REPLACED}"
        if final.exists():
            if not force:
                raise CheckpointError(
                    f"checkpoint {final} exists already; pass force=True to overwrite it"
                )
            if aside.exists():
                shutil.rmtree(aside)
            final.rename(aside)

        try:
            self._write(kind, step, state, meta)
        except Exception as exc:
            if aside.exists() and not final.exists():
                aside.rename(final)
            raise CheckpointError(f"could not save checkpoint {final}: {_short(exc)}") from exc
        if not final.is_dir():
            if aside.exists():
                aside.rename(final)
            raise CheckpointError(f"orbax reported success but {final} was not written")
        if aside.exists():
            shutil.rmtree(aside, ignore_errors=True)
        shutil.rmtree(kind_dir / _DELETING, ignore_errors=True)  # what orbax pruned
        return final

    def _write(self, kind: str, step: int, state, meta: dict) -> None:
        """One orbax save (synchronous; its preservation policy prunes afterwards)."""
        mngr = self._manager(kind, write=True)
        mngr.reload()  # the folder may have changed since the manager last looked
        mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,  # orbax's force: ignore save-interval policies (never overwrites)
        )
        mngr.wait_until_finished()

    def _warn_newer(self, kind: str, saved: int) -> None:
        """Warn when the steps kept beside ``saved`` (the highest ``keep - 1`` others)
        include newer ones."""
        others = [s for s in self.steps(kind) if s != saved]
        newer = [s for s in sorted(others, reverse=True)[: self._keep[kind] - 1] if s > saved]
        if newer and kind != "best":
            warnings.warn(
                f"{self.kind_dir(kind)} holds steps {newer} newer than the step {saved} just "
                "saved; restoring without a step picks the highest step",
                CheckpointWarning,
                stacklevel=3,
            )

    # ---------------------------------------------------------------- restore
    def restore(self, kind: str, target, step: int | None = None):
        """Restore a checkpoint of ``kind`` into the structure of ``target``.

        Args:
            kind: "latest", "best" or "periodic".
            target: a pytree with the structure of the saved state (for example the freshly
                initialised training state; arrays or ``jax.ShapeDtypeStruct`` leaves). Leaves
                are restored with the target's array type and dtype (orbax casts silently).
                NamedTuples (optax states) come back as NamedTuples only with a target. With
                ``None`` the state is restored as saved on disk: dicts and lists of arrays.
            step: the step to restore. ``None``: the newest step; when it is damaged or partial
                a :class:`CheckpointWarning` naming its folder is issued and the next older step
                is tried.

        Returns:
            ``(state, meta, step)``.

        Raises:
            ValueError: unknown ``kind``.
            CheckpointError: no checkpoint in the folder; the requested step is missing or
                unreadable; every step is unreadable; or the checkpoint does not match the
                structure/shapes of ``target`` (reported at once, without falling back).
        """
        kind_dir = self.kind_dir(kind)
        available = _list_steps(kind_dir)
        if not available:
            raise CheckpointError(f"no checkpoint found in {kind_dir}")
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
                raise CheckpointError(f"checkpoint step must be an integer, got {step!r}")
            step = int(step)
            if step not in available:
                raise CheckpointError(
                    f"no checkpoint for step {step} in {kind_dir}; available steps: {available}"
                )
            try:
                state, meta = self._restore_step(kind, target, step)
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError(
                    f"checkpoint {kind_dir / str(step)} is unreadable: {_short(exc)}"
                ) from exc
            return state, meta, step

        failures = []
        for candidate in reversed(available):
            folder = kind_dir / str(candidate)
            try:
                state, meta = self._restore_step(kind, target, candidate)
            except CheckpointError:
                raise
            except Exception as exc:  # damaged or partial: fall back to an older step
                failures.append(f"{folder}: {_short(exc)}")
                warnings.warn(
                    f"checkpoint {folder} is damaged or incomplete ({_short(exc)}); "
                    "trying the next older step",
                    CheckpointWarning,
                    stacklevel=2,
                )
                continue
            return state, meta, candidate
        raise CheckpointError(
            f"no usable checkpoint in {kind_dir}: every step is damaged or incomplete\n  "
            + "\n  ".join(failures)
        )

    def _restore_step(self, kind: str, target, step: int):
        mngr = self._manager(kind)  # read-only
        mngr.reload()
        folder = self.kind_dir(kind) / str(step)
        try:
            restored = mngr.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target),
                    meta=ocp.args.JsonRestore(),
                ),
            )
        except Exception as exc:
            if target is not None and _is_mismatch(exc):
                raise CheckpointError(
                    f"checkpoint {folder} does not match the expected state (was the model, "
                    f"optimizer or configuration changed?): {exc}"
                ) from exc
            raise
        if target is not None:
            problems = _shape_mismatches(target, restored["state"])
            if problems:
                raise CheckpointError(
                    f"checkpoint {folder} does not match the expected state (was the model, "
                    "optimizer or configuration changed?): " + "; ".join(problems[:5])
                )
        meta = restored["meta"]
        if not isinstance(meta, dict):
            raise ValueError(f"meta item is {type(meta).__name__}, not a JSON object")
        return restored["state"], meta

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Close the orbax managers (the store can be used again afterwards)."""
        managers, self._managers = self._managers, {}
        for mngr in managers.values():
            mngr.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.exp_dir)!r})"
