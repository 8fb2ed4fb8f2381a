"""A training directory: its resolved config, its networks and its checkpoints, written and read back.

The loop writes `config.json` (and refuses a different config on resume); `gan-jax sample` and
`gan-jax evaluate` read the run back from it, so a run restores the same way wherever it is read
(conditional networks included).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Sequence

import ml_collections

from gan_jax import config as config_lib
from gan_jax.errors import GanJaxError
from gan_jax.loop import resume
from gan_jax.loop.checkpoint import Checkpointer

log = logging.getLogger("gan_jax")


class RunDirError(GanJaxError, ValueError):
    """The directory is not a gan_jax run, or holds no checkpoint to read."""


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Writes via a temporary file and a rename, so a kill never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_config(workdir: pathlib.Path, config: ml_collections.ConfigDict, allow_change: Sequence[str] = (), *,
                 data_shape: Sequence[int], num_classes: int = 0) -> list[resume.Change]:
    """`WORKDIR/config.json`; returns how `config` differs from the config already there.

    A workdir that holds a run with another config is refused (naming each differing key) unless those keys
    are in `allow_change`; a change a restored state cannot take is refused whatever `allow_change` says
    (`loop.resume.check`; `data_shape` and `num_classes` describe the run's data for that check)."""
    path = pathlib.Path(workdir) / "config.json"
    found = []
    if path.exists():
        found = resume.check(workdir, json.loads(path.read_text()), config, allow_change, data_shape, num_classes)
        if not found:
            return []
    write_atomic(path, json.dumps(config_lib.to_dict(config), indent=2, sort_keys=True) + "\n")
    return found


def read_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
    """The config the run was trained with (`WORKDIR/config.json`), keys added since at their defaults."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise RunDirError(f"{workdir} has no config.json: not a gan_jax run directory (give the --workdir "
                          "that `gan-jax train` wrote).")
    return ml_collections.ConfigDict(_over(config_lib.to_dict(config_lib.default_config()), json.loads(path.read_text())))


def _over(defaults: dict, stored: dict) -> dict:
    """`stored` with the keys it lacks (a run written by an earlier version) taken from `defaults`."""
    out = dict(defaults)
    for key, value in stored.items():
        out[key] = _over(defaults[key], value) if isinstance(value, dict) and isinstance(defaults.get(key), dict) \
            else value
    return out


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


def select_steps(available: list[int], checkpoint: str) -> list[int]:
    """'latest' | 'all' | a step number -> the checkpoint steps to evaluate."""
    if not available:
        raise RunDirError("the run has no checkpoint yet.")
    if checkpoint == "latest":
        return [max(available)]
    if checkpoint == "all":
        return sorted(available)
    try:
        step = int(checkpoint)
    except ValueError:
        raise RunDirError(f"--checkpoint must be latest, all or a step number, got {checkpoint!r}.") from None
    if step not in available:
        raise RunDirError(f"no checkpoint at step {step}; available: {', '.join(map(str, sorted(available)))}.")
    return [step]
