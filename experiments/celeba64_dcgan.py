"""DCGAN on CelebA at 64x64 from tfds: each 178x218 photo is center-cropped to 178x178 and
resized to 64x64 as it is read (the whole split never sits in memory at full size).

Non-saturating loss, Adam 2e-4, β1 0.5, batch 64. Offline: --config.data.manual_dir=DIR with
the CelebA files tfds expects. Variants: `runlocal`, and `key=value` overrides.
"""

import pathlib

from gan_jax.config import load_module, lock, parse_arg

_cifar10 = load_module(pathlib.Path(__file__).with_name("cifar10_dcgan.py"))


def get_config(arg=None):
    """cifar10_dcgan's networks and optimizer on CelebA at 64x64, with z of 100 dimensions."""
    c = _cifar10.get_config()
    c.unlock()
    c.data.source = "tfds:celeb_a"
    c.data.resolution = 64
    c.data.crop = "center"
    c.model.latent_dim = 100
    c.num_steps = 50_000
    parse_arg(c, arg)
    return lock(c)
