"""Orbax checkpoints of the whole GANState plus run metadata (data position, ...)."""

from __future__ import annotations

import pathlib
from typing import Any

import flax.serialization
import jax
import orbax.checkpoint as ocp

from gan_jax.state import GANState


def _to_saveable(state: GANState) -> dict:
    # Typed PRNG keys are stored as their raw key data.
    return flax.serialization.to_state_dict(state.replace(rng=jax.random.key_data(state.rng)))


class Checkpointer:
    """Saves and restores `(GANState, metadata)` under `WORKDIR/checkpoints/<step>/`."""

    def __init__(self, directory: str | pathlib.Path, keep: int):
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: GANState, meta: dict[str, Any]) -> None:
        tree = jax.device_get(_to_saveable(state))
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                          meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, like: GANState) -> tuple[GANState, dict[str, Any]]:
        """Restores step `step` into the structure (and dtypes) of `like`."""
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, jax.device_get(_to_saveable(like)))
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                                        meta=ocp.args.JsonRestore()))
        template = like.replace(rng=jax.random.key_data(like.rng))
        state = flax.serialization.from_state_dict(template, restored["state"])
        state = state.replace(rng=jax.random.wrap_key_data(state.rng))
        return state, dict(restored["meta"])

    def close(self) -> None:
        self.manager.close()
