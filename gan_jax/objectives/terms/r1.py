"""R1 (Mescheder et al. 2018): weight/2 * E[|grad D(x_real)|^2], the squared input-gradient norm
summed over every input element; `reg.r1.weight` (gamma), lazily with `reg.r1.every`."""

import jax.numpy as jnp

from gan_jax.objectives.base import register_term
from gan_jax.objectives.gradients import r1_penalty


def r1(ctx):
    return jnp.mean(r1_penalty(ctx.critic, ctx.real))


register_term("r1", d=r1)
