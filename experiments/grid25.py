"""grid25: 25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (PacGAN Table 1), with PacGAN's networks.

Variants: `experiments/grid25.py:loss=hinge,pack=2` (comma-separated key=value overrides of any
config key), and `runlocal` for a seconds-long smoke run.
"""

from gan_jax.config import default_config, lock, parse_arg
from gan_jax.sweep import product, seeds, zip_

# PacGAN-Table-1-style study: four losses, WGAN with its gradient penalty and 5 critic steps.
LOSSES = zip_(
    loss=["non_saturating", "hinge", "wasserstein", "least_squares"],
    **{"reg.gp_weight": [0.0, 0.0, 10.0, 0.0], "n_critic": [1, 1, 5, 1]},
)


def get_config(arg=None):
    c = default_config()
    c.data.source = "synthetic:grid25"
    c.model.generator = "pacgan_mlp"
    c.model.discriminator = "pacgan_maxout"
    c.model.latent_dim = 2
    c.batch_size = 100
    c.num_steps = 15_000
    c.steps_per_dispatch = 50
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.loss = "non_saturating"
    c.pack = 4
    c.optim.g_lr = 1e-4
    c.optim.d_lr = 1e-4
    c.optim.b1 = 0.8
    parse_arg(c, arg)
    return lock(c)


def get_sweep(arg=None):
    """losses x seeds; `arg` is the number of seeds (default 10)."""
    return product(LOSSES, seeds(int(arg) if arg else 10))
