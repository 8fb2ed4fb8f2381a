"""DCGAN on Stacked MNIST (1000 modes), PacGAN's Table 2 setup; evaluate with `--metrics stacked_mnist`.

Data: `stacked:mnist`, three MNIST digits as RGB channels (data.num_train images drawn once
with the seed). Networks: the `dcgan_mnist` G and D of `gan-jax benchmark` with 3 output / input
channels; non-saturating loss, Adam 2e-4, beta1 0.5, batch 64. `pack=2` gives PacDCGAN2.
Mode count and KL over 26,000 samples as PacGAN (Lin et al. 2018) defines them:

    gan-jax train --config experiments/stacked_mnist_dcgan.py --workdir runs/stacked \\
        --config.data.manual_dir=/path/to/mnist
    gan-jax train-classifier --manual_dir /path/to/mnist
    gan-jax evaluate --workdir runs/stacked --metrics stacked_mnist --num_samples 26000

Variants: `runlocal`, and `key=value` overrides of any config key.
"""

import pathlib

from gan_jax.config import load_module, lock, parse_arg

_mnist = load_module(pathlib.Path(__file__).with_name("mnist_dcgan.py"))


def get_config(arg=None):
    """mnist_dcgan's networks and optimizer (3 channels in and out) on Stacked MNIST."""
    c = _mnist.get_config()
    c.unlock()
    c.data.source = "stacked:mnist"
    c.data.num_train = 100_000
    c.num_steps = 20_000
    c.g_noise, c.ema.decay = "fresh", 0.0  # PacGAN's plain DCGAN: fresh noise for G, no weight averaging
    parse_arg(c, arg)
    return lock(c)
