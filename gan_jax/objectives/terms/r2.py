"""R2 (Mescheder et al. 2018): weight/2 * E[|grad D(x_fake)|^2], the squared input-gradient norm of
D at generated samples, summed over every input element; `reg.r2.weight` (gamma), lazily with
`reg.r2.every`. With `reg.r1.weight` at the same gamma it gives R3GAN's gamma/2 * (R1 + R2).

The gradient is taken at the fakes as D sees them in its update (after the fake batch's
augmentation draw, with the fake labels)."""

import jax.numpy as jnp

from gan_jax.objectives.base import register_term
from gan_jax.objectives.gradients import squared_grad_norm


def r2(ctx):
    return jnp.mean(0.5 * squared_grad_norm(ctx.fake_critic, ctx.fake))


register_term("r2", d=r2)
