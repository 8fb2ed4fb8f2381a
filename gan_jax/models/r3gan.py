"""R3GAN's networks, "config E" of Huang et al. 2024 ("The GAN is dead; long live the GAN!").

Both networks are stacks of stages, one per resolution 4x4, 8x8, ... Each stage holds residual
blocks x + conv1x1(lrelu(conv3x3_grouped(lrelu(conv1x1(x) + b1)) + b2)) that expand the C channels
to `expansion` * C inside, with `cardinality` groups in the 3x3 conv and leaky ReLU 0.2 after a
learned bias; there is no normalisation layer. The convolutions have no bias and are initialised
N(0, gain^2 / fan_in): gain 1 for plain linear layers; in a block, sqrt(2 / (1 + 0.2^2)) *
L^(-1/4) for the first two convs (L = the blocks of the whole network, so that the sum of L
residual branches keeps its variance) and 0 for the last, so that a fresh block is the identity.

G: z (with a class embedding concatenated) -> a learned 4x4 basis scaled channel-wise by a linear
map of it -> blocks; each later stage changes the channels with a 1x1 conv (when they differ),
up-samples 2x through the [1, 2, 1] low-pass filter, then runs its blocks; a 1x1 conv makes
the image (no output non-linearity). D mirrors it: a 1x1 conv from the image; each stage runs
its blocks, then down-samples through the filter and changes the channels with a 1x1 conv; the
4x4 stage ends in a depthwise 4x4 basis and a linear layer. Conditional D projects that
linear layer's output onto the class embedding.

Config (`model.r3gan.*`): `widths`, `blocks`, `cardinality` are comma-separated integers, one per
stage from the 4x4 stage up (D runs them in reverse); `blocks` and `cardinality` may be one
number for every stage. `bf16_stages` stages of highest resolution compute in bfloat16 (the
parameters stay float32). `base_side` is the side of the first stage and of both bases, 4 as in
R3GAN: 7 builds 7x7, 14x14, 28x28 networks for MNIST's own size (not in the paper). Images whose
side is smaller than the last stage's (28x28 MNIST on a 32x32 network) are padded with -1 (black)
before D, and G's output is cropped to their size.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError
from gan_jax.models import register_discriminator, register_generator

NEGATIVE_SLOPE = 0.2
# The leaky ReLU's variance-preserving gain, sqrt(2 / (1 + slope^2)).
ACTIVATION_GAIN = math.sqrt(2.0 / (1.0 + NEGATIVE_SLOPE**2))
RESAMPLING_FILTER = (1, 2, 1)
PAD_VALUE = -1.0  # what D's input is padded with up to the network's resolution: black

# `model.r3gan` defaults: the CIFAR-10 preset of R3GAN's train.py.
CONFIG = {
    "widths": "768,768,768,768",  # channels per stage, from the 4x4 stage up
    "blocks": "2",  # residual blocks per stage (one number for all, or one per stage)
    "cardinality": "96",  # groups of each block's 3x3 conv, per stage
    "expansion": 2,  # channels inside a block / its input channels
    "g_embed_dim": 0,  # G's class embedding, concatenated to z; 0: model.latent_dim
    "d_embed_dim": 0,  # D's class embedding (and its last linear layer's outputs); 0: the 4x4 stage's width
    "bf16_stages": 0,  # stages of highest resolution that compute in bfloat16
    "base_side": 4,  # side of the first stage's maps and of G's and D's bases (7: 7x7, 14x14, 28x28 for MNIST)
}


def msr_init(gain: float, fan_in: int | None = None):
    """N(0, (gain / sqrt(fan_in))^2); `fan_in` defaults to the product of all but the last axis
    (a kernel [kh, kw, in / groups, out] or [in, out]); gain 0 gives zeros."""

    def init(key, shape, dtype=jnp.float32):
        if gain == 0:
            return jnp.zeros(shape, dtype)
        fan = fan_in if fan_in is not None else math.prod(shape[:-1])
        return (gain / math.sqrt(fan)) * jax.random.normal(key, shape, dtype)

    return init


def lowpass_taps(weights: Sequence[float] = RESAMPLING_FILTER) -> np.ndarray:
    """The 1-D resampling filter: `weights` convolved with [1, 1], normalised to sum 1 ([1, 3, 3, 1] / 8)."""
    taps = np.convolve(np.asarray(weights, np.float64), [1.0, 1.0])
    return taps / taps.sum()


def _upsample_axis(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
    """2x along `axis`: zeros between the samples (and after the last), then the filter with gain 2."""
    n, fw = x.shape[axis], len(taps)
    spread = jnp.stack([x, jnp.zeros_like(x)], axis=axis + 1).reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])
    pad = [(0, 0)] * x.ndim
    pad[axis] = ((fw + 1) // 2, (fw - 2) // 2)
    spread = jnp.pad(spread, pad)
    flipped = (2.0 * taps[::-1]).tolist()
    return sum(w * jax.lax.slice_in_dim(spread, t, t + 2 * n, axis=axis) for t, w in enumerate(flipped))


def _downsample_axis(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
    """1/2 along `axis`: the filter over the zero-padded signal, every second output kept."""
    n, fw = x.shape[axis], len(taps)
    pad = [(0, 0)] * x.ndim
    pad[axis] = ((fw - 1) // 2, (fw - 2) // 2)
    padded = jnp.pad(x, pad)
    m = n // 2
    flipped = taps[::-1].tolist()
    return sum(w * jax.lax.slice_in_dim(padded, t, t + 2 * m - 1, stride=2, axis=axis) for t, w in enumerate(flipped))


def upsample2x(x: jax.Array, weights: Sequence[float] = RESAMPLING_FILTER) -> jax.Array:
    """NHWC 2x up-sampling through the separable low-pass filter of `weights` (zero padding outside)."""
    taps = lowpass_taps(weights)
    return _upsample_axis(_upsample_axis(x, taps, 1), taps, 2).astype(x.dtype)


def downsample2x(x: jax.Array, weights: Sequence[float] = RESAMPLING_FILTER) -> jax.Array:
    """NHWC 2x down-sampling through the separable low-pass filter of `weights` (zero padding outside)."""
    taps = lowpass_taps(weights)
    return _downsample_axis(_downsample_axis(x, taps, 1), taps, 2).astype(x.dtype)


def grouped_conv(x: jax.Array, kernel: jax.Array, groups: int, impl: str = "auto") -> jax.Array:
    """NHWC convolution, SAME padding, of a kernel [kh, kw, in / groups, out] (output channel o in
    group o // (out / groups), as in PyTorch and XLA).

    impl "native" is XLA's grouped convolution; "split" runs one dense convolution per group and
    concatenates them, which XLA's CPU backend computes several times faster; "auto" picks
    "split" on the CPU and "native" elsewhere.
    """
    if impl == "auto":
        impl = "split" if groups > 1 and jax.default_backend() == "cpu" else "native"
    dims = ("NHWC", "HWIO", "NHWC")
    if impl == "native" or groups == 1:
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=dims,
                                            feature_group_count=groups)
    if impl != "split":
        raise ValueError(f"Unknown grouped convolution {impl!r}; use auto, native or split.")
    c_in, c_out = kernel.shape[2], kernel.shape[3] // groups
    return jnp.concatenate([
        jax.lax.conv_general_dilated(x[..., g * c_in:(g + 1) * c_in], kernel[..., g * c_out:(g + 1) * c_out],
                                     (1, 1), "SAME", dimension_numbers=dims)
        for g in range(groups)], axis=-1)


class Conv(nn.Module):
    """Bias-free NHWC convolution, SAME padding, MSR-initialised with `gain`; 1x1 ones are matmuls."""

    features: int
    kernel_size: int = 1
    groups: int = 1
    gain: float = 1.0
    impl: str = "auto"  # grouped convolutions: see grouped_conv

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        if x.shape[-1] % self.groups or self.features % self.groups:
            raise ValueError(f"{x.shape[-1]} -> {self.features} channels do not split into {self.groups} groups.")
        kernel = self.param("kernel", msr_init(self.gain), (k, k, x.shape[-1] // self.groups, self.features))
        kernel = kernel.astype(x.dtype)
        if k == 1 and self.groups == 1:
            return x @ kernel[0, 0]
        return grouped_conv(x, kernel, self.groups, self.impl)


class BiasedActivation(nn.Module):
    """Leaky ReLU 0.2 after a learned per-channel bias (zero-initialised)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return nn.leaky_relu(x + bias.astype(x.dtype), NEGATIVE_SLOPE)


def block_gain(total_blocks: int) -> float:
    """The init gain of a block's first two convs: the activation gain times L^(-1/4) (three linear
    layers per residual branch, so L^(-1 / (2 * 3 - 2)))."""
    return ACTIVATION_GAIN * total_blocks ** (-1.0 / 4.0)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(conv3x3_grouped(act(conv1x1(x))))); the last conv starts at zero."""

    cardinality: int
    expansion: int
    total_blocks: int  # L, the network's number of blocks, which scales the init
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        expanded = channels * self.expansion
        gain = block_gain(self.total_blocks)
        h = Conv(expanded, gain=gain, name="expand")(x)
        h = BiasedActivation(name="act_1")(h)
        h = Conv(expanded, self.kernel_size, groups=self.cardinality, gain=gain, name="grouped")(h)
        h = BiasedActivation(name="act_2")(h)
        h = Conv(channels, gain=0.0, name="project")(h)
        return x + h


class GenerativeBasis(nn.Module):
    """[B, D] -> [B, S, S, C]: a learned SxSxC basis (N(0, 1); S = `side`, R3GAN's 4) scaled channel-wise by a
    linear map."""

    features: int
    side: int = 4

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        basis = self.param("basis", nn.initializers.normal(1.0), (self.side, self.side, self.features))
        kernel = self.param("kernel", msr_init(1.0), (z.shape[-1], self.features))
        scale = z @ kernel.astype(z.dtype)
        return basis.astype(z.dtype)[None] * scale[:, None, None, :]


class DiscriminativeBasis(nn.Module):
    """[B, S, S, C] -> [B, features]: a depthwise SxS conv (S = `side`, R3GAN's 4; one weight per position and
    channel, fan-in S^2) to [B, C], then a bias-free linear layer."""

    features: int
    side: int = 4

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = self.side
        if x.shape[1:3] != (s, s):
            raise ValueError(f"the discriminative basis takes {s}x{s} maps, got {x.shape[1]}x{x.shape[2]}.")
        basis = self.param("basis", msr_init(1.0, fan_in=s * s), (s, s, x.shape[-1]))
        h = jnp.einsum("bhwc,hwc->bc", x, basis.astype(x.dtype))
        kernel = self.param("kernel", msr_init(1.0), (x.shape[-1], self.features))
        return h @ kernel.astype(x.dtype)


class ClassEmbedding(nn.Module):
    """Labels [B] -> [B, features]: R3GAN's bias-free linear layer on one-hot labels, i.e. a table
    N(0, gain^2 / num_classes)."""

    num_classes: int
    features: int
    gain: float = 1.0

    @nn.compact
    def __call__(self, y: jax.Array) -> jax.Array:
        table = self.param("embedding", msr_init(self.gain), (self.num_classes, self.features))
        return table[y]


def _stage_dtype(index: int, num_stages: int, bf16_stages: int, high_res_last: bool, base):
    """bfloat16 for the `bf16_stages` stages of highest resolution, else the network's input dtype."""
    position = index if high_res_last else num_stages - 1 - index  # 0: the 4x4 stage
    return jnp.bfloat16 if position >= num_stages - bf16_stages else base


def network_resolution(num_stages: int, base_side: int = 4) -> int:
    return base_side * 2 ** (num_stages - 1)


def _check_side(height: int, width: int, num_stages: int, base_side: int = 4) -> int:
    """The network's resolution for square images of `height` pixels (equal, or larger by an even margin)."""
    res = network_resolution(num_stages, base_side)
    side = height
    if height != width:
        raise ConfigError(f"the R3GAN networks make square images; the data's are {height}x{width}: set "
                          "data.resolution (with data.crop=center) to make them square.")
    if side > res or (res - side) % 2:
        fits = [s for s in range(1, 9) if network_resolution(s, base_side) >= side]
        raise ConfigError(f"model.r3gan.widths has {num_stages} stages, a {res}x{res} network, which cannot make "
                          f"{side}x{side} images (the data's side must be at most the network's and differ by an "
                          f"even number of pixels); give model.r3gan.widths {fits[0] if fits else 'more'} stages "
                          "or resize the data (data.resolution).")
    return res


class R3GANGenerator(nn.Module):
    """z [B, latent] (and labels y [B] when conditional) -> images [B, H, W, C], unbounded, trained on [-1, 1]."""

    output_shape: Sequence[int]  # (H, W, C)
    widths: Sequence[int] = (768, 768, 768, 768)
    blocks: Sequence[int] = (2, 2, 2, 2)
    cardinality: Sequence[int] = (96, 96, 96, 96)
    expansion: int = 2
    num_classes: int = 0
    embed_dim: int = 64
    bf16_stages: int = 0
    base_side: int = 4

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, train: bool = True) -> jax.Array:
        h_out, w_out, c_out = self.output_shape
        n = len(self.widths)
        res = _check_side(h_out, w_out, n, self.base_side)
        base = z.dtype
        total = sum(self.blocks)
        if self.num_classes:
            if y is None:
                raise ValueError("this R3GAN generator is class-conditional: pass labels y.")
            z = jnp.concatenate([z, ClassEmbedding(self.num_classes, self.embed_dim, name="embed")(y).astype(base)],
                                axis=-1)
        h = z
        for i, width in enumerate(self.widths):
            h = h.astype(_stage_dtype(i, n, self.bf16_stages, True, base))
            if i == 0:
                h = GenerativeBasis(width, self.base_side, name="basis")(h)
            else:
                if h.shape[-1] != width:
                    h = Conv(width, name=f"stage_{i}_channels")(h)
                h = upsample2x(h)
            for j in range(self.blocks[i]):
                h = ResidualBlock(self.cardinality[i], self.expansion, total, name=f"stage_{i}_block_{j}")(h)
        out = Conv(c_out, name="to_image")(h).astype(base)
        if h_out != res:
            top = (res - h_out) // 2
            out = out[:, top:top + h_out, top:top + h_out]
        return out


class R3GANDiscriminator(nn.Module):
    """images [B, H, W, C] (and labels y [B] when conditional) -> logits [B].

    `widths`, `blocks`, `cardinality` are given from the 4x4 stage up, as for G; D runs them from
    the highest resolution down.
    """

    widths: Sequence[int] = (768, 768, 768, 768)
    blocks: Sequence[int] = (2, 2, 2, 2)
    cardinality: Sequence[int] = (96, 96, 96, 96)
    expansion: int = 2
    num_classes: int = 0
    embed_dim: int = 768
    bf16_stages: int = 0
    base_side: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, train: bool = True) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"the R3GAN discriminator takes images [B, H, W, C], got shape {x.shape}.")
        n = len(self.widths)
        res = _check_side(x.shape[1], x.shape[2], n, self.base_side)
        if x.shape[1] != res:
            margin = (res - x.shape[1]) // 2
            x = jnp.pad(x, ((0, 0), (margin, margin), (margin, margin), (0, 0)), constant_values=PAD_VALUE)
        base = x.dtype
        total = sum(self.blocks)
        widths, blocks, cardinality = (tuple(reversed(v)) for v in (self.widths, self.blocks, self.cardinality))
        out_dim = self.embed_dim if self.num_classes else 1
        h = x.astype(_stage_dtype(0, n, self.bf16_stages, False, base))
        h = Conv(widths[0], name="from_image")(h)
        for i, width in enumerate(widths):
            h = h.astype(_stage_dtype(i, n, self.bf16_stages, False, base))
            for j in range(blocks[i]):
                h = ResidualBlock(cardinality[i], self.expansion, total, name=f"stage_{i}_block_{j}")(h)
            if i + 1 < n:
                h = downsample2x(h)
                if widths[i + 1] != width:
                    h = Conv(widths[i + 1], name=f"stage_{i}_channels")(h)
            else:
                h = DiscriminativeBasis(out_dim, self.base_side, name="basis")(h)
        h = h.astype(base)
        if self.num_classes:
            if y is None:
                raise ValueError("this R3GAN discriminator is class-conditional: pass labels y.")
            embed = ClassEmbedding(self.num_classes, self.embed_dim, gain=1.0 / math.sqrt(self.embed_dim),
                                   name="embed")(y)
            return jnp.sum(h * embed.astype(base), axis=-1)
        return h[:, 0]


def parse_stages(value, key: str, num_stages: int | None = None) -> tuple[int, ...]:
    """A comma-separated list of positive integers ("768,768" or 768); one value is repeated to
    `num_stages` stages."""
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise ConfigError(f"Config key 'model.r3gan.{key}' is {value!r}; it must be comma-separated positive "
                          "integers, e.g. --config.model.r3gan.widths=768,768,768,768.")
    if num_stages is not None and len(values) == 1:
        values = values * num_stages
    if num_stages is not None and len(values) != num_stages:
        raise ConfigError(f"Config key 'model.r3gan.{key}' has {len(values)} values for the {num_stages} stages of "
                          f"model.r3gan.widths; give one value, or one per stage.")
    return values


def settings(model_config) -> dict:
    """`model.r3gan` as the networks' arguments (widths, blocks, cardinality as per-stage tuples), checked."""
    r = model_config.r3gan
    widths = parse_stages(r.widths, "widths")
    n = len(widths)
    blocks = parse_stages(r.blocks, "blocks", n)
    cardinality = parse_stages(r.cardinality, "cardinality", n)
    if not isinstance(r.expansion, int) or r.expansion < 1:
        raise ConfigError(f"Config key 'model.r3gan.expansion' must be a positive integer, got {r.expansion!r}.")
    for i, (w, g) in enumerate(zip(widths, cardinality)):
        if (w * r.expansion) % g:
            raise ConfigError(f"Config key 'model.r3gan.cardinality': stage {i} has {w * r.expansion} channels inside "
                              f"its blocks (width {w} x expansion {r.expansion}), not divisible into {g} groups; "
                              "choose a cardinality that divides them.")
    for key in ("g_embed_dim", "d_embed_dim"):
        if not isinstance(r[key], int) or r[key] < 0:
            raise ConfigError(f"Config key 'model.r3gan.{key}' must be an integer >= 0 (0: the default size), "
                              f"got {r[key]!r}.")
    if not isinstance(r.bf16_stages, int) or not 0 <= r.bf16_stages <= n:
        raise ConfigError(f"Config key 'model.r3gan.bf16_stages' must be an integer in [0, {n}] (the stages of "
                          f"model.r3gan.widths), got {r.bf16_stages!r}.")
    if not isinstance(r.base_side, int) or r.base_side < 1:
        raise ConfigError(f"Config key 'model.r3gan.base_side' must be a positive integer (4 as in R3GAN; 7 for "
                          f"7x7 -> 28x28 networks), got {r.base_side!r}.")
    return {"widths": widths, "blocks": blocks, "cardinality": cardinality, "expansion": r.expansion,
            "bf16_stages": r.bf16_stages, "base_side": r.base_side}


def validate(model_config, config) -> None:
    settings(model_config)
    if model_config.conditioning not in ("none", "projection"):
        raise ConfigError(f"model.conditioning={model_config.conditioning!r}: the R3GAN networks condition G on a "
                          "class embedding and D by projection; use --config.model.conditioning=projection or none.")


def build_generator(m, shape, axis_name, num_classes):
    s = settings(m)
    return R3GANGenerator(tuple(shape), num_classes=num_classes, embed_dim=m.r3gan.g_embed_dim or m.latent_dim, **s)


def build_discriminator(m, shape, axis_name, num_classes):
    s = settings(m)
    return R3GANDiscriminator(num_classes=num_classes, embed_dim=m.r3gan.d_embed_dim or s["widths"][0], **s)


register_generator("r3gan", build_generator, config={"r3gan": CONFIG}, conditional=True, validate=validate)
register_discriminator("r3gan", build_discriminator, config={"r3gan": CONFIG}, conditional=True, validate=validate)
