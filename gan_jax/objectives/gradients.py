"""Input-gradient penalties of a scalar-output critic `f(x) -> [B]`, per sample: the pieces of
R1, R2 and WGAN-GP."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Critic = Callable[[jax.Array], jax.Array]


def per_sample_grads(critic: Critic, x: jax.Array) -> jax.Array:
    """[B, prod(sample shape)]: each sample's gradient of the critic, flattened."""
    # Samples are independent inputs of the critic, so the gradient of the sum gives
    # every sample's own gradient in one backward pass.
    grads = jax.grad(lambda inputs: jnp.sum(critic(inputs)))(x)
    return grads.reshape(grads.shape[0], -1)


def squared_grad_norm(critic: Critic, x: jax.Array) -> jax.Array:
    """|grad f(x)|^2 per sample [B], summed over every input element (pixels and channels)."""
    return jnp.sum(per_sample_grads(critic, x).astype(jnp.float32) ** 2, axis=1)


def gradient_penalty(critic: Critic, real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): (|grad f(x_hat)|_2 - 1)^2 per sample [B],
    x_hat = eps * real + (1 - eps) * fake, with `eps` [B] in [0, 1]."""
    eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    return (jnp.sqrt(squared_grad_norm(critic, x_hat) + 1e-12) - 1.0) ** 2


def r1_penalty(critic: Critic, real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al. 2018): 0.5 * |grad f(x_real)|^2 per sample [B]; weight it by gamma."""
    return 0.5 * squared_grad_norm(critic, real)
