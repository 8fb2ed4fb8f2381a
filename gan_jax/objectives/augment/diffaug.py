"""Differentiable augmentation (DiffAugment, Zhao et al. 2020), as pure functions of (key, images).

Images are NHWC in [-1, 1]. Every augmentation is differentiable in the images, so the
generator's gradient flows through the augmentation of its samples. Given the same key, a
policy applies exactly the same transformation to a batch; the step uses one key for the
real batch and another for the fake batch, as DiffAugment does.

As the augmentation pipeline of every D input: `augment.diffaug.policy="color,translation,cutout"`
(on when the policy is not empty).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.objectives.base import register_augment

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]


def brightness(key: jax.Array, x: jax.Array) -> jax.Array:
    """Adds one offset in [-0.5, 0.5) per image."""
    return x + (jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype) - 0.5)


def saturation(key: jax.Array, x: jax.Array) -> jax.Array:
    """Scales each pixel's distance from its channel mean by a factor in [0, 2) per image."""
    mean = jnp.mean(x, axis=3, keepdims=True)
    return (x - mean) * (jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype) * 2) + mean


def contrast(key: jax.Array, x: jax.Array) -> jax.Array:
    """Scales each image's distance from its mean by a factor in [0.5, 1.5)."""
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype) + 0.5) + mean


def color(key: jax.Array, x: jax.Array) -> jax.Array:
    k1, k2, k3 = jax.random.split(key, 3)
    return contrast(k3, saturation(k2, brightness(k1, x)))


def translation(key: jax.Array, x: jax.Array, ratio: float = 0.125) -> jax.Array:
    """Shifts each image by up to `ratio` of its size in each direction, filling with zeros."""
    n, h, w, _ = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ky, kx = jax.random.split(key)
    dy = jax.random.randint(ky, (n,), -sh, sh + 1)
    dx = jax.random.randint(kx, (n,), -sw, sw + 1)
    padded = jnp.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)))

    def shift(img, oy, ox):
        # Output pixel (i, j) reads input (i - oy, j - ox): padded (i - oy + sh, j - ox + sw).
        return jax.lax.dynamic_slice(img, (sh - oy, sw - ox, 0), (h, w, img.shape[-1]))

    return jax.vmap(shift)(padded, dy, dx)


def cutout(key: jax.Array, x: jax.Array, ratio: float = 0.5) -> jax.Array:
    """Zeroes one square of `ratio` of the image size per image, at a random centre."""
    n, h, w, _ = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ky, kx = jax.random.split(key)
    # Square [cy - ch//2, cy - ch//2 + ch) with the centre anywhere such that it may be clipped.
    cy = jax.random.randint(ky, (n, 1, 1), 0, h + (1 - ch % 2))
    cx = jax.random.randint(kx, (n, 1, 1), 0, w + (1 - cw % 2))
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    inside = ((rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch) & (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw))
    return x * (1 - inside[..., None].astype(x.dtype))


def flip(key: jax.Array, x: jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability 1/2."""
    do = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1))
    return jnp.where(do, x[:, :, ::-1], x)


AUGMENTATIONS: dict[str, Augmentation] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
    "flip": flip,
}


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation,cutout' (or '+' separated) -> names; '' -> no augmentation."""
    names = tuple(filter(None, (part.strip() for part in text.replace("+", ",").split(","))))
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(AUGMENTATIONS)} (comma- or '+'-separated).")
    return names


def apply_policy(policy: tuple[str, ...], key: jax.Array, x: jax.Array) -> jax.Array:
    """Applies the policy's augmentations in order, each with its own key derived from `key`."""
    for i, name in enumerate(policy):
        x = AUGMENTATIONS[name](jax.random.fold_in(key, i), x)
    return x


def _validate(settings, config):
    try:
        parse_policy(settings.policy)
    except ValueError as e:
        raise ConfigError(f"Config key 'augment.diffaug.policy': {e}") from None


register_augment("diffaug", apply=lambda key, x, settings, hparams, state: apply_policy(parse_policy(settings.policy),
                                                                                          key, x),
                 active=lambda config: bool(parse_policy(config.augment.diffaug.policy)),
                 config={"policy": ""}, validate=_validate)
