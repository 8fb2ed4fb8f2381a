"""DCGAN on CIFAR-10 (32x32) from tfds: non-saturating loss, Adam 2e-4, β1 0.5, batch 64.

G: z 128 -> 4x4x512 -> three up-sampling blocks (BN, ReLU) -> 32x32x3, tanh; D mirrors it
with strided convolutions and leaky ReLU. Offline: --config.data.manual_dir=DIR holding
`cifar-10-python.tar.gz`. Variants: `runlocal` (a tiny batch, about a minute on a laptop
CPU), and `key=value` overrides.
"""

from gan_jax.config import default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:cifar10"
    c.data.split = "train"
    c.model.generator = "dcgan"
    c.model.discriminator = "dcgan"
    c.model.latent_dim = 128
    c.model.g_width = 64
    c.model.d_width = 64
    c.batch_size = 64
    c.num_steps = 100_000
    c.steps_per_dispatch = 1  # XLA CPU runs convolutions inside lax.scan ~30x slower
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.loss = "non_saturating"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.eval.num_samples = 64
    parse_arg(c, arg)
    return lock(c)
