"""BigGAN on CIFAR-10 (Brock et al. 2019), PyTorch-StudioGAN's configs/CIFAR10/BigGAN.yaml with its defaults.

Networks (`model.generator = model.discriminator = "biggan"`, gan_jax/models/biggan.py, StudioGAN's
big_resnet): G of 3 up-sampling blocks of 4 x 96 channels, z of 80 dimensions split into 4 chunks of 20,
a shared class embedding of 128, class-conditional BN, self-attention at 16x16; D of 4 blocks of
2 x 96 channels with self-attention at 16x16 and a projection head; spectral norm in both, orthogonal
initialisation. 9,416,196 / 2,415,170 parameters, as StudioGAN counts them (tests/test_biggan.py).

Objective: hinge loss, 5 D updates per G update (G on fresh noise, fakes on uniformly drawn labels),
Adam 2e-4 with beta = (0.5, 0.999) for both, batch 64, constant, 100k generator updates; an EMA of G
with decay 0.9999 for samples and scores. Two differences: StudioGAN's EMA copies G for its first
1,000 steps, ours warms up by (1 + step) / (10 + step) (`ema.warmup`); StudioGAN flips the training
images at random, this recipe does not.

    gan-jax train --config cifar10_biggan --workdir runs/biggan_cifar --config.data.manual_dir=DIR
    gan-jax evaluate --workdir runs/biggan_cifar --metrics fid --num_samples 10000

Variants (StudioGAN's BigGAN-DiffAug.yaml, BigGAN-LeCam.yaml, both for BigGAN-DiffAug-LeCam.yaml):
`diffaug` (DiffAugment color, translation and cutout on every D input, 200k steps), `lecam` (LeCam
regularization, lambda 0.3, its averages with decay 0.99 from step 1,000, 200k steps), `uncond` (no
labels), `runlocal` (narrow networks, a tiny batch: a CPU smoke test), and `key=value` overrides.

`deep`: StudioGAN's BigGAN-Deep.yaml (backbone big_resnet_deep_legacy): the "biggan_deep" networks
(gan_jax/models/biggan_deep.py) with two bottleneck blocks per resolution, z of 128 concatenated whole
with the shared embedding of 128, g_conv_dim = d_conv_dim = 128 (512 channels a block), attention at
16x16 in both; the same objective, optimiser, batch, EMA and 100k steps. 7,762,948 / 2,908,930
parameters, as StudioGAN counts them (tests/test_biggan_deep.py). It combines with the other flags.
"""

from gan_jax.config import arg_flags, default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:cifar10"
    c.data.split = "train"

    c.model.generator = c.model.discriminator = "biggan"
    c.model.latent_dim = 80
    c.model.conditioning = "projection"
    c.model.fake_labels = "uniform"
    c.model.biggan.g_conv_dim = 96
    c.model.biggan.d_conv_dim = 96
    c.model.biggan.shared_dim = 128
    c.model.biggan.g_attention = 16  # after G's second block (StudioGAN's attn_g_loc [2])
    c.model.biggan.d_attention = 16  # after D's first block (attn_d_loc [1])

    c.batch_size = 64
    c.num_steps = 100_000
    c.n_critic = 5
    c.g_noise = "fresh"
    c.steps_per_dispatch = 1
    c.log_every_steps = 200
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.eval.num_samples = 100  # sample grids during training (one row per class); FID with `gan-jax evaluate`

    c.loss = "hinge"
    c.optim.name = "adam"
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.optim.schedule = "constant"
    c.ema.decay = 0.9999
    c.ema.warmup = True

    flags = arg_flags(arg)
    if "deep" in flags:
        c.model.generator = c.model.discriminator = "biggan_deep"
        c.model.latent_dim = 128
        c.model.biggan.g_conv_dim = 128
        c.model.biggan.d_conv_dim = 128
        c.model.biggan_deep.blocks_per_resolution = 2  # StudioGAN's g_depth = d_depth = 2
    if "diffaug" in flags:
        c.augment.diffaug.policy = "color,translation,cutout"
        c.num_steps = 200_000
    if "lecam" in flags:
        c.reg.lecam.weight = 0.3
        c.reg.lecam.decay = 0.99
        c.reg.lecam.start = 1_000 * c.n_critic  # StudioGAN's lecam_ema_start_iter 1000 counts G steps
        c.num_steps = 200_000
    if "uncond" in flags:
        c.model.conditioning = "none"
    if "runlocal" in flags:
        c.batch_size = 8
        c.model.biggan.g_conv_dim = 16
        c.model.biggan.d_conv_dim = 16
        c.model.biggan.shared_dim = 16
    parse_arg(c, arg, flags=("deep", "diffaug", "lecam", "uncond"))
    return lock(c)
