"""ResNet SNGAN generator and discriminator (Miyato et al. 2018), 32x32 and 64x64.

32x32 (the CIFAR-10 networks of the SNGAN paper and of Mimicry/StudioGAN): G maps z to a
4x4x`width` map, three up-sampling residual blocks of `width` channels, then BN, ReLU, a 3x3
conv to the image channels and tanh. D has an optimised first block and three residual blocks
of `width` channels (the first two down-sample), ReLU, global sum pooling and a linear layer;
every D layer is spectrally normalised. 64x64: G halves its channels at each of four
up-samplings from `width` (1024 in the paper); D doubles them over five blocks up to `width`.

Conditioning: `num_classes > 0` gives G conditional batch norm and D either a projection
term <embed(y), phi(x)> (Miyato & Koyama 2018) or an auxiliary classifier head (ACGAN).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import register_discriminator, register_generator
from gan_jax.models.layers import (
    ConditionalBatchNorm,
    SNConv,
    SNDense,
    SNEmbed,
    batch_norm,
)


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x up-sampling (NHWC)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: jax.Array) -> jax.Array:
    """2x2 average pooling (NHWC)."""
    return nn.avg_pool(x, (2, 2), (2, 2))


class _Norm(nn.Module):
    """BatchNorm, or conditional BatchNorm when there are classes."""

    num_classes: int
    axis_name: str | None

    @nn.compact
    def __call__(self, x, y, train):
        if self.num_classes:
            return ConditionalBatchNorm(self.num_classes, self.axis_name)(x, y, train)
        return batch_norm(train, self.axis_name)(x)


class GBlock(nn.Module):
    features: int
    num_classes: int = 0
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, y, train):
        h = nn.relu(_Norm(self.num_classes, self.axis_name)(x, y, train))
        h = SNConv(self.features, spectral=False)(_upsample(h))
        h = nn.relu(_Norm(self.num_classes, self.axis_name)(h, y, train))
        h = SNConv(self.features, spectral=False)(h)
        shortcut = SNConv(self.features, (1, 1), padding="VALID", spectral=False)(_upsample(x))
        return h + shortcut


class DBlock(nn.Module):
    features: int
    downsample: bool
    optimized: bool = False  # the first block: no ReLU before its first conv, pool before the shortcut conv
    spectral: bool = True

    @nn.compact
    def __call__(self, x, train):
        h = x if self.optimized else nn.relu(x)
        h = SNConv(self.features, spectral=self.spectral)(h, train)
        h = SNConv(self.features, spectral=self.spectral)(nn.relu(h), train)
        if self.downsample:
            h = _downsample(h)
        shortcut = x
        if self.optimized:
            shortcut = SNConv(self.features, (1, 1), padding="VALID", spectral=self.spectral)(_downsample(x), train)
        elif self.downsample or x.shape[-1] != self.features:
            shortcut = SNConv(self.features, (1, 1), padding="VALID", spectral=self.spectral)(x, train)
            if self.downsample:
                shortcut = _downsample(shortcut)
        return h + shortcut


def _layout(resolution: int) -> int:
    if resolution not in (32, 64):
        raise ValueError(f"The SNGAN ResNet is defined for 32x32 and 64x64 images, not {resolution}x{resolution}; "
                         "set --config.data.resolution=32 or 64.")
    return resolution


class SNGANGenerator(nn.Module):
    output_shape: Sequence[int]  # (H, W, C)
    width: int = 256
    num_classes: int = 0
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, y=None, train: bool = True):
        resolution = _layout(self.output_shape[0])
        if resolution == 32:
            channels = [self.width] * 4
        else:
            channels = [self.width // 2**i for i in range(5)]
        h = nn.Dense(4 * 4 * channels[0], kernel_init=nn.initializers.xavier_uniform())(z)
        h = h.reshape((z.shape[0], 4, 4, channels[0]))
        for c in channels[1:]:
            h = GBlock(c, self.num_classes, self.axis_name)(h, y, train)
        h = nn.relu(batch_norm(train, self.axis_name)(h))
        h = SNConv(self.output_shape[-1], spectral=False)(h)
        return jnp.tanh(h)


class SNGANDiscriminator(nn.Module):
    """Returns logits [B]; with `head="acgan"`, (logits [B], class logits [B, num_classes])."""

    width: int = 128
    num_classes: int = 0
    head: str = "projection"  # projection | acgan (only with num_classes > 0)
    spectral: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, y=None, train: bool = True):
        resolution = _layout(x.shape[1])
        if resolution == 32:
            blocks = [(self.width, True), (self.width, True), (self.width, False), (self.width, False)]
        else:
            blocks = [(self.width // 2**i, True) for i in (4, 3, 2, 1, 0)]
        h = x
        for i, (c, down) in enumerate(blocks):
            h = DBlock(c, down, optimized=i == 0, spectral=self.spectral)(h, train)
        features = jnp.sum(nn.relu(h), axis=(1, 2))  # global sum pooling
        logits = SNDense(1, spectral=self.spectral)(features, train)[:, 0]
        if self.num_classes and self.head == "projection":
            embed = SNEmbed(self.num_classes, features.shape[-1], spectral=self.spectral)(y, train)
            logits = logits + jnp.sum(embed * features, axis=-1)
        elif self.num_classes and self.head == "acgan":
            class_logits = SNDense(self.num_classes, spectral=self.spectral)(features, train)
            return logits, class_logits
        return logits


register_generator("sngan_resnet", lambda m, shape, axis, classes: SNGANGenerator(shape, m.g_width, classes,
                                                                                 axis_name=axis), conditional=True)
register_discriminator("sngan_resnet", lambda m, shape, axis, classes: SNGANDiscriminator(
    m.d_width, classes, m.conditioning, axis_name=axis), conditional=True)
