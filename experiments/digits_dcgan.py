"""DCGAN on scikit-learn's bundled 8x8 digits, resized to 32x32: an image GAN with no download at all.

1,797 real handwritten digits (10 classes) ship inside scikit-learn, so this experiment runs
on an air-gapped laptop in a few minutes. Variants: `runlocal`, and `key=value` overrides.
"""

from gan_jax.config import default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "digits"
    c.data.resolution = 32
    c.model.generator = "dcgan"
    c.model.discriminator = "dcgan"
    c.model.latent_dim = 64
    c.model.g_width = 32
    c.model.d_width = 32
    c.batch_size = 64
    c.num_steps = 3_000
    c.steps_per_dispatch = 1  # XLA CPU runs convolutions inside lax.scan ~30x slower
    c.log_every_steps = 250
    c.eval_every_steps = 1_000
    c.ckpt_every_steps = 1_000
    c.loss = "non_saturating"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.ema.decay = 0.999
    c.eval.num_samples = 64
    parse_arg(c, arg)
    return lock(c)
