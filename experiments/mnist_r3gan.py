"""R3GAN (config E networks, RpGAN + R1 + R2) on MNIST, sized for a CPU.

Networks: R3GAN's (gan_jax/models/r3gan.py) narrowed to 4 stages of 32, 32, 16, 8 channels (4x4 to 32x32),
one residual block a stage, expansion 2 and 16 channels per group of the 3x3 convs as in R3GAN's presets
(cardinality 4, 4, 2, 1), z of 64 dimensions. The 28x28 digits are not resized: D pads them with black to
32x32, and G's 32x32 output is cropped to 28x28, so samples are scored by the 28x28 MNIST classifier.
Objective: RpGAN with R1 and R2 at gamma 0.05 (the CIFAR-10 preset's starting gamma; weight / 2 * |grad|^2
each, R3GAN's gamma / 2 * (R1 + R2)); Adam 2e-4 with beta = (0, 0.99), batch 64, constant; an EMA of G
(decay 0.999) for samples and scores; no augmentation. `cond` makes it class-conditional (label
embedding in G, projection D, fakes on the real batch's labels).
Offline, point tfds at the original files: --config.data.manual_dir=/path/to/mnist.

    gan-jax train --config mnist_r3gan --workdir runs/mnist_r3gan --config.data.manual_dir=/path/to/mnist
    gan-jax evaluate --workdir runs/mnist_r3gan --metrics fid_mnist --classifier DIR

Variants: `cond`, `runlocal`, and `key=value` overrides of any config key.
"""

from gan_jax.config import arg_flags, default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:mnist"
    c.data.split = "train"
    c.model.generator = c.model.discriminator = "r3gan"
    c.model.latent_dim = 64
    c.model.r3gan.widths = "32,32,16,8"
    c.model.r3gan.blocks = "1"
    c.model.r3gan.cardinality = "4,4,2,1"
    c.model.r3gan.expansion = 2
    c.model.r3gan.bf16_stages = 0
    c.batch_size = 64
    c.num_steps = 20_000
    c.steps_per_dispatch = 1  # a conv step is long enough; XLA CPU runs convs inside a scan loop slower
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.keep_checkpoints = 5
    c.loss = "rpgan"
    c.n_critic = 1
    c.g_noise = "fresh"
    c.reg.r1.weight = c.reg.r2.weight = 0.05
    c.optim.name = "adam"
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1 = 0.0
    c.optim.b2 = 0.99
    c.ema.decay = 0.999
    c.eval.num_samples = 64
    if "cond" in arg_flags(arg):
        c.model.conditioning = "projection"
        c.model.fake_labels = "real"
    parse_arg(c, arg, flags=("cond",))
    return lock(c)
