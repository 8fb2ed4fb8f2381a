"""Class-conditional BigGAN on MNIST, sized for a CPU.

Networks: BigGAN's (gan_jax/models/biggan.py) at MNIST's own 28x28, narrowed: G from a 7x7 map through 2
up-sampling blocks of 4 x 16 = 64 channels, D of 4 blocks of 2 x 16 = 32 (28 -> 14 -> 7 -> 7 -> 7),
self-attention at 14x14 in both, z of 60 dimensions in 3 chunks of 20 (the reference's chunk), a shared
class embedding of 32; class-conditional BN in G and a projection D, spectral norm everywhere.
Objective: hinge loss, 2 D updates per G update (the CIFAR-10 recipe runs 5; fewer buy more G
steps on a CPU), Adam 2e-4 with beta = (0.5, 0.999), batch 64; an EMA of G (decay 0.999) for samples.
Sample grids hold one row per class. Offline, point tfds at the original files:
--config.data.manual_dir=/path/to/mnist.

    gan-jax train --config mnist_biggan --workdir runs/mnist_biggan
    gan-jax evaluate --workdir runs/mnist_biggan --metrics fid_mnist,class_share --classifier DIR
    gan-jax sample --workdir runs/mnist_biggan --num 1000 --by_class --classifier DIR

Variants: `runlocal` (a seconds-long smoke run), and `key=value` overrides of any config key.
"""

from gan_jax.config import default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:mnist"
    c.data.split = "train"
    c.model.generator = c.model.discriminator = "biggan"
    c.model.latent_dim = 60
    c.model.conditioning = "projection"
    c.model.fake_labels = "uniform"
    c.model.biggan.g_conv_dim = 16
    c.model.biggan.d_conv_dim = 16
    c.model.biggan.shared_dim = 32
    c.model.biggan.g_attention = 14
    c.model.biggan.d_attention = 14
    c.batch_size = 64
    c.num_steps = 5_000
    c.n_critic = 2
    c.g_noise = "fresh"
    c.steps_per_dispatch = 1  # a conv step is long enough; XLA CPU runs convs inside a scan loop slower
    c.log_every_steps = 50
    c.eval_every_steps = 500
    c.ckpt_every_steps = 500
    c.keep_checkpoints = 3
    c.loss = "hinge"
    c.optim.name = "adam"
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.ema.decay = 0.999
    c.eval.num_samples = 100
    if "runlocal" in (arg or ""):
        c.batch_size = 16
    parse_arg(c, arg)
    return lock(c)
