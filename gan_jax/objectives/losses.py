"""The classic adversarial losses, as pure functions of raw discriminator outputs.

Each loss is a pair `d(real, fake, mean)` and `g(real, fake, mean)` of scalars to *minimise*.
`real` and `fake` are raw discriminator outputs (logits, or critic values for the Wasserstein
loss). `mean` averages over the batch; under `pmap` it averages over the global batch, which
the relativistic loss needs for its batch-mean terms.
"""

from __future__ import annotations

import jax

from gan_jax.objectives.base import register_loss

softplus = jax.nn.softplus


# Goodfellow et al. 2014. D maximises E[log D(x)] + E[log(1 - D(G(z)))]; with D = sigmoid(logit),
# -log D = softplus(-logit) and -log(1 - D) = softplus(logit). The non-saturating G maximises
# E[log D(G(z))]; the minimax G minimises E[log(1 - D(G(z)))].
def _d_standard(real, fake, mean):
    return mean(softplus(-real)) + mean(softplus(fake))


register_loss("non_saturating", d=_d_standard, g=lambda real, fake, mean: mean(softplus(-fake)))
register_loss("minimax", d=_d_standard, g=lambda real, fake, mean: -mean(softplus(fake)))

# Lim & Ye 2017; Miyato et al. 2018.
register_loss("hinge", d=lambda real, fake, mean: mean(jax.nn.relu(1.0 - real)) + mean(jax.nn.relu(1.0 + fake)),
              g=lambda real, fake, mean: -mean(fake))

# Arjovsky et al. 2017 (pair with reg.gp.weight for WGAN-GP).
register_loss("wasserstein", d=lambda real, fake, mean: mean(fake) - mean(real), g=lambda real, fake, mean: -mean(fake))

# Mao et al. 2017, with targets a = 0 (fake), b = 1 (real), c = 1 (what G wants).
register_loss("least_squares", d=lambda real, fake, mean: 0.5 * mean((real - 1.0) ** 2) + 0.5 * mean(fake**2),
              g=lambda real, fake, mean: 0.5 * mean((fake - 1.0) ** 2))


# Jolicoeur-Martineau 2019, relativistic average standard GAN (RaSGAN).
def _ra_d(real, fake, mean):
    return mean(softplus(-(real - mean(fake)))) + mean(softplus(fake - mean(real)))


def _ra_g(real, fake, mean):
    return mean(softplus(-(fake - mean(real)))) + mean(softplus(real - mean(fake)))


register_loss("relativistic", d=_ra_d, g=_ra_g, needs_real_in_g=True)
