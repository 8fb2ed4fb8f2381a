"""A training directory read back: its resolved config, its networks and its checkpoints.

`gan-jax sample` and `gan-jax evaluate` both start here, so a run restores the same way
wherever it is read (conditional networks included).
"""

from __future__ import annotations

import json
import pathlib
from typing import Sequence

import flax.linen as nn
import ml_collections

from gan_jax import optim
from gan_jax.checkpoint import Checkpointer
from gan_jax.models import build_models
from gan_jax.state import GANState, create_state


class RunDirError(ValueError):
    """The directory is not a gan_jax run, or holds no checkpoint to read."""


def read_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
    """The config the run was trained with (`WORKDIR/config.json`)."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise RunDirError(f"{workdir} has no config.json: not a gan_jax run directory (give the --workdir "
                          "that `gan-jax train` wrote).")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


def template_state(config: ml_collections.ConfigDict, data_shape: Sequence[int], num_classes: int = 0
                   ) -> tuple[nn.Module, nn.Module, GANState]:
    """(generator, discriminator, a freshly initialised state of the run's structure to restore into)."""
    g_model, d_model = build_models(config.model, tuple(data_shape), num_classes=num_classes)
    like = create_state(config, g_model, d_model, tuple(data_shape), *optim.make_optimizers(config), num_classes)
    return g_model, d_model, like


def open_checkpoints(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> Checkpointer:
    """The run's checkpoints, read-only (nothing of the run is changed); errors if there are none."""
    folder = pathlib.Path(workdir) / "checkpoints"
    if not folder.is_dir():
        raise RunDirError(f"{workdir} has no checkpoints/ folder yet: train first (or wait for the first save).")
    checkpointer = Checkpointer(folder, config.keep_checkpoints, read_only=True)
    if not checkpointer.all_steps():
        checkpointer.close()
        raise RunDirError(f"{workdir} holds no checkpoint yet: train first (or wait for the first save).")
    return checkpointer
