"""StyleGAN2 on MNIST, sized for a CPU: the `cifar` recipe's objective on narrow networks.

Networks (gan_jax/models/stylegan2.py): z and w of 64, a 2-layer mapping network, channel base 1024 at most
64 channels (64, 64, 64, 32 at 4x4 to 32x32), conv clamp 256, the `skip` generator, the `orig`
discriminator with minibatch stddev over groups of 4. The 28x28 digits are not resized: D pads them with
black to 32x32 and G's 32x32 output is cropped to 28x28. Objective: non-saturating loss with R1 (every 16
D updates), Adam 0.0025 with betas (0, 0.99), batch 32, as StyleGAN2-ADA's `auto` configuration sets a
32x32 run on one GPU; the EMA's half-life is 10k images, ramped over the first 200k images as the
reference ramps it. R1's gamma is 1, not the reference's 0.01 (`cifar`; `auto` would give 0.0064): in 40
minutes on one CPU core gamma 0.01 left FID-MNIST at 452 with 53 % of samples in one class, gamma 1 reached
98.7 with at most 20 % (docs/results/stylegan2.md); `--config.reg.r1.weight=0.01` restores the reference's. No augmentation: MNIST's
60,000 images are plenty. `cond` makes it class-conditional (label embedding in G's mapping, projection D).
Offline, point tfds at the original files: --config.data.manual_dir=/path/to/mnist.

    gan-jax train --config mnist_stylegan2 --workdir runs/mnist_sg2 --config.data.manual_dir=/path/to/mnist
    gan-jax evaluate --workdir runs/mnist_sg2 --metrics fid_mnist --classifier DIR

Variants: `cond`, `runlocal`, and `key=value` overrides of any config key.
"""

import pathlib

from gan_jax.config import arg_flags, default_config, load_module, lock, parse_arg

_cifar = load_module(pathlib.Path(__file__).with_name("cifar10_stylegan2_ada.py"))

BATCH = 32
EMA_HALF_LIFE = 10_000


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:mnist"
    c.data.split = "train"
    c.model.generator = c.model.discriminator = "stylegan2"
    c.model.latent_dim = 64
    s = c.model.stylegan2
    s.w_dim = 64
    s.mapping_layers = 2
    s.channel_base = 1024
    s.channel_max = 64
    s.conv_clamp = 256.0
    s.architecture = "orig"
    s.mbstd_group = 4
    s.d_mapping_layers = 8
    c.num_steps = 20_000
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.keep_checkpoints = 5
    c.eval.num_samples = 64
    _cifar.train_as_the_reference(c, BATCH, gamma=1.0, ema_half_life=EMA_HALF_LIFE)
    if "cond" in arg_flags(arg):
        c.model.conditioning = "projection"
    parse_arg(c, arg, flags=("cond",))
    return lock(c)
