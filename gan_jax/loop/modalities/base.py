"""Modalities: what is particular to 2-D points, images and text, in one plugin each.

A modality owns what the rest of gan_jax would otherwise switch on the data kind for: the periodic
evaluation during training (pictures and the metrics it computes by default), the frame of the training
animation, how `gan-jax sample` writes samples, the lines the final report prints, what a run does before
its first step, and whether its generator's output is checked against an example and whether its runs can
be stacked into a vmap group. `modality(kind)` looks one up by the data spec's kind.
"""

from __future__ import annotations

import pathlib
from typing import Any, ClassVar

import numpy as np

from gan_jax.errors import GanJaxError


class Modality:
    kind: ClassVar[str] = ""
    checks_sample_shape: ClassVar[bool] = True  # the generator's output is traced against one example
    stackable: ClassVar[bool] = True  # runs can train as one vmap group
    animated: ClassVar[bool] = False  # `frame` draws the training animation

    def evaluate(self, blueprint, state, config, workdir: pathlib.Path, step: int, writer) -> dict[str, float]:
        """The periodic evaluation: pictures under `workdir/samples` (also sent to `writer`), and the metrics,
        as {"eval/NAME": value}."""
        raise NotImplementedError

    def frame(self, blueprint, config, state) -> np.ndarray | None:
        """One uint8 [H, W, 3] frame of the training animation (None: no animation)."""
        return None

    def write_samples(self, blueprint, state, config, num: int, out: pathlib.Path, fmt: str, use_ema: bool,
                      key, truncation: float | None = None) -> pathlib.Path:
        """`gan-jax sample`: `num` samples written under `out` (latents truncated at `truncation` when
        given); returns the file or folder."""
        raise NotImplementedError

    def report(self, config, metrics: dict[str, float]) -> list[str]:
        """The final report's lines for these metrics."""
        shown = {k: v for k, v in metrics.items() if k.startswith("eval/")}
        return ["  ".join(f"{k} {v:.4g}" for k, v in shown.items())] if shown else []

    def before_training(self, blueprint, state, iterator, workdir: pathlib.Path, fresh: bool, writer,
                        primary: bool) -> Any:
        """What a run does before its first step (`fresh`: no checkpoint yet); returns the state to train."""
        return state


MODALITIES: dict[str, Modality] = {}


def register_modality(cls: type[Modality]) -> type[Modality]:
    """Class decorator: the modality of data kind `cls.kind`."""
    MODALITIES[cls.kind] = cls()
    return cls


def modality(kind: str) -> Modality:
    if kind not in MODALITIES:
        raise GanJaxError(f"No modality for data of kind {kind!r}; known: {', '.join(sorted(MODALITIES))}.")
    return MODALITIES[kind]
