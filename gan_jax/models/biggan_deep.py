"""BigGAN-deep's generator and discriminator (Brock et al. 2019, appendix B), laid out as
PyTorch-StudioGAN's `big_resnet_deep_legacy` builds them (the backbone its CIFAR-10 BigGAN-Deep.yaml
selects). Registered as "biggan_deep"; the widths, shared embedding and attention sides are the
`model.biggan` keys, read as BigGAN reads them, plus `model.biggan_deep.blocks_per_resolution`.

G: z is not split. The conditioning vector is [shared class embedding, z] (z alone without
classes); a linear layer (with bias) maps the whole vector to a 4x4 map, and every block's four
class-conditional batch norms take their gains and biases from that same vector. Each resolution
has `blocks_per_resolution` bottleneck blocks: BN-ReLU-conv1x1 (to a quarter of the input
channels) - BN-ReLU(-up)-conv3x3 - BN-ReLU-conv3x3 - BN-ReLU-conv1x1 (to the output channels); the
shortcut keeps the input's first output-channels channels (the channel-dropping shortcut) and
up-samples. Only a resolution's last block up-samples and changes the channels. Self-attention
follows the resolution whose output is `model.biggan.g_attention` pixels. Then BN, ReLU, a 3x3
conv and tanh, as in BigGAN.

D: a 3x3 conv from the image, then per resolution `blocks_per_resolution` bottleneck blocks
ReLU-conv1x1 (to a quarter of the output channels) - ReLU-conv3x3 - ReLU-conv3x3 - ReLU(-pool) -
conv1x1; only a resolution's first block pools and changes the channels, and its shortcut (pooled)
is [x, conv1x1(x)] when the channels grow (the channel-adding shortcut). Self-attention after the
first resolution whose output is `model.biggan.d_attention` pixels; ReLU, global sum pooling, a
linear layer and the projection head, as in BigGAN. Spectral norm and orthogonal initialisation
everywhere but G's shared embedding.

The reference's in-place ReLU is kept in D as in BigGAN: every block's shortcut starts from relu(x).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models import register_discriminator, register_generator
from gan_jax.models import biggan
from gan_jax.models.biggan import (
    ConditionalBatchNorm,
    SelfAttention,
    SNClassEmbed,
    _avg_pool,
    _batch_norm,
    _conv,
    _upsample,
    ortho,
)
from gan_jax.models.layers import SNDense

# `model.biggan_deep` defaults: StudioGAN's g_depth = d_depth = 2 (BigGAN-Deep.yaml).
DEEP_CONFIG = {"blocks_per_resolution": 2}

# Per resolution, as multiples of the base channels: G's (input, output) channels of each
# resolution, from a 4x4 map (BigGAN's layout); D's first conv's output and each resolution's
# (output channels, down-samples).
G_LAYOUT = {side: biggan.G_LAYOUT[side] for side in (32, 64, 128, 256)}
D_LAYOUT = {
    32: (4, ((4, True), (4, True), (4, False))),
    64: (1, ((2, True), (4, True), (8, True), (16, True))),
    128: (1, ((2, True), (4, True), (8, True), (16, True), (16, True))),
    256: (1, ((2, True), (4, True), (8, True), (8, True), (16, True), (16, True))),
}
BOTTOM = 4
RATIO = 4  # a bottleneck's hidden channels: a quarter of G's input or of D's output channels


def _check_resolution(side: int) -> None:
    if side not in G_LAYOUT:
        raise ConfigError(f"the BigGAN-deep networks are defined for {', '.join(f'{s}x{s}' for s in G_LAYOUT)} "
                          f"images, not {side}x{side}; set --config.data.resolution to one of {sorted(G_LAYOUT)}.")


class DeepGBlock(nn.Module):
    features: int
    upsample: bool
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, c, train):
        hidden = x.shape[-1] // RATIO
        shortcut = x[..., :self.features]  # drops channels when the block narrows

        def bn_relu(h, name):
            return nn.relu(ConditionalBatchNorm(self.axis_name, name=name)(h, c, train))

        h = _conv(hidden, 1, name="conv1")(bn_relu(x, "bn1"), train)
        h = bn_relu(h, "bn2")
        if self.upsample:
            h, shortcut = _upsample(h), _upsample(shortcut)
        h = _conv(hidden, name="conv2")(h, train)
        h = _conv(hidden, name="conv3")(bn_relu(h, "bn3"), train)
        h = _conv(self.features, 1, name="conv4")(bn_relu(h, "bn4"), train)
        return h + shortcut


class DeepDBlock(nn.Module):
    features: int
    downsample: bool

    @nn.compact
    def __call__(self, x, train):
        hidden = self.features // RATIO
        x = nn.relu(x)  # the reference's in-place ReLU: the shortcut sees relu(x) too
        h = _conv(hidden, 1, name="conv1")(x, train)
        h = _conv(hidden, name="conv2")(nn.relu(h), train)
        h = nn.relu(_conv(hidden, name="conv3")(nn.relu(h), train))
        shortcut = x
        if self.downsample:
            h, shortcut = _avg_pool(h), _avg_pool(shortcut)
        h = _conv(self.features, 1, name="conv4")(h, train)
        if shortcut.shape[-1] != self.features:
            extra = _conv(self.features - shortcut.shape[-1], 1, name="conv0")(shortcut, train)
            shortcut = jnp.concatenate([shortcut, extra], axis=-1)
        return h + shortcut


class BigGANDeepGenerator(nn.Module):
    """z [B, latent] (and labels y [B] when `num_classes`) -> images [B, H, W, C] in [-1, 1]."""

    output_shape: Sequence[int]  # (H, W, C)
    conv_dim: int = 128
    shared_dim: int = 128
    attention: int = 16
    num_classes: int = 0
    blocks_per_resolution: int = 2
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, y=None, train: bool = True):
        side = self.output_shape[0]
        _check_resolution(side)
        layout = G_LAYOUT[side]
        c = z
        if self.num_classes:
            if y is None:
                raise ValueError("this BigGAN-deep generator is class-conditional: pass labels y.")
            shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=ortho, name="shared")(y)
            c = jnp.concatenate([shared.astype(z.dtype), z], axis=-1)
        c0 = layout[0][0] * self.conv_dim
        h = SNDense(c0 * BOTTOM * BOTTOM, kernel_init=ortho, name="linear0")(c, train)
        h = h.reshape(z.shape[0], c0, BOTTOM, BOTTOM).transpose(0, 2, 3, 1)  # the reference's [C, 4, 4] layout
        k = 0
        for in_mult, out_mult in layout:
            for j in range(self.blocks_per_resolution):
                last = j == self.blocks_per_resolution - 1
                features = (out_mult if last else in_mult) * self.conv_dim
                h = DeepGBlock(features, last, self.axis_name, name=f"block{k}")(h, c, train)
                k += 1
            if h.shape[1] == self.attention:
                h = SelfAttention(name="attention")(h, train)
        h = nn.relu(_batch_norm(train, self.axis_name, affine=True, name="bn")(h))
        return jnp.tanh(_conv(self.output_shape[-1], name="conv_out")(h, train))


class BigGANDeepDiscriminator(nn.Module):
    """images [B, H, W, C] (and labels y [B] when `num_classes`) -> logits [B]."""

    conv_dim: int = 128
    attention: int = 16
    num_classes: int = 0
    blocks_per_resolution: int = 2

    @nn.compact
    def __call__(self, x, y=None, train: bool = True):
        _check_resolution(x.shape[1])
        in_mult, layout = D_LAYOUT[x.shape[1]]
        h = _conv(in_mult * self.conv_dim, name="conv_in")(x, train)
        attended, k = False, 0
        for out_mult, down in layout:
            for j in range(self.blocks_per_resolution):
                h = DeepDBlock(out_mult * self.conv_dim, down and j == 0, name=f"block{k}")(h, train)
                k += 1
            if h.shape[1] == self.attention and not attended:
                h = SelfAttention(name="attention")(h, train)
                attended = True
        features = jnp.sum(nn.relu(h), axis=(1, 2))
        logits = SNDense(1, kernel_init=ortho, name="linear")(features, train)[:, 0]
        if self.num_classes:
            if y is None:
                raise ValueError("this BigGAN-deep discriminator is class-conditional: pass labels y.")
            embed = SNClassEmbed(self.num_classes, features.shape[-1], name="embed")(y, train)
            logits = logits + jnp.sum(embed.astype(features.dtype) * features, axis=-1)
        return logits


def validate(model_config, config) -> None:
    biggan.validate(model_config, config)
    depth = model_config.biggan_deep.blocks_per_resolution
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ConfigError("Config key 'model.biggan_deep.blocks_per_resolution' must be a positive integer, got "
                          f"{depth!r}.")


def _sides(side: int, b) -> tuple[dict, dict]:
    """{output side of a resolution: its channels} for G and D (the attention blocks' candidates)."""
    g = {BOTTOM * 2 ** (i + 1): out * b.g_conv_dim for i, (_, out) in enumerate(G_LAYOUT[side])}
    d, s = {}, side
    for mult, down in D_LAYOUT[side][1]:
        s = s // 2 if down else s
        d.setdefault(s, mult * b.d_conv_dim)
    return g, d


def check_shape(m, side: int) -> None:
    """The checks that need the image side: the layout, the bottlenecks' widths and the attention sides."""
    _check_resolution(side)
    b = m.biggan
    narrowest = {"g_conv_dim": min(i for i, _ in G_LAYOUT[side]) * b.g_conv_dim,
                 "d_conv_dim": min(o for o, _ in D_LAYOUT[side][1]) * b.d_conv_dim}
    for key, channels in narrowest.items():
        if channels < RATIO:
            raise ConfigError(f"Config key 'model.biggan.{key}' is {b[key]}: the narrowest {side}x{side} BigGAN-deep "
                              f"block would have {channels} channels and {channels // RATIO} in its bottleneck; "
                              f"raise it so that every block has at least {RATIO} channels.")
    for key, channels in zip(("g_attention", "d_attention"), _sides(side, b)):
        if b[key] and b[key] not in channels:
            raise ConfigError(f"Config key 'model.biggan.{key}' is {b[key]}, a side no resolution of the {side}x{side} "
                              f"BigGAN-deep network ends at; use 0 or one of {', '.join(map(str, sorted(channels)))}.")
        if b[key] and channels[b[key]] % 8:
            raise ConfigError(f"Config key 'model.biggan.{key}': the attention block at {b[key]}x{b[key]} would have "
                              f"{channels[b[key]]} channels; it needs a multiple of 8 (its keys have C/8): change "
                              f"model.biggan.{key[0]}_conv_dim or switch the attention off.")


def build_generator(m, shape, axis_name, num_classes):
    check_shape(m, shape[0])
    b = m.biggan
    return BigGANDeepGenerator(tuple(shape), b.g_conv_dim, b.shared_dim, b.g_attention, num_classes,
                               m.biggan_deep.blocks_per_resolution, axis_name)


def build_discriminator(m, shape, axis_name, num_classes):
    check_shape(m, shape[0])
    b = m.biggan
    return BigGANDeepDiscriminator(b.d_conv_dim, b.d_attention, num_classes, m.biggan_deep.blocks_per_resolution)


# The same `model.biggan` dict as "biggan" (a key declared twice must agree): the widths and
# attention sides mean the same thing in both networks.
_KEYS = {"biggan": biggan.CONFIG, "biggan_deep": DEEP_CONFIG}
register_generator("biggan_deep", build_generator, config=_KEYS, conditional=True, validate=validate)
register_discriminator("biggan_deep", build_discriminator, config=_KEYS, conditional=True, validate=validate)
