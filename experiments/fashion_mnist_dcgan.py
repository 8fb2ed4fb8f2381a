"""DCGAN on Fashion-MNIST from tfds, with the `dcgan_mnist` networks and hyperparameters.

Offline, point tfds at the original files: --config.data.manual_dir=DIR (the four IDX .gz
files of Fashion-MNIST). Variants: `runlocal`, and `key=value` overrides.
"""

import pathlib

from gan_jax.config import load_module, lock, parse_arg

_mnist = load_module(pathlib.Path(__file__).with_name("mnist_dcgan.py"))


def get_config(arg=None):
    c = _mnist.get_config()
    c.unlock()
    c.data.source = "tfds:fashion_mnist"
    c.num_steps = 20_000
    parse_arg(c, arg)
    return lock(c)
