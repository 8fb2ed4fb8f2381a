"""Per-run values that move from a start to an end over training (R3GAN's cosine schedules).

A per-run value `X` with a sibling `X_end` (both in a plugin's hyperparameters, or `ema.half_life_images` and
its `_end`) moves from `X` to `X_end` along `schedule.kind` over the first `schedule.steps` generator steps
(0: the whole run) and holds `X_end` after; an `X_end` below 0 means `X` stays constant. The step applies the
rule to every such pair before any plugin reads its hyperparameters, so a plugin declares the pair and gets
the value of the current step.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

KINDS = ("cosine", "linear")
END = "_end"


def fraction(step, steps: int, kind: str):
    """How far along the schedule `step` is, in [0, 1]: cosine 0.5 (1 - cos(pi t)) or linear t, t = step / steps."""
    t = jnp.clip(jnp.asarray(step, jnp.float32) / max(steps, 1), 0.0, 1.0)
    if kind == "cosine":
        return 0.5 * (1.0 - jnp.cos(math.pi * t))
    if kind == "linear":
        return t
    raise ValueError(f"Unknown schedule kind {kind!r} (config key 'schedule.kind'); use {', '.join(KINDS)}.")


def interpolate(start, end, step, steps: int, kind: str):
    """`start` moved towards `end` by `fraction(step)`; `start` itself where `end` < 0."""
    moved = start + fraction(step, steps, kind) * (end - start)
    return jnp.where(jnp.asarray(end) < 0, start, moved)


def scheduled(tree: dict, step, steps: int, kind: str) -> dict:
    """`tree` (nested dicts of per-run values) with every value that has an `_end` sibling at its value for `step`."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out[key] = scheduled(value, step, steps, kind)
        elif key + END in tree:
            out[key] = interpolate(value, tree[key + END], step, steps, kind)
        else:
            out[key] = value
    return out


def total_steps(config) -> int:
    """The schedule's length in generator steps: `schedule.steps`, or the whole run when it is 0."""
    return config.schedule.steps or config.num_steps
