"""Fully connected generators and discriminators."""

from __future__ import annotations

import math
from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models import register_discriminator, register_generator
from gan_jax.models.layers import Maxout, batch_norm


class MLPGenerator(nn.Module):
    """The seed article's generator: z -> Dense/LeakyReLU x depth -> Dense -> tanh (or linear).

    With width 128, depth 2 and a 784-d output this is z 100 -> 128 -> 128 -> 784.
    """

    output_shape: Sequence[int]
    width: int = 128
    depth: int = 2
    negative_slope: float = 0.2
    tanh: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, train: bool = True):
        h = z
        for _ in range(self.depth):
            h = nn.leaky_relu(nn.Dense(self.width)(h), self.negative_slope)
        out = nn.Dense(math.prod(self.output_shape))(h)
        if self.tanh:
            out = jnp.tanh(out)
        return out.reshape((z.shape[0],) + tuple(self.output_shape))


class MLPDiscriminator(nn.Module):
    """The seed article's discriminator: x -> Dense/LeakyReLU x depth -> Dense 1 (a logit)."""

    width: int = 128
    depth: int = 2
    negative_slope: float = 0.2
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = x.reshape(x.shape[0], -1)
        for _ in range(self.depth):
            h = nn.leaky_relu(nn.Dense(self.width)(h), self.negative_slope)
        out = nn.Dense(1)(h)[:, 0]
        chex.assert_shape(out, (x.shape[0],))
        return out


class PacGANGenerator(nn.Module):
    """PacGAN's 2-D generator: z -> depth x (Dense, BatchNorm, ReLU) -> Dense to the data shape.

    `fourier_features` > 0 appends that many random Fourier features of z to z (see FourierFeatures).
    """

    output_shape: Sequence[int]
    width: int = 400
    depth: int = 4
    axis_name: str | None = None
    fourier_features: int = 0
    fourier_scale: float = 1.0

    @nn.compact
    def __call__(self, z, train: bool = True):
        h = z
        if self.fourier_features:
            h = jnp.concatenate([z, FourierFeatures(self.fourier_features, self.fourier_scale)(z)], axis=-1)
        for _ in range(self.depth):
            h = nn.Dense(self.width)(h)
            h = nn.relu(batch_norm(train, self.axis_name)(h))
        out = nn.Dense(math.prod(self.output_shape))(h)
        return out.reshape((z.shape[0],) + tuple(self.output_shape))


class FourierFeatures(nn.Module):
    """Fixed random Fourier features [cos 2πBx, sin 2πBx], B ~ N(0, scale²) (Tancik et al. 2020).

    An MLP on raw low-dimensional coordinates learns fine detail slowly (its spectral bias);
    these features let a discriminator resolve structure of width ~1/(2π scale) from the start.
    B is drawn once from the parameter seed and never trained (its gradient is stopped).
    """

    num_features: int
    scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        b = self.param("B", nn.initializers.normal(self.scale), (x.shape[-1], self.num_features))
        return jnp.concatenate(cos_sin_cycles(x @ jax.lax.stop_gradient(b)), axis=-1)


# Taylor coefficients of sin and cos, enough for float32 on [-pi/2, pi/2] (next terms < 1e-8).
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(7))
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(7))


def _horner(coefficients, x):
    out = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        out = out * x + c
    return out


def cos_sin_cycles(t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(cos 2πt, sin 2πt) for t in cycles, as polynomials XLA vectorises.

    XLA's CPU `cos` and `sin` took about 12 ns an element, a quarter of the grid25 step. Here the
    whole cycles are removed first (exact, so large t loses no accuracy, unlike 2πt in float32),
    sin and cos of the half angle π(t - round(t)) in [-π/2, π/2] come from their Taylor
    polynomials, and the double-angle formulas give the rest: within 1e-6 of the exact values,
    and differentiable (twice, as WGAN-GP needs) with the derivatives of the same polynomials.
    """
    half = jnp.pi * (t - jnp.round(t))
    half2 = half * half
    s = _horner(_SIN, half2) * half
    c = _horner(_COS, half2)
    return 1 - 2 * s * s, 2 * s * c


class PacGANDiscriminator(nn.Module):
    """PacGAN's 2-D discriminator: depth maxout layers (width units x pieces) -> Dense 1.

    `fourier_features` > 0 appends that many random Fourier features to each (packed) sample's coordinates.
    """

    width: int = 200
    depth: int = 3
    pieces: int = 5
    axis_name: str | None = None
    fourier_features: int = 0
    fourier_scale: float = 1.0
    sample_size: int = 0  # values per data sample (0: the whole input is one sample)

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = x.reshape(x.shape[0], -1)
        if self.fourier_features:
            # A packed input holds its pack samples interleaved on the last axis (state.pack_input):
            # [N, size * pack] -> [N, pack, size], the same features for each sample, then flattened.
            size = self.sample_size or h.shape[-1]
            pack = h.shape[-1] // size
            h = jnp.swapaxes(h.reshape(h.shape[0], size, pack), 1, 2)
            h = jnp.concatenate([h, FourierFeatures(self.fourier_features, self.fourier_scale)(h)], axis=-1)
            h = h.reshape(h.shape[0], -1)
        for _ in range(self.depth):
            h = Maxout(self.width, self.pieces)(h)
        return nn.Dense(1)(h)[:, 0]


def _check_fourier(model, config):
    for side in ("g", "d"):
        key = f"{side}_fourier_features"
        if key in model and model[key] < 0:
            raise ConfigError(f"Config key 'model.{key}' must be >= 0 (0: no features), got {model[key]}.")
        if f"{side}_fourier_scale" in model and model[f"{side}_fourier_scale"] <= 0:
            raise ConfigError(f"Config key 'model.{side}_fourier_scale' must be positive, got "
                              f"{model[f'{side}_fourier_scale']}.")


register_generator("mlp", lambda m, shape, axis, classes: MLPGenerator(shape, m.g_width, m.g_depth, axis_name=axis))
register_discriminator("mlp", lambda m, shape, axis, classes: MLPDiscriminator(m.d_width, m.d_depth, axis_name=axis))
register_generator(
    "pacgan_mlp", lambda m, shape, axis, classes: PacGANGenerator(
        shape, m.g_width, m.g_depth, axis_name=axis, fourier_features=m.g_fourier_features,
        fourier_scale=m.g_fourier_scale),
    # Random Fourier features of the latent z (0 = z alone), and their frequency scale (cycles per unit of z).
    config={"g_fourier_features": 0, "g_fourier_scale": 1.0}, validate=_check_fourier)
register_discriminator(
    "pacgan_maxout", lambda m, shape, axis, classes: PacGANDiscriminator(
        m.d_width, m.d_depth, m.maxout_pieces, axis_name=axis, fourier_features=m.d_fourier_features,
        fourier_scale=m.d_fourier_scale, sample_size=math.prod(shape)),
    # Random Fourier features of the input (0 = raw input), and their scale (cycles per data unit).
    config={"maxout_pieces": 5, "d_fourier_features": 0, "d_fourier_scale": 1.0}, validate=_check_fourier)
