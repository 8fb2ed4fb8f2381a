"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data").

Every D input, real and fake, goes through four groups of transformations, each applied to each image
independently with probability `multiplier * p`:

- pixel blitting: x-flip, rotation by a multiple of 90 degrees, integer translation (up to `xint_max` of the
  image size);
- general geometric: isotropic scaling (log2 std `scale_std`), rotation (up to `rotate_max` of a full turn,
  split into a rotation before and one after the anisotropic scaling so that either happens with probability
  `rotate * p`), anisotropic scaling (log2 std `aniso_std`), fractional translation (std `xfrac_std` of the
  image size);
- colour: brightness (std `brightness_std`), contrast (log2 std `contrast_std`), luma flip, hue rotation about
  the luma axis (up to `hue_max` of a full turn), saturation (log2 std `saturation_std`); hue and saturation
  need colour and are skipped on one-channel images, where the luma flip negates the image;
- cutout: one square of side `cutout_size` of the image, at a uniform centre, set to 0 (mid-grey).

The geometric transformations of an image compose into one 3x3 matrix mapping output pixel coordinates
(centred on the image) to input coordinates, applied in one resampling. Resampling is bilinear on the image
reflected once about its edge pixels (zero beyond), not StyleGAN2-ADA's 2x-oversampled sym6-wavelet filtering:
strong downscaling aliases a little more. Blits sample exactly at pixel centres, so x-flip, rotations by 90
degrees and integer translations move pixels exactly, and every transformation is exactly the identity at
p = 0. The colour transformations compose into one 4x4 matrix acting on (r, g, b, 1). Everything is linear in
the images: gradients (and the second-order ones of R1/R2) flow through it.

As the augmentation of every D input: `augment.ada.mode` = fixed (p = `augment.ada.p`) | schedule (p moves
from `p` to `p_end` along `schedule.kind`) | adaptive (ADA's controller: every `interval` D updates, p moves by
`batch * interval / speed_images` up when the mean sign of D's outputs on augmented reals over those updates is
above `target`, down when below, within [0, 1]). The multipliers default to StyleGAN2-ADA's "bgc" pipeline;
`R3GAN` holds R3GAN's.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.objectives.base import register_augment
from gan_jax.rng import stream

MODES = ("off", "fixed", "schedule", "adaptive")
BLIT = ("xflip", "rotate90", "xint")
GENERAL = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
MULTIPLIERS = BLIT + GENERAL + COLOR + ("cutout",)
STRENGTHS = ("xint_max", "scale_std", "rotate_max", "aniso_std", "xfrac_std", "brightness_std", "contrast_std",
             "hue_max", "saturation_std", "cutout_size")

DEFAULTS: dict[str, Any] = {
    "mode": "off",  # off | fixed | schedule | adaptive
    "p": 0.0,  # the probability multiplier (the start value under schedule and adaptive)
    "p_end": -1.0,  # schedule: p's value at the end of the schedule (-1 otherwise)
    "target": 0.6,  # adaptive: the mean sign of D on augmented reals that p is adjusted to hold
    "interval": 4,  # adaptive: D updates between adjustments
    "speed_images": 500_000.0,  # adaptive: real images seen for p to move by 1
    # Probability multipliers, StyleGAN2-ADA's "bgc".
    "xflip": 1.0, "rotate90": 1.0, "xint": 1.0,
    "scale": 1.0, "rotate": 1.0, "aniso": 1.0, "xfrac": 1.0,
    "brightness": 1.0, "contrast": 1.0, "lumaflip": 1.0, "hue": 1.0, "saturation": 1.0,
    "cutout": 0.0,
    # Strengths.
    "xint_max": 0.125,  # of the image size
    "scale_std": 0.2,  # log2
    "rotate_max": 1.0,  # of a full turn
    "aniso_std": 0.2,  # log2
    "xfrac_std": 0.125,  # of the image size
    "brightness_std": 0.2,
    "contrast_std": 0.5,  # log2
    "hue_max": 1.0,  # of a full turn
    "saturation_std": 1.0,  # log2
    "cutout_size": 0.5,  # of the image size
}

# R3GAN's multipliers (its train.py): every geometric one at 1, colour at 0.5, cutout on.
R3GAN: dict[str, float] = {
    "xflip": 1.0, "rotate90": 1.0, "xint": 1.0, "scale": 1.0, "rotate": 1.0, "aniso": 1.0, "xfrac": 1.0,
    "brightness": 0.5, "contrast": 0.5, "lumaflip": 0.5, "hue": 0.5, "saturation": 0.5, "cutout": 1.0,
}

_HIGHEST = jax.lax.Precision.HIGHEST  # matrix products in full float32 on every backend (no bf16/tf32 passes)


def _setting(settings: Mapping | None, key: str):
    return DEFAULTS[key] if settings is None else settings[key]


class _Draws:
    """One group's random numbers per image, drawn in two calls (compiling a draw is the costly part): fixed
    columns of uniforms in [0, 1) and of standard normals, so a transformation's numbers do not depend on
    which others are on."""

    def __init__(self, key: jax.Array, group: str, n: int, uniforms: int, normals: int = 0):
        self.n = n
        self.u = jax.random.uniform(stream(key, group, "uniform"), (n, uniforms))
        self.z = jax.random.normal(stream(key, group, "normal"), (n, normals)) if normals else None

    def coin(self, column: int, probability) -> jax.Array:
        """[n] booleans, each true with `probability` (a traced scalar: never true at 0)."""
        return self.u[:, column] < probability


# ----------------------------------------------------------------------------- 3x3 and 4x4 matrices per image


def _stack(rows) -> jax.Array:
    """[n, r, c] from r rows of c entries, each an [n] array or a number."""
    n = next(e.shape[0] for row in rows for e in row if isinstance(e, jax.Array))
    return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(e, jnp.float32), (n,)) for e in row], -1)
                      for row in rows], -2)


def _scale2d(sx, sy):
    return _stack([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def _rotate2d(cos, sin):
    return _stack([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])


def _translate2d(tx, ty):
    return _stack([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


def blit_matrices(key: jax.Array, n: int, height: int, width: int, p, settings: Mapping | None = None) -> jax.Array:
    """[n, 3, 3] output-to-input pixel maps (centred coordinates) of x-flip, rotation by k * 90 degrees and
    integer translation, each drawn for each image and applied with probability multiplier * p; the identity
    for a transformation whose multiplier is 0. Entries are integers, so blits sample at pixel centres."""
    s = lambda k: _setting(settings, k)  # noqa: E731
    d = _Draws(key, "blit", n, uniforms=7)
    m = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (n, 3, 3))
    if s("xflip") > 0:
        flip = jnp.where(d.coin(1, s("xflip") * p), jnp.floor(d.u[:, 0] * 2), 0.0)
        m = _matmul(m, _scale2d(1 - 2 * flip, 1))
    if s("rotate90") > 0:
        quarter = jnp.where(d.coin(3, s("rotate90") * p), jnp.floor(d.u[:, 2] * 4).astype(jnp.int32), 0)
        # cos and sin of k * 90 degrees from a table: exact zeros, unlike jnp.cos(pi / 2).
        m = _matmul(m, _rotate2d(jnp.array([1.0, 0, -1, 0])[quarter], jnp.array([0.0, 1, 0, -1])[quarter]))
    if s("xint") > 0:
        shift = jnp.where(d.coin(6, s("xint") * p)[:, None], (d.u[:, 4:6] * 2 - 1) * s("xint_max"), 0.0)
        m = _matmul(m, _translate2d(-jnp.round(shift[:, 0] * width), -jnp.round(shift[:, 1] * height)))
    return m


def general_matrices(key: jax.Array, n: int, height: int, width: int, p,
                     settings: Mapping | None = None) -> jax.Array:
    """[n, 3, 3] output-to-input pixel maps (centred coordinates) of isotropic scaling, rotation, anisotropic
    scaling, rotation and fractional translation, in that order from the input side, each drawn for each
    image and applied with probability multiplier * p (each rotation with 1 - sqrt(1 - rotate * p))."""
    s = lambda k: _setting(settings, k)  # noqa: E731
    d = _Draws(key, "general", n, uniforms=7, normals=4)
    m = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (n, 3, 3))
    if s("scale") > 0:
        factor = jnp.where(d.coin(0, s("scale") * p), jnp.exp2(d.z[:, 0] * s("scale_std")), 1.0)
        m = _matmul(m, _scale2d(1 / factor, 1 / factor))
    # Two rotations, each with p_rot, so that at least one happens with probability rotate * p.
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - s("rotate") * p, 0.0, 1.0))

    def rotation(value: int, coin: int):
        theta = jnp.where(d.coin(coin, p_rot), (d.u[:, value] * 2 - 1) * math.pi * s("rotate_max"), 0.0)
        return _rotate2d(jnp.cos(theta), jnp.sin(theta))

    if s("rotate") > 0:
        m = _matmul(m, rotation(1, 2))
    if s("aniso") > 0:
        factor = jnp.where(d.coin(3, s("aniso") * p), jnp.exp2(d.z[:, 1] * s("aniso_std")), 1.0)
        m = _matmul(m, _scale2d(1 / factor, factor))
    if s("rotate") > 0:
        m = _matmul(m, rotation(4, 5))
    if s("xfrac") > 0:
        shift = jnp.where(d.coin(6, s("xfrac") * p)[:, None], d.z[:, 2:4] * s("xfrac_std"), 0.0)
        m = _matmul(m, _translate2d(-shift[:, 0] * width, -shift[:, 1] * height))
    return m


def geometric_matrices(key: jax.Array, n: int, height: int, width: int, p,
                       settings: Mapping | None = None) -> jax.Array:
    """The blits, then the general transformations, of each image as one [n, 3, 3] output-to-input map."""
    return _matmul(blit_matrices(key, n, height, width, p, settings),
                   general_matrices(key, n, height, width, p, settings))


def _reflect(index: jax.Array, size: int) -> jax.Array:
    """Pixel indices reflected once about the edge pixels (d c b | a b c d | c b a), clipped beyond."""
    if size == 1:
        return jnp.zeros_like(index)
    index = jnp.abs(index)
    index = jnp.where(index > size - 1, 2 * (size - 1) - index, index)
    return jnp.clip(index, 0, size - 1)


def resample(x: jax.Array, matrices: jax.Array) -> jax.Array:
    """Images [N, H, W, C] resampled through per-image output-to-input maps [N, 3, 3].

    Output pixel (i, j) takes the bilinear interpolation of the input at (col, row) = M (j - cx, i - cy, 1)
    + (cx, cy), cx = (W - 1) / 2, cy = (H - 1) / 2, on the input reflected once about its edge pixels and
    zero beyond that. Integer coordinates read one pixel exactly. Linear in x.
    """
    n, h, w, c = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rows = (jnp.arange(h, dtype=jnp.float32) - cy)[None, :, None]
    cols = (jnp.arange(w, dtype=jnp.float32) - cx)[None, None, :]
    m = matrices.astype(jnp.float32)[:, :, :, None, None]
    # Elementwise rather than a matmul: exact coordinates on every backend.
    src_x = m[:, 0, 0] * cols + m[:, 0, 1] * rows + m[:, 0, 2] + cx
    src_y = m[:, 1, 0] * cols + m[:, 1, 1] * rows + m[:, 1, 2] + cy
    x0, y0 = jnp.floor(src_x), jnp.floor(src_y)
    fx, fy = (src_x - x0)[..., None], (src_y - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    flat = x.astype(jnp.float32).reshape(n, h * w, c)

    def corner(yi, xi):
        inside = (xi >= -(w - 1)) & (xi <= 2 * (w - 1)) & (yi >= -(h - 1)) & (yi <= 2 * (h - 1))
        index = (_reflect(yi, h) * w + _reflect(xi, w)).reshape(n, h * w, 1)
        values = jnp.take_along_axis(flat, index, axis=1, mode="clip").reshape(n, h, w, c)
        return jnp.where(inside[..., None], values, 0.0)

    out = ((1 - fx) * (1 - fy) * corner(y0, x0) + fx * (1 - fy) * corner(y0, x0 + 1)
           + (1 - fx) * fy * corner(y0 + 1, x0) + fx * fy * corner(y0 + 1, x0 + 1))
    return out.astype(x.dtype)


LUMA = tuple([1 / math.sqrt(3)] * 3)  # the unit luma axis in RGB


def _luma_outer() -> jax.Array:
    v = jnp.array(LUMA + (0.0,), jnp.float32)
    return jnp.outer(v, v)


def _rotate_about_luma(theta: jax.Array) -> jax.Array:
    """[n, 4, 4] rotations by theta about the luma axis (Rodrigues), homogeneous."""
    vx, vy, vz = LUMA
    c, s = jnp.cos(theta), jnp.sin(theta)
    cc = 1 - c
    return _stack([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                   [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                   [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                   [0, 0, 0, 1]])


def color_matrices(key: jax.Array, n: int, channels: int, p, settings: Mapping | None = None) -> jax.Array:
    """[n, 4, 4] colour maps of (r, g, b, 1): brightness, contrast, luma flip, hue, saturation in that order,
    each drawn for each image and applied with probability multiplier * p (hue and saturation only with
    colour, `channels` > 1); exactly the identity where none applies."""
    s = lambda k: _setting(settings, k)  # noqa: E731
    eye = jnp.eye(4, dtype=jnp.float32)
    m = jnp.broadcast_to(eye, (n, 4, 4))
    vv = _luma_outer()
    d = _Draws(key, "color", n, uniforms=7, normals=3)
    if s("brightness") > 0:
        b = jnp.where(d.coin(0, s("brightness") * p), d.z[:, 0] * s("brightness_std"), 0.0)
        m = _matmul(_stack([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]]), m)
    if s("contrast") > 0:
        c = jnp.where(d.coin(1, s("contrast") * p), jnp.exp2(d.z[:, 1] * s("contrast_std")), 1.0)
        m = _matmul(_stack([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]]), m)
    if s("lumaflip") > 0:
        flip = jnp.where(d.coin(3, s("lumaflip") * p), jnp.floor(d.u[:, 2] * 2), 0.0)
        m = _matmul(eye - 2 * vv * flip[:, None, None], m)  # Householder reflection of the luma axis
    if s("hue") > 0 and channels > 1:
        theta = jnp.where(d.coin(5, s("hue") * p), (d.u[:, 4] * 2 - 1) * math.pi * s("hue_max"), 0.0)
        m = _matmul(_rotate_about_luma(theta), m)
    if s("saturation") > 0 and channels > 1:
        sat = jnp.where(d.coin(6, s("saturation") * p), jnp.exp2(d.z[:, 2] * s("saturation_std")), 1.0)
        # vv' + (I - vv') sat, written as I + (I - vv')(sat - 1) so that sat = 1 is exactly I.
        m = _matmul(eye + (eye - vv) * (sat - 1)[:, None, None], m)
    return m


def apply_color(x: jax.Array, matrices: jax.Array) -> jax.Array:
    """Images [N, H, W, 3] through per-image maps [N, 4, 4] of (r, g, b, 1); one-channel images [N, H, W, 1]
    through the mean of the three output rows applied to (l, l, l, 1)."""
    c = x.shape[-1]
    m = matrices.astype(jnp.float32)[:, None, None]  # [N, 1, 1, 4, 4]
    xf = x.astype(jnp.float32)
    if c == 3:
        out = [m[..., i, 0] * xf[..., 0] + m[..., i, 1] * xf[..., 1] + m[..., i, 2] * xf[..., 2] + m[..., i, 3]
               for i in range(3)]
        return jnp.stack(out, -1).astype(x.dtype)
    if c == 1:
        gain = jnp.sum(m[..., :3, :3], axis=(-2, -1)) / 3
        offset = jnp.sum(m[..., :3, 3], axis=-1) / 3
        return (xf * gain[..., None] + offset[..., None]).astype(x.dtype)
    raise ConfigError(f"Config key 'augment.ada': the colour transformations need RGB or grey images, these have {c} "
                      "channels; set augment.ada.brightness, contrast, lumaflip, hue and saturation to 0.")


def cutout_params(key: jax.Array, n: int, p, settings: Mapping | None = None) -> tuple[jax.Array, jax.Array]:
    """(centres [n, 2] as (x, y) fractions of the image size, uniform in [0, 1); side lengths [n] as fractions:
    `cutout_size` with probability cutout * p, else 0)."""
    d = _Draws(key, "cutout", n, uniforms=3)
    size = jnp.where(d.coin(2, _setting(settings, "cutout") * p), _setting(settings, "cutout_size"), 0.0)
    return d.u[:, :2], size


def apply_cutout(x: jax.Array, centre: jax.Array, size: jax.Array) -> jax.Array:
    """Images [N, H, W, C] with the pixels whose centres lie strictly inside each image's square set to 0."""
    n, h, w, _ = x.shape
    cols = (jnp.arange(w, dtype=jnp.float32) + 0.5) / w
    rows = (jnp.arange(h, dtype=jnp.float32) + 0.5) / h
    half = (size / 2)[:, None]
    inside_x = jnp.abs(cols[None, :] - centre[:, 0:1]) < half  # [n, w]
    inside_y = jnp.abs(rows[None, :] - centre[:, 1:2]) < half  # [n, h]
    inside = inside_y[:, :, None, None] & inside_x[:, None, :, None]
    return jnp.where(inside, jnp.zeros((), x.dtype), x)


# ----------------------------------------------------------------------------- the groups and the pipeline


def _check_images(x: jax.Array, settings: Mapping | None) -> None:
    if x.ndim != 4:
        raise ConfigError(f"Config key 'augment.ada.mode': ADA augments images [N, H, W, C], but D's inputs have "
                          f"shape {tuple(x.shape)}; set augment.ada.mode='off' for this data.")
    if _setting(settings, "rotate90") > 0 and x.shape[1] != x.shape[2]:
        raise ConfigError(f"Config key 'augment.ada.rotate90': rotations by 90 degrees need square images, these "
                          f"are {x.shape[1]}x{x.shape[2]}; set augment.ada.rotate90=0.")


def blit(key: jax.Array, x: jax.Array, p, settings: Mapping | None = None) -> jax.Array:
    """Pixel blitting (x-flip, rotation by k * 90 degrees, integer translation): moves pixels exactly."""
    _check_images(x, settings)
    n, h, w, _ = x.shape
    return resample(x, blit_matrices(key, n, h, w, p, settings))


def geometric(key: jax.Array, x: jax.Array, p, settings: Mapping | None = None) -> jax.Array:
    """General geometric transformations (scaling, rotation, anisotropic scaling, fractional translation)."""
    _check_images(x, settings)
    n, h, w, _ = x.shape
    return resample(x, general_matrices(key, n, h, w, p, settings))


def color(key: jax.Array, x: jax.Array, p, settings: Mapping | None = None) -> jax.Array:
    """Colour transformations (brightness, contrast, luma flip, hue, saturation)."""
    _check_images(x, settings)
    return apply_color(x, color_matrices(key, x.shape[0], x.shape[-1], p, settings))


def cutout(key: jax.Array, x: jax.Array, p, settings: Mapping | None = None) -> jax.Array:
    """Cutout: one square per image, with probability cutout * p, set to 0."""
    _check_images(x, settings)
    return apply_cutout(x, *cutout_params(key, x.shape[0], p, settings))


def augment(key: jax.Array, x: jax.Array, p, settings: Mapping | None = None) -> jax.Array:
    """The whole pipeline on images [N, H, W, C] in [-1, 1]: blits and general geometric transformations as one
    resampling, then colour, then cutout (the same draws as `blit`, `geometric`, `color` and `cutout` with this
    key). Groups whose multipliers are all 0 are skipped."""
    _check_images(x, settings)
    n, h, w, c = x.shape
    s = lambda k: _setting(settings, k)  # noqa: E731
    if any(s(k) > 0 for k in BLIT + GENERAL):
        x = resample(x, geometric_matrices(key, n, h, w, p, settings))
    if any(s(k) > 0 for k in (COLOR if c > 1 else ("brightness", "contrast", "lumaflip"))):
        x = apply_color(x, color_matrices(key, n, c, p, settings))
    if s("cutout") > 0:
        x = apply_cutout(x, *cutout_params(key, n, p, settings))
    return x


# ----------------------------------------------------------------------------- the plugin and its controller


def init_state(config) -> dict:
    """{"p": the probability in use, "sign_sum": the sum of D's signs on reals since the last adjustment (an
    integer), "count": the D updates since then}."""
    return {"p": jnp.float32(config.augment.ada.p), "sign_sum": jnp.float32(0.0), "count": jnp.int32(0)}


def observe(settings, hparams, state, real_logits, mean, update, *, total, batch):
    """The state after a D update. Adaptive: accumulates the signs of D on the augmented reals over the global
    batch (`total`) and, every `interval` updates, moves p by sign(mean sign - target) * batch * interval /
    speed_images within [0, 1] (integer arithmetic up to the comparison, so that every parallel mode decides
    alike). Other modes: records the p in use (the schedule's value under "schedule")."""
    if settings.mode != "adaptive":
        return {**state, "p": jnp.asarray(hparams["p"], jnp.float32)}
    logits = real_logits.astype(jnp.float32)
    sign_sum = state["sign_sum"] + total(jnp.sign(logits))  # a sum of +-1 and 0: exact in float32
    count = state["count"] + 1
    due = count >= settings.interval
    # mean sign > target  <=>  sign_sum > target * outputs * count; compared, not subtracted, so that no fused
    # multiply-add changes the rounding of the threshold from one program to another.
    threshold = jnp.float32(settings.target) * (total(jnp.ones_like(logits)) * count.astype(jnp.float32))
    direction = jnp.where(sign_sum > threshold, 1.0, jnp.where(sign_sum < threshold, -1.0, 0.0))
    move = jnp.float32(batch * settings.interval) / jnp.float32(settings.speed_images)
    adjusted = jnp.clip(state["p"] + direction * move, 0.0, 1.0)
    return {**state, "p": jnp.where(due, adjusted, state["p"]), "sign_sum": jnp.where(due, 0.0, sign_sum),
            "count": jnp.where(due, 0, count)}


def _apply(key, x, settings, hparams, state):
    p = state["p"] if settings.mode == "adaptive" else hparams["p"]
    return augment(key, x, p, settings)


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"Config key 'augment.ada.{key}' {message}")


def _validate(settings, config) -> None:
    _require(settings.mode in MODES, "mode", f"must be one of {', '.join(MODES)}, got {settings.mode!r}.")
    if settings.mode == "off":
        return
    data = config.data
    _require(not data.source.startswith("synthetic:") and data.get("tokenizer", "none") == "none", "mode",
             f"is {settings.mode!r}, but ADA augments images and data.source={data.source!r} gives "
             f"{'text' if data.get('tokenizer', 'none') != 'none' or data.source == 'synthetic:oracle' else 'points'};"
             " set augment.ada.mode='off'.")
    _require(0 <= settings.p <= 1, "p", f"must be in [0, 1], got {settings.p}.")
    if settings.mode == "schedule":
        _require(0 <= settings.p_end <= 1, "p_end", f"must be in [0, 1] under mode='schedule', got {settings.p_end}.")
    else:
        _require(settings.p_end < 0, "p_end", f"is {settings.p_end}, but only mode='schedule' moves p to p_end; "
                 "set augment.ada.mode='schedule' or p_end=-1.")
    if settings.mode == "adaptive":
        _require(-1 < settings.target < 1, "target", f"must be in (-1, 1) (a mean sign), got {settings.target}.")
        _require(isinstance(settings.interval, int) and settings.interval >= 1, "interval",
                 f"must be an integer >= 1 (D updates), got {settings.interval!r}.")
        _require(settings.speed_images > 0, "speed_images", f"must be > 0, got {settings.speed_images}.")
    for key in MULTIPLIERS + STRENGTHS:
        _require(settings[key] >= 0, key, f"must be >= 0, got {settings[key]}.")
    _require(settings.cutout_size <= 1, "cutout_size", f"must be in [0, 1] (of the image size), got "
             f"{settings.cutout_size}.")
    _require(any(settings[key] > 0 for key in MULTIPLIERS), "mode",
             f"is {settings.mode!r} but every probability multiplier ({', '.join(MULTIPLIERS)}) is 0; set one > 0 "
             "or augment.ada.mode='off'.")


register_augment("ada", apply=_apply, active=lambda config: config.augment.ada.mode != "off", config=DEFAULTS,
                 hparams=("p", "p_end"), validate=_validate, init_state=init_state, observe=observe,
                 metrics=lambda state: {"ada_p": state["p"]})
