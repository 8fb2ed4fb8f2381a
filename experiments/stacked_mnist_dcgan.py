"""DCGAN on Stacked MNIST (1000 modes), PacGAN's Table 2 setup; evaluate with `--metrics stacked_mnist`.

Data: `stacked:mnist`, three MNIST digits as RGB channels (data.num_train images drawn once
with the seed). Networks: BENCHMARKS.md's `dcgan_mnist` G and D with 3 output / input
channels; non-saturating loss, Adam 2e-4, beta1 0.5, batch 64. `pack=2` gives PacDCGAN2.
Mode count and KL over 26,000 samples as BENCHMARKS.md section 1 defines them:

    gan-jax train --config experiments/stacked_mnist_dcgan.py --workdir runs/stacked \\
        --config.data.manual_dir=/path/to/mnist
    python scripts/train_classifier.py --manual_dir /path/to/mnist
    gan-jax evaluate --workdir runs/stacked --metrics stacked_mnist --num_samples 26000

Variants: `runlocal`, and `key=value` overrides of any config key.
"""

from gan_jax.config import default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "stacked:mnist"
    c.data.split = "train"
    c.data.num_train = 100_000
    c.model.generator = "dcgan"
    c.model.discriminator = "dcgan"
    c.model.latent_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    c.batch_size = 64
    c.num_steps = 20_000
    c.steps_per_dispatch = 1  # a conv step inside lax.scan is ~30x slower on XLA CPU (README, Benchmark)
    c.log_every_steps = 500
    c.eval_every_steps = 2_000
    c.ckpt_every_steps = 2_000
    c.loss = "non_saturating"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.eval.num_samples = 64
    parse_arg(c, arg)
    return lock(c)
