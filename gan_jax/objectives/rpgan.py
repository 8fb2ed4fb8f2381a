"""The relativistic pairing loss of R3GAN (RpGAN; Huang et al. 2024, after Jolicoeur-Martineau 2019):
each real sample is paired with the fake sample at the same batch position, and D is asked
how much more real the real one is:

    D loss  E[softplus(-(D(x_r) - D(x_f)))],    G loss  E[softplus(-(D(x_f) - D(x_r)))].

`--config.loss=rpgan`; with R1 and R2 (`reg.r1.weight`, `reg.r2.weight` at gamma) it is R3GAN's
objective. The pairs are position by position: under pmap each device pairs its own rows, which
are the same pairs. The relativistic standard GAN (RSGAN, Jolicoeur-Martineau 2019; RelGAN's
loss) is the same pair of losses, registered here under its own name too.
"""

import jax

from gan_jax.objectives.base import register_loss


def d_loss(real, fake, mean):
    return mean(jax.nn.softplus(-(real - fake)))


def g_loss(real, fake, mean):
    return mean(jax.nn.softplus(-(fake - real)))


register_loss("rpgan", d=d_loss, g=g_loss, needs_real_in_g=True)
register_loss("relativistic_standard", d=d_loss, g=g_loss, needs_real_in_g=True)
