"""Orbax checkpoints of the whole GANState plus run metadata (data position, ...).

Orbax writes a step into a temporary directory and renames it when complete, so a killed
save never looks like a checkpoint. Each checkpoint also stores a SHA-256 of its state, so
damaged files are caught on restore, and `restore_latest` falls back to the newest intact one.

With several processes (`jax.distributed`) every process makes the same calls: Orbax's
multi-process path writes the replicated (host-side) state once, from process 0, into the
temporary directory, and renames it after a barrier; every process reads the whole state
back, so the checkpoint restores under any number of processes and devices. The workdir must
then be on storage every process sees (NFS, a mounted bucket). Which checkpoint is intact is
agreed: a step that any process cannot read is skipped by all.
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
import shutil
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax.core.state import GANState
from gan_jax.errors import CheckpointError
from gan_jax.loop import distributed

log = logging.getLogger("gan_jax")


class _QuietReadOnly(logging.Filter):
    """Drops Orbax's notice that a read-only manager's directory is read only: `gan-jax sample` and `evaluate`
    open runs read-only on purpose, and a warning on every call teaches users to ignore warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Given directory is read only")


logging.getLogger("absl").addFilter(_QuietReadOnly())


def state_digest(tree) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _to_saveable(state: GANState) -> dict:
    # Typed PRNG keys are stored as their raw key data.
    return flax.serialization.to_state_dict(state.replace(rng=jax.random.key_data(state.rng)))


class Checkpointer:
    """Saves and restores `(GANState, metadata)` under `WORKDIR/checkpoints/<step>/`."""

    def __init__(self, directory: str | pathlib.Path, keep: int, read_only: bool = False):
        self.directory = pathlib.Path(directory).absolute()
        if read_only:  # evaluation beside a live run: touch nothing, not even its unfinished saves
            options = ocp.CheckpointManagerOptions(read_only=True)
        else:
            options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False,
                                                   cleanup_tmp_directories=True)  # leftovers of killed saves
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: GANState, meta: dict[str, Any]) -> None:
        tree = jax.device_get(_to_saveable(state))
        meta = {**meta, "state_sha256": state_digest(tree)}
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                          meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, like: GANState) -> tuple[GANState, dict[str, Any]]:
        """Restores step `step` into the structure (and dtypes) of `like`."""
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, jax.device_get(_to_saveable(like)))
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                                        meta=ocp.args.JsonRestore()))
        meta = dict(restored["meta"])
        expected = meta.pop("state_sha256", None)
        if expected is not None and state_digest(restored["state"]) != expected:
            raise CheckpointError(f"step {step}: the state's checksum does not match the one saved with it")
        template = like.replace(rng=jax.random.key_data(like.rng))
        state = flax.serialization.from_state_dict(template, restored["state"])
        state = state.replace(rng=jax.random.wrap_key_data(state.rng))
        return state, meta

    def restore_latest(self, like: GANState, allow_fresh_start: bool = False
                       ) -> tuple[GANState, dict[str, Any], int] | None:
        """Restores the newest intact checkpoint; None when there is none to restore.

        Unreadable checkpoints newer than the one restored are moved to `checkpoints_unreadable/`
        (so later saves and resumes do not meet them). When every checkpoint is unreadable this
        raises `CheckpointError` rather than start from scratch, unless `allow_fresh_start`, which
        moves them all aside.
        """
        failures = []
        for step in sorted(self.all_steps(), reverse=True):
            why = None
            try:
                state, meta = self.restore(step, like)
            except Exception as e:  # orbax, tensorstore and json report damage with many exception types
                why = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            if distributed.agree_max(why is not None):  # unreadable on any process: skipped by all
                failures.append((step, why or "unreadable on another process"))
                log.warning("Checkpoint step %d in %s is unreadable (%s).", step, self.directory, failures[-1][1])
                continue
            if failures:
                self._move_aside([s for s, _ in failures])
                log.warning("Resuming from step %d, the newest intact checkpoint; unreadable newer step(s) %s "
                            "were moved to %s.", step, ", ".join(str(s) for s, _ in failures), self.unreadable_dir)
            return state, meta, step
        if not failures:
            return None
        if not allow_fresh_start:
            listing = "; ".join(f"step {s}: {why}" for s, why in failures)
            raise CheckpointError(
                f"No checkpoint in {self.directory} can be restored ({listing}). Refusing to start from scratch. "
                "If the files are damaged, rerun with --allow_fresh_start to move them aside and train from step 0; "
                "if the code or config changed since they were written, go back to that version.")
        self._move_aside([s for s, _ in failures])
        log.warning("No intact checkpoint; moved %d unreadable one(s) to %s and starting from scratch "
                    "(--allow_fresh_start).", len(failures), self.unreadable_dir)
        return None

    @property
    def unreadable_dir(self) -> pathlib.Path:
        return self.directory.parent / "checkpoints_unreadable"

    def _move_aside(self, steps: list[int]) -> None:
        def move():  # process 0 alone; the others wait for it
            self.unreadable_dir.mkdir(exist_ok=True)
            for step in steps:
                target = self.unreadable_dir / str(step)
                if target.exists():
                    target = self.unreadable_dir / f"{step}.{len(list(self.unreadable_dir.iterdir()))}"
                shutil.move(str(self.directory / str(step)), str(target))

        distributed.on_primary(move, "checkpoints_aside")
        self.manager.reload()

    def close(self) -> None:
        self.manager.close()
