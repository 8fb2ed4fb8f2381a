"""ResNet SNGAN on CIFAR-10 (Miyato et al. 2018), the Mimicry / StudioGAN setup.

G 4x4x256 -> 3 up-ResBlocks -> BN, ReLU, conv 3, tanh; D with 4 ResBlocks of 128 channels,
spectral norm on every layer, global sum pooling. Hinge loss, n_critic 5, Adam 2e-4 with
β = (0, 0.9), batch 64, 100k generator updates with the learning rate decayed linearly.
Offline: --config.data.manual_dir=DIR holding `cifar-10-python.tar.gz`.
Variants: `runlocal` (a tiny batch, about a minute on a laptop CPU), `key=value` overrides.
"""

from gan_jax.config import default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:cifar10"
    c.data.split = "train"
    c.model.generator = "sngan_resnet"
    c.model.discriminator = "sngan_resnet"
    c.model.latent_dim = 128
    c.model.g_width = 256
    c.model.d_width = 128
    c.batch_size = 64
    c.num_steps = 100_000
    c.n_critic = 5
    c.steps_per_dispatch = 1
    c.log_every_steps = 200
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.loss = "hinge"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.0
    c.optim.b2 = 0.9
    c.optim.schedule = "linear"
    c.eval.num_samples = 64
    if "runlocal" in (arg or ""):
        c.batch_size = 8
        c.model.g_width = 64
        c.model.d_width = 64
    parse_arg(c, arg)
    return lock(c)
