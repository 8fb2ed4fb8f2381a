"""Adversarial losses as pure functions of discriminator logits.

Each loss is a pair `d(real, fake, mean)` and `g(real, fake, mean)` of scalars to
*minimise*. `real` and `fake` are raw discriminator outputs (logits, or critic values for
the Wasserstein loss). `mean` averages over the batch; under `pmap` it averages over the
global batch, which the relativistic loss needs for its batch-mean terms.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Mean = Callable[[jax.Array], jax.Array]
softplus = jax.nn.softplus


class Loss(NamedTuple):
    d: Callable[[jax.Array, jax.Array, Mean], jax.Array]
    g: Callable[[jax.Array, jax.Array, Mean], jax.Array]
    needs_real_in_g: bool = False


# Goodfellow et al. 2014. D maximises E[log D(x)] + E[log(1 - D(G(z)))]; with D = sigmoid(logit),
# -log D = softplus(-logit) and -log(1 - D) = softplus(logit). The non-saturating G maximises
# E[log D(G(z))]; the minimax G minimises E[log(1 - D(G(z)))].
def _d_standard(real, fake, mean):
    return mean(softplus(-real)) + mean(softplus(fake))


NON_SATURATING = Loss(d=_d_standard, g=lambda real, fake, mean: mean(softplus(-fake)))
MINIMAX = Loss(d=_d_standard, g=lambda real, fake, mean: -mean(softplus(fake)))

# Lim & Ye 2017; Miyato et al. 2018.
HINGE = Loss(
    d=lambda real, fake, mean: mean(jax.nn.relu(1.0 - real)) + mean(jax.nn.relu(1.0 + fake)),
    g=lambda real, fake, mean: -mean(fake),
)

# Arjovsky et al. 2017 (pair with reg.gp_weight for WGAN-GP).
WASSERSTEIN = Loss(
    d=lambda real, fake, mean: mean(fake) - mean(real),
    g=lambda real, fake, mean: -mean(fake),
)

# Mao et al. 2017, with targets a = 0 (fake), b = 1 (real), c = 1 (what G wants).
LEAST_SQUARES = Loss(
    d=lambda real, fake, mean: 0.5 * mean((real - 1.0) ** 2) + 0.5 * mean(fake**2),
    g=lambda real, fake, mean: 0.5 * mean((fake - 1.0) ** 2),
)


# Jolicoeur-Martineau 2019, relativistic average standard GAN (RaSGAN).
def _ra_d(real, fake, mean):
    return mean(softplus(-(real - mean(fake)))) + mean(softplus(fake - mean(real)))


def _ra_g(real, fake, mean):
    return mean(softplus(-(fake - mean(real)))) + mean(softplus(real - mean(fake)))


RELATIVISTIC = Loss(d=_ra_d, g=_ra_g, needs_real_in_g=True)

# Jolicoeur-Martineau 2019, relativistic standard GAN (RSGAN; RelGAN's loss): each real logit is
# compared with the fake logit of the same batch position, D_rs(a, b) = sigmoid(a - b).
RELATIVISTIC_STANDARD = Loss(
    d=lambda real, fake, mean: mean(softplus(-(real - fake))),
    g=lambda real, fake, mean: mean(softplus(-(fake - real))),
    needs_real_in_g=True,
)

LOSSES = {
    "non_saturating": NON_SATURATING,
    "minimax": MINIMAX,
    "hinge": HINGE,
    "wasserstein": WASSERSTEIN,
    "least_squares": LEAST_SQUARES,
    "relativistic": RELATIVISTIC,
    "relativistic_standard": RELATIVISTIC_STANDARD,
}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; choose one of {', '.join(LOSSES)}.")
    return LOSSES[name]


def global_mean(axis_name: str | None) -> Mean:
    """The batch mean; over all devices of `axis_name` when given (equal shards assumed)."""
    if axis_name is None:
        return jnp.mean
    return lambda x: jax.lax.pmean(jnp.mean(x), axis_name)
