"""BigGAN's ResNet generator and discriminator (Brock et al. 2019), laid out as PyTorch-StudioGAN's
`big_resnet` builds them (its CIFAR-10 BigGAN numbers come from that network).

G: z is split into `blocks + 1` equal chunks (the hierarchical latent). The first chunk goes
through a linear layer to a 4x4 map; each up-sampling residual block gets the vector
[shared class embedding, its own chunk] (the chunk alone without classes), and its two batch
norms take their gains (1 + linear) and biases (linear) from that vector (class-conditional
batch norm, the linear layers spectrally normalised, without bias). A block is
BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 with an up-sampled 1x1-conv shortcut. A self-attention
block (SAGAN, its gain starting at 0) follows the block that reaches
`model.biggan.g_attention` pixels. Then BN, ReLU, a 3x3 conv to the image channels and tanh.
The shared embedding is a plain table; every other G layer is spectrally normalised.

D: an optimised first block (conv3x3-ReLU-conv3x3-pool, shortcut pool then 1x1 conv), then
residual blocks ReLU-conv3x3-ReLU-conv3x3(-pool) whose 1x1-conv shortcut exists when the block
down-samples or changes the channels; self-attention after the first block that reaches
`model.biggan.d_attention` pixels; ReLU, global sum pooling, a linear layer and, conditional,
the projection <embed(y), features> (Miyato & Koyama 2018). Every D layer is spectrally
normalised; the embedding's power iteration runs over its class axis.

One quirk of the reference is kept on purpose: in every D block after the first, its ReLU runs
in place on the block's input, so the shortcut sees relu(x), not x (32x32: the two
non-down-sampling blocks add relu(x) as their identity shortcut).

Batch norm: eps 1e-4, momentum 0.1 (PyTorch's convention; 0.9 here). Weights are initialised
orthogonally, biases at zero. `model.latent_dim` must be a multiple of the blocks + 1 (32x32:
3 blocks, 80 = 4 x 20 in the reference). Widths (`model.biggan.g_conv_dim`, `d_conv_dim`) are the
reference's base channels: at 32x32 G runs 4 x g_conv_dim channels, D 2 x d_conv_dim.

28x28 (MNIST at its own size, not in the reference) is the 32x32 layout with G starting from a 7x7
map and one up-sampling block fewer (7 -> 14 -> 28, z in 3 chunks); D is the 32x32 one (28 -> 14 -> 7).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models import register_discriminator, register_generator
from gan_jax.models.layers import SNConv, SNDense, spectral_normalize

BN_EPSILON = 1e-4
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1
ortho = nn.initializers.orthogonal()

# `model.biggan` defaults: StudioGAN's CIFAR-10 BigGAN.yaml.
CONFIG = {
    "g_conv_dim": 96,  # G's base channels (32x32: 4x this in every block)
    "d_conv_dim": 96,  # D's base channels (32x32: 2x this in every block)
    "shared_dim": 128,  # the shared class embedding's size (conditional only)
    "g_attention": 16,  # side in pixels of G's self-attention block; 0: none
    "d_attention": 16,  # side in pixels of D's self-attention block; 0: none
}

# Per resolution: G's block (input, output) channels and D's (output channels, down-samples), as
# multiples of the base channels; the input of D's block i is the output of block i - 1.
G_LAYOUT = {
    28: ((4, 4), (4, 4)),
    32: ((4, 4), (4, 4), (4, 4)),
    64: ((16, 8), (8, 4), (4, 2), (2, 1)),
    128: ((16, 16), (16, 8), (8, 4), (4, 2), (2, 1)),
    256: ((16, 16), (16, 8), (8, 8), (8, 4), (4, 2), (2, 1)),
}
D_LAYOUT = {
    28: ((2, True), (2, True), (2, False), (2, False)),
    32: ((2, True), (2, True), (2, False), (2, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, False)),
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
    256: ((1, True), (2, True), (4, True), (8, True), (8, True), (16, True), (16, False)),
}
BOTTOM = {28: 7}  # the side of G's first map: 4x4 except 7x7 for 28x28 (two blocks to MNIST's size)


def _bottom(side: int) -> int:
    return BOTTOM.get(side, 4)


def _upsample(x: jax.Array) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _avg_pool(x: jax.Array) -> jax.Array:
    return nn.avg_pool(x, (2, 2), (2, 2))


def _conv(features: int, size: int = 3, use_bias: bool = True, name: str | None = None) -> SNConv:
    padding = "SAME" if size > 1 else "VALID"
    return SNConv(features, (size, size), padding=padding, use_bias=use_bias, kernel_init=ortho, name=name)


def _batch_norm(train: bool, axis_name: str | None, affine: bool, name: str | None = None) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, use_bias=affine,
                        use_scale=affine, use_fast_variance=False, axis_name=axis_name, name=name)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine parameters, then * (1 + gain(c)) + bias(c), where gain and bias are
    spectrally normalised linear maps (no bias) of the conditioning vector c [B, D]."""

    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array, train: bool) -> jax.Array:
        channels = x.shape[-1]
        h = _batch_norm(train, self.axis_name, affine=False, name="bn")(x)
        gain = 1.0 + SNDense(channels, use_bias=False, kernel_init=ortho, name="gain")(c, train)
        bias = SNDense(channels, use_bias=False, kernel_init=ortho, name="bias")(c, train)
        return h * gain[:, None, None, :].astype(h.dtype) + bias[:, None, None, :].astype(h.dtype)


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019) as BigGAN uses it: queries theta (C/8) at every
    position, keys phi (C/8) and values g (C/2) max-pooled 2x2, softmax over the pooled positions,
    a 1x1 conv back to C channels, and x + sigma * that with sigma a learned scalar starting at 0.
    Every 1x1 conv is spectrally normalised and has no bias. x is NHWC with even H and W."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b, height, width, c = x.shape
        theta = _conv(c // 8, 1, use_bias=False, name="theta")(x, train).reshape(b, height * width, c // 8)
        phi = nn.max_pool(_conv(c // 8, 1, use_bias=False, name="phi")(x, train), (2, 2), (2, 2))
        g = nn.max_pool(_conv(c // 2, 1, use_bias=False, name="g")(x, train), (2, 2), (2, 2))
        phi = phi.reshape(b, -1, c // 8)
        g = g.reshape(b, -1, c // 2)
        attention = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi), axis=-1)
        attended = jnp.einsum("bqk,bkc->bqc", attention, g).reshape(b, height, width, c // 2)
        out = _conv(c, 1, use_bias=False, name="out")(attended, train)
        sigma = self.param("sigma", nn.initializers.zeros, ())
        return x + sigma.astype(x.dtype) * out


class GBlock(nn.Module):
    features: int
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, c, train):
        h = nn.relu(ConditionalBatchNorm(self.axis_name, name="bn1")(x, c, train))
        h = _conv(self.features, name="conv1")(_upsample(h), train)
        h = nn.relu(ConditionalBatchNorm(self.axis_name, name="bn2")(h, c, train))
        h = _conv(self.features, name="conv2")(h, train)
        return h + _conv(self.features, 1, name="conv0")(_upsample(x), train)


class DBlock(nn.Module):
    """A D residual block; `first` is the optimised first block (no leading ReLU, pool before the
    shortcut's conv). In the others the shortcut starts from relu(x): the reference's in-place ReLU."""

    features: int
    downsample: bool
    first: bool = False

    @nn.compact
    def __call__(self, x, train):
        if self.first:
            h = _conv(self.features, name="conv1")(x, train)
            h = _avg_pool(_conv(self.features, name="conv2")(nn.relu(h), train))
            return h + _conv(self.features, 1, name="conv0")(_avg_pool(x), train)
        x = nn.relu(x)
        h = _conv(self.features, name="conv1")(x, train)
        h = _conv(self.features, name="conv2")(nn.relu(h), train)
        shortcut = x
        if self.downsample or x.shape[-1] != self.features:
            shortcut = _conv(self.features, 1, name="conv0")(x, train)
        if self.downsample:
            h, shortcut = _avg_pool(h), _avg_pool(shortcut)
        return h + shortcut


def _check_resolution(side: int) -> None:
    if side not in G_LAYOUT:
        raise ConfigError(f"the BigGAN networks are defined for {', '.join(f'{s}x{s}' for s in G_LAYOUT)} images, "
                          f"not {side}x{side}; set --config.data.resolution to one of {sorted(G_LAYOUT)}.")


class BigGANGenerator(nn.Module):
    """z [B, latent] (and labels y [B] when `num_classes`) -> images [B, H, W, C] in [-1, 1]."""

    output_shape: Sequence[int]  # (H, W, C)
    conv_dim: int = 96
    shared_dim: int = 128
    attention: int = 16
    num_classes: int = 0
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, y=None, train: bool = True):
        side = self.output_shape[0]
        _check_resolution(side)
        layout = G_LAYOUT[side]
        chunk = z.shape[-1] // (len(layout) + 1)
        chunks = [z[:, i * chunk:(i + 1) * chunk] for i in range(len(layout) + 1)]
        if self.num_classes:
            if y is None:
                raise ValueError("this BigGAN generator is class-conditional: pass labels y.")
            shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=ortho, name="shared")(y)
            conds = [jnp.concatenate([shared.astype(z.dtype), zi], axis=-1) for zi in chunks[1:]]
        else:
            conds = chunks[1:]
        c0, bottom = layout[0][0] * self.conv_dim, _bottom(side)
        h = SNDense(c0 * bottom * bottom, kernel_init=ortho, name="linear0")(chunks[0], train)
        # the reference lays this vector out channel-major ([C, 4, 4])
        h = h.reshape(z.shape[0], c0, bottom, bottom).transpose(0, 2, 3, 1)
        for i, (_, out_mult) in enumerate(layout):
            h = GBlock(out_mult * self.conv_dim, self.axis_name, name=f"block{i}")(h, conds[i], train)
            if h.shape[1] == self.attention:
                h = SelfAttention(name="attention")(h, train)
        h = nn.relu(_batch_norm(train, self.axis_name, affine=True, name="bn")(h))
        h = _conv(self.output_shape[-1], name="conv_out")(h, train)
        return jnp.tanh(h)


class SNClassEmbed(nn.Module):
    """Class embedding [num_classes, features], spectrally normalised with the power iteration's u
    over the classes (the table is viewed as a [features, classes] matrix)."""

    num_classes: int
    features: int

    @nn.compact
    def __call__(self, y: jax.Array, update: bool) -> jax.Array:
        table = self.param("embedding", ortho, (self.num_classes, self.features))
        return spectral_normalize(self, table.T, update, name="embedding").T[y]


class BigGANDiscriminator(nn.Module):
    """images [B, H, W, C] (and labels y [B] when `num_classes`) -> logits [B]."""

    conv_dim: int = 96
    attention: int = 16
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, y=None, train: bool = True):
        _check_resolution(x.shape[1])
        h = x
        attended = False
        for i, (mult, down) in enumerate(D_LAYOUT[x.shape[1]]):
            h = DBlock(mult * self.conv_dim, down, first=i == 0, name=f"block{i}")(h, train)
            if h.shape[1] == self.attention and not attended:
                h = SelfAttention(name="attention")(h, train)
                attended = True
        features = jnp.sum(nn.relu(h), axis=(1, 2))
        logits = SNDense(1, kernel_init=ortho, name="linear")(features, train)[:, 0]
        if self.num_classes:
            if y is None:
                raise ValueError("this BigGAN discriminator is class-conditional: pass labels y.")
            embed = SNClassEmbed(self.num_classes, features.shape[-1], name="embed")(y, train)
            logits = logits + jnp.sum(embed.astype(features.dtype) * features, axis=-1)
        return logits


def validate(model_config, config) -> None:
    b = model_config.biggan
    for key in ("g_conv_dim", "d_conv_dim", "shared_dim"):
        if not isinstance(b[key], int) or isinstance(b[key], bool) or b[key] < 1:
            raise ConfigError(f"Config key 'model.biggan.{key}' must be a positive integer, got {b[key]!r}.")
    for key in ("g_attention", "d_attention"):
        if not isinstance(b[key], int) or isinstance(b[key], bool) or b[key] < 0:
            raise ConfigError(f"Config key 'model.biggan.{key}' must be an integer >= 0 (a side in pixels; 0: no "
                              f"attention), got {b[key]!r}.")
    if model_config.conditioning not in ("none", "projection"):
        raise ConfigError(f"model.conditioning={model_config.conditioning!r}: the BigGAN networks condition G by "
                          "class-conditional batch norm and D by projection; use --config.model.conditioning="
                          "projection or none.")


def check_shape(m, side: int) -> None:
    """The checks that need the image side: the layout, z's chunks, the attention sides and channels."""
    _check_resolution(side)
    b = m.biggan
    blocks = len(G_LAYOUT[side])
    if m.latent_dim % (blocks + 1):
        raise ConfigError(f"model.latent_dim={m.latent_dim}: the {side}x{side} BigGAN generator splits z into "
                          f"{blocks + 1} equal chunks (one for its input, one per block); use a multiple of "
                          f"{blocks + 1}, e.g. {20 * (blocks + 1)}.")
    g_channels = {_bottom(side) * 2 ** (i + 1): out * b.g_conv_dim for i, (_, out) in enumerate(G_LAYOUT[side])}
    d_channels, s = {}, side
    for mult, down in D_LAYOUT[side]:
        s = s // 2 if down else s
        d_channels.setdefault(s, mult * b.d_conv_dim)
    for key, channels in (("g_attention", g_channels), ("d_attention", d_channels)):
        if b[key] and b[key] not in channels:
            raise ConfigError(f"Config key 'model.biggan.{key}' is {b[key]}, a side no block of the {side}x{side} "
                              f"network has; use 0 or one of {', '.join(map(str, sorted(channels)))}.")
        if b[key] and channels[b[key]] % 8:
            raise ConfigError(f"Config key 'model.biggan.{key}': the attention block at {b[key]}x{b[key]} would have "
                              f"{channels[b[key]]} channels; it needs a multiple of 8 (its keys have C/8): change "
                              f"model.biggan.{key[0]}_conv_dim or switch the attention off.")


def build_generator(m, shape, axis_name, num_classes):
    check_shape(m, shape[0])
    b = m.biggan
    return BigGANGenerator(tuple(shape), b.g_conv_dim, b.shared_dim, b.g_attention, num_classes, axis_name)


def build_discriminator(m, shape, axis_name, num_classes):
    check_shape(m, shape[0])
    b = m.biggan
    return BigGANDiscriminator(b.d_conv_dim, b.d_attention, num_classes)  # no batch norm: no axis to average over


register_generator("biggan", build_generator, config={"biggan": CONFIG}, conditional=True, validate=validate)
register_discriminator("biggan", build_discriminator, config={"biggan": CONFIG}, conditional=True,
                       validate=validate)
