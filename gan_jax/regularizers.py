"""Discriminator regularizers, each a pure function of a scalar-output critic `f(x) -> [B]`."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Critic = Callable[[jax.Array], jax.Array]


def _per_sample_grads(critic: Critic, x: jax.Array) -> jax.Array:
    # Samples are independent inputs of the critic, so the gradient of the sum gives
    # every sample's own gradient in one backward pass.
    grads = jax.grad(lambda inputs: jnp.sum(critic(inputs)))(x)
    return grads.reshape(grads.shape[0], -1)


def gradient_penalty(critic: Critic, real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): E[(|grad f(x_hat)|_2 - 1)^2], x_hat = eps*real + (1-eps)*fake.

    `eps` has shape [B] with values in [0, 1]. Returns the per-sample penalties [B].
    """
    eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    norms = jnp.sqrt(jnp.sum(_per_sample_grads(critic, x_hat) ** 2, axis=1) + 1e-12)
    return (norms - 1.0) ** 2


def r1_penalty(critic: Critic, real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al. 2018): 0.5 * |grad f(x_real)|^2 per sample [B]; weight it by gamma."""
    return 0.5 * jnp.sum(_per_sample_grads(critic, real) ** 2, axis=1)
