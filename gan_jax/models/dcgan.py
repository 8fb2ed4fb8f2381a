"""DCGAN (Radford et al. 2016) generators and discriminators at 28, 32 and 64 pixels.

At 28 pixels with width 64 these are the `dcgan_mnist` networks of `gan-jax benchmark` (docs/results/benchmark.md):
G: z -> Dense 7*7*128, BN, ReLU -> up 64, BN, ReLU -> up C, tanh;
D: Conv 64 k4 s2, LReLU 0.2 -> Conv 128 k4 s2, LReLU 0.2 -> Dense 1.
32 and 64 pixels start from 4x4 and add one up (down) block per doubling, doubling the
channels of the innermost block each time.
"""

from __future__ import annotations

from typing import Sequence

import chex
import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import register_discriminator, register_generator
from gan_jax.models.layers import batch_norm
from gan_jax.models.upsample import upsample_layer

# Image side -> (side of the first feature map, number of 2x up/down blocks).
LAYOUTS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}


def layout(side: int) -> tuple[int, int]:
    if side not in LAYOUTS:
        raise ValueError(f"DCGAN supports {', '.join(map(str, LAYOUTS))}-pixel square images, got side {side}; "
                         "resize the data (config key 'data') or choose another model.")
    return LAYOUTS[side]


class DCGANGenerator(nn.Module):
    """z [B, latent] -> images [B, H, W, C] in [-1, 1]."""

    output_shape: Sequence[int]  # (H, W, C), H == W in LAYOUTS
    width: int = 64  # channels of the last hidden block; each block inwards doubles them
    upsample: str = "conv_transpose"  # see gan_jax.models.upsample.UPSAMPLERS
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, train: bool = True):
        h_out, w_out, c_out = self.output_shape
        if h_out != w_out:
            raise ValueError(f"DCGAN needs square images, got {h_out}x{w_out}.")
        start, blocks = layout(h_out)
        channels = self.width * 2 ** (blocks - 1)
        h = nn.Dense(start * start * channels)(z)
        h = nn.relu(batch_norm(train, self.axis_name)(h))
        h = h.reshape((z.shape[0], start, start, channels))
        for _ in range(blocks - 1):
            channels //= 2
            h = upsample_layer(self.upsample, channels)(h)
            h = nn.relu(batch_norm(train, self.axis_name)(h))
        out = jnp.tanh(upsample_layer(self.upsample, c_out)(h))
        chex.assert_shape(out, (z.shape[0], h_out, w_out, c_out))
        return out


class DCGANDiscriminator(nn.Module):
    """images [B, H, W, C] -> logits [B]; strided 4x4 convs with leaky ReLU, no normalisation."""

    width: int = 64  # channels of the first block; each block doubles them
    negative_slope: float = 0.2
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        if x.ndim != 4:
            raise ValueError(f"DCGAN discriminator needs images [B, H, W, C], got shape {x.shape}.")
        _, blocks = layout(x.shape[1])
        h = x
        for i in range(blocks):
            h = nn.Conv(self.width * 2**i, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(h)
            h = nn.leaky_relu(h, self.negative_slope)
        out = nn.Dense(1)(h.reshape((x.shape[0], -1)))[:, 0]
        chex.assert_shape(out, (x.shape[0],))
        return out


register_generator("dcgan", lambda m, shape, axis, classes: DCGANGenerator(shape, m.g_width, m.upsample, axis_name=axis),
                   # conv_transpose | conv_transpose_direct | subpixel | resize_conv (gan_jax/models/upsample.py)
                   config={"upsample": "conv_transpose"})
register_discriminator("dcgan", lambda m, shape, axis, classes: DCGANDiscriminator(m.d_width, axis_name=axis))
