"""DCGAN on CelebA at 64x64 from tfds: each 178x218 photo is center-cropped to 178x178 and
resized to 64x64 as it is read (the whole split never sits in memory at full size).

Non-saturating loss, Adam 2e-4, β1 0.5, batch 64. Offline: --config.data.manual_dir=DIR with
the CelebA files tfds expects. Variants: `runlocal`, and `key=value` overrides.
"""

from gan_jax.config import default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:celeb_a"
    c.data.split = "train"
    c.data.resolution = 64
    c.data.crop = "center"
    c.model.generator = "dcgan"
    c.model.discriminator = "dcgan"
    c.model.latent_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    c.batch_size = 64
    c.num_steps = 50_000
    c.steps_per_dispatch = 1  # XLA CPU runs convolutions inside lax.scan ~30x slower
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.loss = "non_saturating"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.eval.num_samples = 64
    if "runlocal" in (arg or ""):
        c.batch_size = 16
    parse_arg(c, arg)
    return lock(c)
