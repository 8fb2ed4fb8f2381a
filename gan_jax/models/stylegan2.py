"""StyleGAN2's networks (Karras et al. 2020), as trained with ADA (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data"), proven against the reference PyTorch code
(scripts/make_stylegan2_fixture.py writes the fixture tests/test_stylegan2.py holds us to).

Every layer stores raw weights drawn N(0, 1) (N(0, 1 / lr_multiplier^2) for the mapping layers)
and scales them at run time (equalized learning rate): a dense layer by lr_multiplier / sqrt(fan_in)
and its bias by lr_multiplier, a convolution by 1 / sqrt(fan_in). An activation adds the bias,
applies leaky ReLU 0.2 times sqrt(2) (or nothing), then clamps to +-conv_clamp when that is set.
Resampling filters through [1, 3, 3, 1] / 8 on each axis.

G: z (normalised to unit second moment; with a class embedding, itself normalised, concatenated) ->
a mapping network of `mapping_layers` dense layers (lr multiplier 0.01) -> w, broadcast to one w
per layer. Sampling (train=False) truncates toward the tracked average w_avg:
w_avg + psi * (w - w_avg) for the first `truncation_cutoff` ws (all when 0). A training forward
moves w_avg toward the batch mean with decay 0.995; w_avg and the fixed noise maps of `const`
mode are variables of the "buffers" collection, not parameters. Style mixing (`style_mixing` = p > 0,
training forwards only): with probability p a batch draws a cutoff c uniformly from [1, num_ws) and takes
its ws from c on from the mapping of a second z ~ N(0, I) with the same labels (that mapping leaves
w_avg alone); its randomness comes from the "mixing" rng. The synthesis network starts
from a learned 4x4 constant; each resolution runs a modulated 3x3 convolution (the first of a
block up-samples 2x), adds per-pixel noise times a learned strength, then bias and activation;
modulation scales the input channels by an affine map of w (bias 1), demodulation scales each
output channel to unit norm over its per-sample weights. The `skip` output sums a 1x1 modulated
toRGB (no demodulation) of every resolution, each up-sampled 2x to the next.

D (`orig` or `resnet`): a 1x1 fromRGB at the highest resolution; each block two 3x3 convolutions,
the second down-sampling 2x (`resnet` adds a 1x1 down-sampled skip and scales both by sqrt(1/2));
at 4x4 the minibatch standard deviation (groups of `mbstd_group` samples, `mbstd_channels` values),
a 3x3 convolution, a dense layer over the flattened map (channels first, as the reference
flattens) and the output layer. Conditional D projects the output onto a mapping of the label
(embedding and `d_mapping_layers` dense layers), divided by sqrt(its size).

Channels at resolution r: min(channel_base / r, channel_max). Images whose side is smaller than
the network's (28x28 MNIST on a 32x32 network) are padded with -1 before D, and G's output is
cropped to their size.
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
from gan_jax.models.r3gan import PAD_VALUE, downsample2x, lowpass_taps, upsample2x

NEGATIVE_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
FILTER = (1, 2, 1)  # lowpass_taps turns it into [1, 3, 3, 1] / 8
BUFFERS = "buffers"  # the variable collection of w_avg and the const noise maps

# `model.stylegan2` defaults: StyleGAN2-ADA's `cifar` configuration.
CONFIG = {
    "w_dim": 512,  # the intermediate latent w
    "mapping_layers": 2,  # G's mapping network
    "channel_base": 32768,  # channels at resolution r: min(channel_base // r, channel_max)
    "channel_max": 512,
    "conv_clamp": 256.0,  # clamp every convolution's activation to +-this; 0: no clamp
    "noise_mode": "random",  # G's noise: random (const where no "noise" key is given) | const | none
    "truncation_psi": 1.0,  # sampling pulls w toward w_avg: w_avg + psi * (w - w_avg)
    "truncation_cutoff": 0,  # truncate the first this many ws; 0: all
    "w_avg_beta": 0.995,  # decay of the tracked w average
    "style_mixing": 0.0,  # probability that a training batch mixes in a second z's ws (the paper configs: 0.9)
    "architecture": "orig",  # D: orig | resnet
    "mbstd_group": 32,  # D's minibatch-stddev group (the batch when smaller)
    "mbstd_channels": 1,  # its output channels; 0: no minibatch stddev
    "d_mapping_layers": 8,  # dense layers mapping the label for D's projection
    "cmap_dim": 0,  # the size of that mapping; 0: the 4x4 block's channels
}


def full_precision(x: jax.Array) -> jax.Array:
    """`x` in float32 where the reference computes in float32 whatever its input (float16 and bfloat16 are
    raised); float64 stays float64, so the networks can be compared with the reference in float64."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def bias_act(x: jax.Array, bias: jax.Array | None, activation: str, gain: float = 1.0,
             clamp: float | None = None) -> jax.Array:
    """x + bias, then leaky ReLU 0.2 ("lrelu") or nothing ("linear"), times `gain`, clamped to +-clamp."""
    if bias is not None:
        x = x + bias.astype(x.dtype)
    if activation == "lrelu":
        x = nn.leaky_relu(x, NEGATIVE_SLOPE)
    elif activation != "linear":
        raise ValueError(f"Unknown activation {activation!r}; use lrelu or linear.")
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x


def activation_gain(activation: str) -> float:
    return LRELU_GAIN if activation == "lrelu" else 1.0


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def _filter_axis(x: jax.Array, taps: np.ndarray, axis: int, pad: tuple[int, int], gain: float) -> jax.Array:
    """The symmetric FIR `taps` times `gain` along `axis` over the zero-padded signal (valid outputs)."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = pad
    padded = jnp.pad(x, widths)
    n = padded.shape[axis] - len(taps) + 1
    return sum((gain * w) * jax.lax.slice_in_dim(padded, t, t + n, axis=axis) for t, w in enumerate(taps.tolist()))


def filter2d(x: jax.Array, pad: tuple[int, int], gain: float = 1.0) -> jax.Array:
    """NHWC: the [1, 3, 3, 1] / 8 filter on both spatial axes after padding each by `pad`; `gain` in total."""
    taps = lowpass_taps(FILTER)
    g = math.sqrt(gain)
    return _filter_axis(_filter_axis(x, taps, 1, pad, g), taps, 2, pad, g)


def conv2d(x: jax.Array, kernel: jax.Array, up: bool = False, down: bool = False) -> jax.Array:
    """NHWC correlation with an HWIO kernel of odd size k, padded to keep the size, optionally resampling 2x.

    up: a transposed convolution (the kernel applied as a convolution, i.e. flipped) of stride 2, then the
    filter with gain 4, which is a 2x up-sampled map. down: the filter, then a stride-2 correlation (a 1x1
    kernel: the down-sampling filter first). The pads are those of filtering the up-sampled (or input) map
    and then convolving it with `k // 2` padding.
    """
    k = kernel.shape[0]
    dims = ("NHWC", "HWIO", "NHWC")
    if up:
        if k == 1:
            return upsample2x(x @ kernel[0, 0], FILTER)
        y = jax.lax.conv_general_dilated(x, kernel[::-1, ::-1], (1, 1), [(k - 1, k - 1)] * 2, lhs_dilation=(2, 2),
                                         dimension_numbers=dims)
        p = k // 2
        return filter2d(y, (p + 3 - k, p + 3 - k), gain=4.0)
    if down:
        if k == 1:
            return downsample2x(x, FILTER) @ kernel[0, 0]
        p = k // 2
        y = filter2d(x, (p + 1, p + 1))
        return jax.lax.conv_general_dilated(y, kernel, (2, 2), "VALID", dimension_numbers=dims)
    if k == 1:
        return x @ kernel[0, 0]
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), [(k // 2, k // 2)] * 2, dimension_numbers=dims)


class Dense(nn.Module):
    """Equalized-lr dense layer: raw weight [in, out] ~ N(0, 1 / lr_multiplier^2), scaled by
    lr_multiplier / sqrt(in); bias (init `bias_init`) scaled by lr_multiplier; then the activation."""

    features: int
    activation: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        weight = self.param("weight", nn.initializers.normal(1.0 / self.lr_multiplier), (fan_in, self.features))
        bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
        w = weight.astype(x.dtype) * (self.lr_multiplier / math.sqrt(fan_in))
        b = bias * self.lr_multiplier
        return bias_act(x @ w, b, self.activation, activation_gain(self.activation))


class Conv(nn.Module):
    """Equalized-lr convolution (raw HWIO weight ~ N(0, 1), scaled by 1 / sqrt(k * k * in)), optionally
    down-sampling 2x, then bias, activation times `gain` and the clamp to +-conv_clamp * gain."""

    features: int
    kernel_size: int
    activation: str = "lrelu"
    down: bool = False
    use_bias: bool = True
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
        k, fan_in = self.kernel_size, x.shape[-1]
        weight = self.param("weight", nn.initializers.normal(1.0), (k, k, fan_in, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        w = weight.astype(x.dtype) * (1.0 / math.sqrt(fan_in * k * k))
        x = conv2d(x, w, down=self.down)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, bias, self.activation, activation_gain(self.activation) * gain, clamp)


def modulated_conv2d(x: jax.Array, weight: jax.Array, styles: jax.Array, demodulate: bool = True,
                     up: bool = False) -> jax.Array:
    """StyleGAN2's modulated convolution: sample b's kernel is weight[..., i, o] * styles[b, i], divided
    (demodulate) by sqrt(sum over kh, kw, i of its square + 1e-8) per output o.

    Computed as scale the input channels, convolve with the shared kernel, scale the output channels,
    which equals one convolution per sample with its own kernel (the grouped form) and batches better.
    """
    x = x * styles[:, None, None, :].astype(x.dtype)
    x = conv2d(x, weight.astype(x.dtype), up=up)
    if demodulate:
        energy = jnp.einsum("bi,io->bo", jnp.square(styles), jnp.sum(jnp.square(weight), axis=(0, 1)))
        x = x * jax.lax.rsqrt(energy + 1e-8)[:, None, None, :].astype(x.dtype)
    return x


class MappingNetwork(nn.Module):
    """z [B, z_dim] (or None) and labels [B] -> w [B, w_dim], or [B, num_ws, w_dim] broadcast when `num_ws`.

    With `w_avg_beta` it tracks the average w in the "buffers" collection (moved on every training
    forward) and truncates toward it when `truncation_psi` != 1: the first `truncation_cutoff` ws (all
    when 0) become w_avg + psi * (w - w_avg).
    """

    w_dim: int
    num_layers: int
    num_classes: int = 0
    num_ws: int | None = None
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = None

    @nn.compact
    def __call__(self, z: jax.Array | None, y: jax.Array | None = None, train: bool = False,
                 truncation_psi: float = 1.0, truncation_cutoff: int = 0) -> jax.Array:
        parts = []
        if z is not None:
            parts.append(normalize_2nd_moment(full_precision(z)))
        if self.num_classes:
            if y is None:
                raise ValueError("this mapping network is class-conditional: pass labels y.")
            # the default float: float32, or float64 under jax_enable_x64 (the float64 comparison)
            onehot = jax.nn.one_hot(y, self.num_classes, dtype=jnp.result_type(float))
            parts.append(normalize_2nd_moment(Dense(self.w_dim, name="embed")(onehot)))
        x = jnp.concatenate(parts, axis=-1)
        for i in range(self.num_layers):
            x = Dense(self.w_dim, "lrelu", self.lr_multiplier, name=f"fc{i}")(x)
        w_avg = None
        if self.w_avg_beta is not None:
            w_avg = self.variable(BUFFERS, "w_avg", lambda: jnp.zeros((self.w_dim,), jnp.float32))
            if train and not self.is_initializing():
                mean = jnp.mean(full_precision(jax.lax.stop_gradient(x)), axis=0)
                w_avg.value = mean + self.w_avg_beta * (w_avg.value - mean)
        if self.num_ws is not None:
            x = jnp.repeat(x[:, None, :], self.num_ws, axis=1)
        if truncation_psi != 1:
            if w_avg is None:
                raise ValueError("truncation needs the tracked w average (w_avg_beta).")
            if self.num_ws is None or not truncation_cutoff:
                x = w_avg.value + truncation_psi * (x - w_avg.value)
            else:
                head = w_avg.value + truncation_psi * (x[:, :truncation_cutoff] - w_avg.value)
                x = jnp.concatenate([head, x[:, truncation_cutoff:]], axis=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (2x up-sampling when `up`), noise, bias, leaky ReLU, clamp."""

    features: int
    resolution: int
    up: bool = False
    conv_clamp: float | None = None
    noise_mode: str = "random"
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, gain: float = 1.0) -> jax.Array:
        fan_in, k, res = x.shape[-1], self.kernel_size, self.resolution
        styles = Dense(fan_in, bias_init=1.0, name="affine")(w)
        weight = self.param("weight", nn.initializers.normal(1.0), (k, k, fan_in, self.features))
        noise_const = self.variable(BUFFERS, "noise_const", lambda: jax.random.normal(self.make_rng("params"),
                                                                                      (res, res), jnp.float32))
        strength = self.param("noise_strength", nn.initializers.zeros, ())
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        x = modulated_conv2d(x, weight, styles, demodulate=True, up=self.up)
        if self.noise_mode == "random" and self.has_rng("noise"):
            noise = jax.random.normal(self.make_rng("noise"), (x.shape[0], res, res, 1), jnp.float32) * strength
            x = x + noise.astype(x.dtype)
        elif self.noise_mode != "none":
            x = x + (noise_const.value * strength)[None, :, :, None].astype(x.dtype)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, bias, "lrelu", LRELU_GAIN * gain, clamp)


class ToRGB(nn.Module):
    """1x1 modulated convolution without demodulation (styles scaled by 1 / sqrt(in)), bias, clamp."""

    channels: int
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        styles = Dense(fan_in, bias_init=1.0, name="affine")(w) * (1.0 / math.sqrt(fan_in))
        weight = self.param("weight", nn.initializers.normal(1.0), (1, 1, fan_in, self.channels))
        bias = self.param("bias", nn.initializers.zeros, (self.channels,))
        return bias_act(modulated_conv2d(x, weight, styles, demodulate=False), bias, "linear", 1.0, self.conv_clamp)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


def _network_side(height: int, width: int, resolution: int, who: str) -> None:
    if height != width or height > resolution or (resolution - height) % 2:
        raise ConfigError(f"the StyleGAN2 {who} of resolution {resolution} cannot take {height}x{width} images "
                          "(square, at most the network's side, by an even margin); resize the data "
                          "(data.resolution).")


def num_ws(resolution: int) -> int:
    """The ws the synthesis network reads: two per resolution from 4x4 (one conv and the last toRGB at 4x4)."""
    return 2 * (int(math.log2(resolution)) - 1)


class StyleGAN2Generator(nn.Module):
    """z [B, z_dim] (and labels y [B] when conditional) -> images [B, H, W, C], trained on [-1, 1]."""

    output_shape: Sequence[int]  # (H, W, C)
    resolution: int  # the network's side, a power of two >= 4
    w_dim: int = 512
    mapping_layers: int = 8
    num_classes: int = 0
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    noise_mode: str = "random"
    truncation_psi: float = 1.0
    truncation_cutoff: int = 0
    w_avg_beta: float = 0.995
    style_mixing: float = 0.0

    def setup(self):
        self.mapping = MappingNetwork(self.w_dim, self.mapping_layers, self.num_classes, num_ws(self.resolution),
                                      w_avg_beta=self.w_avg_beta)
        self.synthesis = SynthesisNetwork(self.resolution, self.output_shape[-1], self.channel_base,
                                          self.channel_max, self.conv_clamp, self.noise_mode)

    def __call__(self, z: jax.Array, y: jax.Array | None = None, train: bool = True,
                 truncation_psi: float | None = None) -> jax.Array:
        return self.synthesize(self.map(z, y, train, truncation_psi))

    def map(self, z: jax.Array, y: jax.Array | None = None, train: bool = True,
            truncation_psi: float | None = None) -> jax.Array:
        """ws [B, num_ws, w_dim]; truncated (`truncation_psi`, the module's unless given) only when sampling,
        style-mixed (`style_mixing`, with the "mixing" rng) only when training."""
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        ws = self.mapping(z, y, train=train, truncation_psi=1.0 if train else psi,
                          truncation_cutoff=self.truncation_cutoff)
        if train and self.style_mixing > 0:
            ws = self.mix_styles(ws, z, y)
        return ws

    def mix_styles(self, ws: jax.Array, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """With probability `style_mixing` (one draw for the batch), ws from a cutoff c ~ U{1, ..., num_ws - 1}
        on replaced by those of a second z with the same labels; else ws unchanged."""
        n = ws.shape[1]
        cutoff_key, coin_key, z_key = jax.random.split(self.make_rng("mixing"), 3)
        cutoff = jax.random.randint(cutoff_key, (), 1, n)
        cutoff = jnp.where(jax.random.uniform(coin_key, ()) < self.style_mixing, cutoff, n)
        mixed = self.mapping(jax.random.normal(z_key, z.shape, jnp.float32), y, train=False)
        return jnp.where(jnp.arange(n)[None, :, None] < cutoff, ws, mixed.astype(ws.dtype))

    def synthesize(self, ws: jax.Array) -> jax.Array:
        """ws -> images of the output shape (cropped from the network's side when smaller)."""
        h_out, w_out, _ = self.output_shape
        _network_side(h_out, w_out, self.resolution, "generator")
        img = self.synthesis(ws)
        if h_out != self.resolution:
            top = (self.resolution - h_out) // 2
            img = img[:, top:top + h_out, top:top + h_out]
        return img


def path_lengths(g: StyleGAN2Generator, variables, z: jax.Array, y: jax.Array | None, noise: jax.Array,
                 rngs=None) -> jax.Array:
    """[B]: the path length of each sample, sqrt(mean over ws of |J_w^T noise|^2), J the synthesis network's
    Jacobian at its ws and `noise` images N(0, 1) / sqrt(H * W) (the path-length regularizer's lengths)."""
    ws = g.apply(variables, z, y, train=False, truncation_psi=1.0, method="map")
    _, pullback = jax.vjp(lambda ws: g.apply(variables, ws, method="synthesize", rngs=rngs), ws)
    (grad,) = pullback(full_precision(noise))
    return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grad), axis=2), axis=1))


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, R, R, channels] (the `skip` architecture)."""

    resolution: int
    channels: int
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    noise_mode: str = "random"

    @nn.compact
    def __call__(self, ws: jax.Array) -> jax.Array:
        if ws.shape[1] != num_ws(self.resolution):
            raise ValueError(f"the synthesis network of resolution {self.resolution} takes {num_ws(self.resolution)} "
                             f"ws, got {ws.shape[1]}.")
        ch = lambda r: channels_at(r, self.channel_base, self.channel_max)  # noqa: E731
        ws = full_precision(ws)
        const = self.param("const", nn.initializers.normal(1.0), (4, 4, ch(4)))
        x = jnp.broadcast_to(const[None], (ws.shape[0],) + const.shape)
        layer = dict(conv_clamp=self.conv_clamp, noise_mode=self.noise_mode)
        x = SynthesisLayer(ch(4), 4, name="b4_conv1", **layer)(x, ws[:, 0])
        img = ToRGB(self.channels, self.conv_clamp, name="b4_torgb")(x, ws[:, 1])
        idx, res = 1, 8
        while res <= self.resolution:
            x = SynthesisLayer(ch(res), res, up=True, name=f"b{res}_conv0", **layer)(x, ws[:, idx])
            x = SynthesisLayer(ch(res), res, name=f"b{res}_conv1", **layer)(x, ws[:, idx + 1])
            img = upsample2x(img, FILTER) + ToRGB(self.channels, self.conv_clamp, name=f"b{res}_torgb")(
                x, ws[:, idx + 2]).astype(img.dtype)
            idx, res = idx + 2, res * 2
        return img


def minibatch_stddev(x: jax.Array, group_size: int, num_channels: int) -> jax.Array:
    """NHWC: appends `num_channels` maps of the standard deviation over groups of samples.

    Sample i belongs to group i mod (B / G) with G = min(group_size, B); each of the `num_channels`
    slices of the channels gets the stddev over its group (per channel and pixel, +1e-8 inside the root)
    averaged over its channels and pixels.
    """
    b, h, w, c = x.shape
    g = min(group_size, b)
    if b % g:
        raise ValueError(f"the minibatch-stddev group of {g} does not divide the batch of {b}; choose "
                         "model.stylegan2.mbstd_group dividing the batch (per device).")
    f = num_channels
    y = full_precision(x).reshape(g, b // g, h, w, f, c // f)
    y = y - jnp.mean(y, axis=0)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
    y = jnp.mean(y, axis=(1, 2, 4))  # [n, F]
    y = jnp.tile(y, (g, 1))[:, None, None, :]
    return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, f)).astype(x.dtype)], axis=-1)


class StyleGAN2Discriminator(nn.Module):
    """images [B, H, W, C] (and labels y [B] when conditional) -> logits [B]."""

    resolution: int
    architecture: str = "resnet"
    num_classes: int = 0
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    mbstd_group: int = 4
    mbstd_channels: int = 1
    mapping_layers: int = 8
    cmap_dim: int = 0  # 0: the 4x4 block's channels

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, train: bool = True) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"the StyleGAN2 discriminator takes images [B, H, W, C], got shape {x.shape}.")
        if self.architecture not in ("orig", "resnet"):
            raise ValueError(f"Unknown discriminator architecture {self.architecture!r}; use orig or resnet.")
        _network_side(x.shape[1], x.shape[2], self.resolution, "discriminator")
        if x.shape[1] != self.resolution:
            margin = (self.resolution - x.shape[1]) // 2
            x = jnp.pad(x, ((0, 0), (margin, margin), (margin, margin), (0, 0)), constant_values=PAD_VALUE)
        ch = lambda r: channels_at(r, self.channel_base, self.channel_max)  # noqa: E731
        clamp = self.conv_clamp
        res = self.resolution
        h = Conv(ch(res), 1, conv_clamp=clamp, name=f"b{res}_fromrgb")(x)
        while res > 4:
            if self.architecture == "resnet":
                skip = Conv(ch(res // 2), 1, "linear", down=True, use_bias=False, name=f"b{res}_skip")(
                    h, gain=math.sqrt(0.5))
                h = Conv(ch(res), 3, conv_clamp=clamp, name=f"b{res}_conv0")(h)
                h = skip + Conv(ch(res // 2), 3, down=True, conv_clamp=clamp, name=f"b{res}_conv1")(
                    h, gain=math.sqrt(0.5))
            else:
                h = Conv(ch(res), 3, conv_clamp=clamp, name=f"b{res}_conv0")(h)
                h = Conv(ch(res // 2), 3, down=True, conv_clamp=clamp, name=f"b{res}_conv1")(h)
            res //= 2
        c4 = ch(4)
        h = full_precision(h)
        if self.mbstd_channels:
            h = minibatch_stddev(h, self.mbstd_group, self.mbstd_channels)
        h = Conv(c4, 3, conv_clamp=clamp, name="b4_conv")(h)
        h = jnp.transpose(h, (0, 3, 1, 2)).reshape(h.shape[0], -1)  # channels first, as the reference flattens
        h = Dense(c4, "lrelu", name="b4_fc")(h)
        if not self.num_classes:
            return Dense(1, name="b4_out")(h)[:, 0]
        if y is None:
            raise ValueError("this StyleGAN2 discriminator is class-conditional: pass labels y.")
        cmap_dim = self.cmap_dim or c4
        out = Dense(cmap_dim, name="b4_out")(h)
        cmap = MappingNetwork(cmap_dim, self.mapping_layers, self.num_classes, name="mapping")(None, y)
        return jnp.sum(out * cmap, axis=-1) * (1.0 / math.sqrt(cmap_dim))


def settings(model_config, data_shape: Sequence[int] | None = None) -> dict:
    """`model.stylegan2` checked, with the network's resolution (the data's side rounded up to a power of 2)."""
    s = model_config.stylegan2
    for key in ("w_dim", "mapping_layers", "channel_base", "channel_max", "d_mapping_layers", "mbstd_group"):
        if not isinstance(s[key], int) or s[key] < 1:
            raise ConfigError(f"Config key 'model.stylegan2.{key}' must be a positive integer, got {s[key]!r}.")
    for key in ("mbstd_channels", "cmap_dim", "truncation_cutoff"):
        if not isinstance(s[key], int) or s[key] < 0:
            raise ConfigError(f"Config key 'model.stylegan2.{key}' must be an integer >= 0, got {s[key]!r}.")
    if s.conv_clamp < 0:
        raise ConfigError(f"Config key 'model.stylegan2.conv_clamp' must be >= 0 (0: no clamp), got {s.conv_clamp!r}.")
    if s.noise_mode not in ("random", "const", "none"):
        raise ConfigError(f"Config key 'model.stylegan2.noise_mode' is {s.noise_mode!r}; use random, const or none.")
    if s.architecture not in ("orig", "resnet"):
        raise ConfigError(f"Config key 'model.stylegan2.architecture' is {s.architecture!r}; the discriminator is "
                          "orig or resnet.")
    if not 0.0 <= s.w_avg_beta < 1.0:
        raise ConfigError(f"Config key 'model.stylegan2.w_avg_beta' must be in [0, 1), got {s.w_avg_beta!r}.")
    if not 0.0 <= s.style_mixing <= 1.0:
        raise ConfigError(f"Config key 'model.stylegan2.style_mixing' is a probability in [0, 1] (0: off), got "
                          f"{s.style_mixing!r}.")
    out = {"resolution": None}
    if data_shape is not None:
        side = max(data_shape[0], data_shape[1], 4)
        out["resolution"] = 2 ** math.ceil(math.log2(side))
        res = out["resolution"]
        if s.mbstd_channels and channels_at(4, s.channel_base, s.channel_max) % s.mbstd_channels:
            raise ConfigError(f"Config key 'model.stylegan2.mbstd_channels' ({s.mbstd_channels}) must divide the 4x4 "
                              f"block's {channels_at(4, s.channel_base, s.channel_max)} channels.")
        if channels_at(res, s.channel_base, s.channel_max) < 1:
            raise ConfigError(f"model.stylegan2.channel_base={s.channel_base} leaves no channels at resolution {res}; "
                              f"it must be at least {res}.")
    return out


def validate(model_config, config) -> None:
    settings(model_config)
    if model_config.conditioning not in ("none", "projection"):
        raise ConfigError(f"model.conditioning={model_config.conditioning!r}: the StyleGAN2 networks condition G's "
                          "mapping on a label embedding and D by projection; use --config.model.conditioning="
                          "projection or none.")


def build_generator(m, shape, axis_name, num_classes):
    s = m.stylegan2
    res = settings(m, shape)["resolution"]
    _network_side(shape[0], shape[1], res, "generator")
    return StyleGAN2Generator(tuple(shape), res, w_dim=s.w_dim, mapping_layers=s.mapping_layers,
                              num_classes=num_classes, channel_base=s.channel_base, channel_max=s.channel_max,
                              conv_clamp=s.conv_clamp or None, noise_mode=s.noise_mode,
                              truncation_psi=float(s.truncation_psi), truncation_cutoff=s.truncation_cutoff,
                              w_avg_beta=float(s.w_avg_beta), style_mixing=float(s.style_mixing))


def build_discriminator(m, shape, axis_name, num_classes):
    s = m.stylegan2
    res = settings(m, shape)["resolution"]
    return StyleGAN2Discriminator(res, s.architecture, num_classes, s.channel_base, s.channel_max,
                                  s.conv_clamp or None, s.mbstd_group, s.mbstd_channels, s.d_mapping_layers, s.cmap_dim)


register_generator("stylegan2", build_generator, config={"stylegan2": CONFIG}, conditional=True, validate=validate,
                   methods=("map", "synthesize"))
register_discriminator("stylegan2", build_discriminator, config={"stylegan2": CONFIG}, conditional=True,
                       validate=validate)
