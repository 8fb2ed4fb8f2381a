"""WGAN-GP (Gulrajani et al. 2017): weight * E[(|grad D(x_hat)| - 1)^2] at random interpolates
x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample; `reg.gp.weight`."""

import jax
import jax.numpy as jnp

from gan_jax.objectives.base import register_term
from gan_jax.objectives.gradients import gradient_penalty


def gp(ctx):
    eps = ctx.per_sample(ctx.key, lambda key, n: jax.random.uniform(key, (n,)))
    return jnp.mean(gradient_penalty(ctx.critic, ctx.real, ctx.fake, eps))


register_term("gp", d=gp)
