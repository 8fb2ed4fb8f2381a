"""Generator upsampling layers: the 4x4 stride-2 transposed convolution and its alternatives.

`ConvTranspose4x4` computes exactly flax's `nn.ConvTranspose(features, (4, 4), strides=(2, 2),
padding="SAME")` (PyTorch's `ConvTranspose2d(k=4, s=2, p=1)` up to a kernel flip), with the same
parameters, but as stride-1 convolutions whose outputs are interleaved: each of the four output
phases (even/odd row, even/odd column) is a 2x2 convolution of the input with the kernel taps that
phase reads. The direct form convolves a zero-dilated input, and XLA on CPU differentiates it
several times slower than these forms, which touch no inserted zeros. With a single output channel
the four phases run as one 3x3 convolution to 4 channels (zero taps included) and a depth-to-space
rearrangement instead: four one-channel convolutions are slower than one with four channels.

`SubPixelUp` (Shi et al. 2016) and `ResizeConvUp` (Odena et al. 2016) are different layers with
their own parameters, offered as named options, not as replacements.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")

# Output row 2i + a of the transposed conv reads input rows i - 1, i, i + 1 (offset index 0, 1, 2)
# through kernel rows _TAPS[a][offset]; 4 marks a tap that phase does not use (a zero row).
_TAPS = np.array([[0, 2, 4], [4, 1, 3]])


def depth_to_space(y: jax.Array, block: int) -> jax.Array:
    """[B, H, W, block*block*C] -> [B, H*block, W*block, C], channels ordered (row, col, C)."""
    b, h, w, c = y.shape
    c //= block * block
    y = y.reshape(b, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, h * block, w * block, c)


def phase_kernel(kernel: jax.Array) -> jax.Array:
    """A [4, 4, I, O] transposed-conv kernel as the [3, 3, I, 4*O] kernel of its four output phases."""
    k = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # row/column 4 is the zero tap
    k = k[_TAPS][:, :, _TAPS]  # [a, dy, b, dx, I, O]
    i, o = kernel.shape[2:]
    return k.transpose(1, 3, 4, 0, 2, 5).reshape(3, 3, i, 4 * o)


def conv_transpose_4x4_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`lax.conv_transpose(x, kernel, (2, 2), "SAME")` for a 4x4 kernel, from stride-1 convolutions."""
    if kernel.shape[-1] == 1:
        y = lax.conv_general_dilated(x, phase_kernel(kernel), (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DIMS)
        return depth_to_space(y, 2)
    b, h, w, _ = x.shape
    i, o = kernel.shape[2:]
    # Output row 2r + a reads input rows r - 1 + a and r + a through kernel rows a and 2 + a: phase
    # (a, c)'s kernel is kernel[a::2, c::2], and padding (1 - a, a) lines its taps up.
    taps = kernel.reshape(2, 2, 2, 2, i, o)  # [row tap, a, column tap, c, I, O]
    rows = [jnp.stack([lax.conv_general_dilated(x, taps[:, a, :, c], (1, 1), ((1 - a, a), (1 - c, c)),
                                                dimension_numbers=_DIMS) for c in range(2)], axis=3)
            for a in range(2)]  # each [B, H, W, 2 (c), O]
    return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, o)  # [B, H, 2 (a), W, 2 (c), O]


class ConvTranspose4x4(nn.Module):
    """`nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")`, same params, faster on CPU.

    With `direct=True` it runs `lax.conv_transpose` as `nn.ConvTranspose` does (the reference, for
    comparisons); the parameters are the same either way.
    """

    features: int
    direct: bool = False
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if self.direct:  # what nn.ConvTranspose computes
            y = lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=_DIMS)
        else:
            y = conv_transpose_4x4_s2(x, kernel)
        return y + bias


class SubPixelUp(nn.Module):
    """2x upsampling by a 3x3 conv to 4x the channels, then depth-to-space (Shi et al. 2016)."""

    features: int

    @nn.compact
    def __call__(self, x):
        return depth_to_space(nn.Conv(4 * self.features, (3, 3), padding=1)(x), 2)


class ResizeConvUp(nn.Module):
    """2x nearest-neighbour upsampling, then a 3x3 conv (Odena et al. 2016; no checkerboard)."""

    features: int

    @nn.compact
    def __call__(self, x):
        x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        return nn.Conv(self.features, (3, 3), padding=1)(x)


UPSAMPLERS = ("conv_transpose", "conv_transpose_direct", "subpixel", "resize_conv")


def upsample_layer(kind: str, features: int) -> nn.Module:
    """The 2x upsampling layer named `kind` (one of UPSAMPLERS)."""
    if kind == "conv_transpose":
        return ConvTranspose4x4(features)
    if kind == "conv_transpose_direct":
        return ConvTranspose4x4(features, direct=True)
    if kind == "subpixel":
        return SubPixelUp(features)
    if kind == "resize_conv":
        return ResizeConvUp(features)
    raise ValueError(f"Unknown upsampling {kind!r} (config key 'model.upsample'); use one of {', '.join(UPSAMPLERS)}.")
