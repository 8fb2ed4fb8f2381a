"""StyleGAN2-ADA on CIFAR-10: the `cifar` configuration of StyleGAN2-ADA's train.py, class-conditional as
its README trains it (`--cfg=cifar --cond=1`).

Networks (`model.generator = model.discriminator = "stylegan2"`, gan_jax/models/stylegan2.py): z and w of
512, a 2-layer mapping network, 512 channels at every resolution (channel base 32768, at most 512), conv
clamp 256, the `skip` generator and the `orig` discriminator (no residual skips), minibatch stddev over
groups of 32, D's label mapping of 8 layers. 20,215,315 / 23,089,664 parameters, as the reference code
counts them (19,947,539 / 20,720,641 with `uncond`; tests/test_stylegan2.py). The reference computes its 4
highest resolutions in float16; this recipe computes in float32 (`model.dtype=bfloat16` is the option).

Objective: the non-saturating logistic loss, R1 on reals with gamma 0.01 (`reg.r1.weight`; our term is weight
/ 2 * |grad|^2, the reference's r1_gamma / 2 * |grad|^2) every 16 D updates (weight times 16); no path-length
regularization, no style mixing. Adam with lr 0.0025, betas (0, 0.99), eps 1e-8 (optax's default) for both
networks, batch 64, one D and one G update a step. The reference runs its lazy R1 as an extra optimizer step
and scales lr and betas by 16/17 (G: 4/5) to make up for it; here R1 joins the D update it falls on, so the
stated lr and betas are used as they are. The generator EMA has a half-life of 500k images, ramped as the
reference ramps it (0.05 of the images seen until that, i.e. 0 -> 500k linearly over 10M images). ADA: the
`bgc` pipeline (blits, general geometry, colour) with adaptive p, target 0.6, adjusted every 4 D updates by a
speed of 500k images per unit of p. 100M images (100,000 kimg).

    gan-jax train --config cifar10_stylegan2_ada --workdir runs/sg2_cifar --config.data.manual_dir=DIR
    gan-jax evaluate --workdir runs/sg2_cifar --metrics fid --num_samples 50000

Path-length regularization and style mixing are off, as `cifar` has them: `reg.path_length.weight` 0 (the
term: `reg.path_length.every` 4 G updates, weight times 4; `.decay` 0.01 for the running mean of the lengths;
`.batch_shrink` 2, the penalty on every 2nd sample of the G batch; gan_jax/objectives/terms/path_length.py)
and `model.stylegan2.style_mixing` 0 (the probability that a training batch takes its ws from a random
cutoff on from a second z).

Variants: `uncond` (no labels), `runlocal` (narrow networks, a tiny batch: a CPU smoke test), `paper` (the
loss options of the reference's paper256/512/1024 configurations on this recipe's networks and schedule:
path length weight 2 every 4 G updates, style mixing 0.9, the `resnet` discriminator; gamma and everything
else stay `cifar`'s; the reference also scales G's lr and betas by 4/5 for its lazy path-length phase, which
we do not, as for R1 above), and `key=value` overrides of any config key.
"""

import math

from gan_jax.config import arg_flags, default_config, lock, parse_arg

BATCH = 64
TOTAL_IMAGES = 100_000_000  # the configuration's kimg=100000
EMA_HALF_LIFE = 500_000  # ema_kimg=500
EMA_RAMP = 0.05  # the half-life is at most 0.05 of the images seen


def train_as_the_reference(c, batch: int, gamma: float, ema_half_life: float) -> None:
    """What StyleGAN2-ADA's train.py gives every configuration (the StyleGAN2 recipes share it): batch `batch`
    with one D and one G update a step on fresh z, the non-saturating loss, R1 of weight `gamma` every 16 D
    updates, Adam 0.0025 with betas (0, 0.99), and the G EMA's half-life ramped 0 -> `ema_half_life` images
    at EMA_RAMP of the images seen."""
    c.batch_size = batch
    c.steps_per_dispatch = 1  # a conv step is long enough; XLA CPU runs convs inside a scan loop slower
    c.loss = "non_saturating"
    c.n_critic = 1
    c.g_noise = "fresh"
    c.reg.r1.weight = gamma
    c.reg.r1.every = 16
    c.optim.name = "adam"
    c.optim.g_lr = c.optim.d_lr = 0.0025
    c.optim.b1 = 0.0
    c.optim.b2 = 0.99
    c.ema.half_life_images = 0.0
    c.ema.half_life_images_end = float(ema_half_life)
    c.schedule.kind = "linear"
    c.schedule.steps = math.ceil(ema_half_life / EMA_RAMP / batch)


def adaptive_augmentation(c) -> None:
    """ADA as train.py sets it: the `bgc` pipeline with p from 0, adjusted every 4 D updates toward an
    r_t of 0.6 at a speed of 500k images per unit of p."""
    c.augment.ada.mode = "adaptive"
    c.augment.ada.p = 0.0
    c.augment.ada.target = 0.6
    c.augment.ada.interval = 4
    c.augment.ada.speed_images = 500_000.0


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:cifar10"
    c.data.split = "train"

    c.model.generator = c.model.discriminator = "stylegan2"
    c.model.latent_dim = 512
    c.model.conditioning = "projection"
    s = c.model.stylegan2
    s.w_dim = 512
    s.mapping_layers = 2
    s.channel_base = 32768
    s.channel_max = 512
    s.conv_clamp = 256.0
    s.architecture = "orig"
    s.mbstd_group = 32
    s.mbstd_channels = 1
    s.d_mapping_layers = 8

    c.num_steps = math.ceil(TOTAL_IMAGES / BATCH)
    c.log_every_steps = 500
    c.eval_every_steps = 10_000
    c.ckpt_every_steps = 10_000
    c.eval.num_samples = 100  # sample grids during training; FID with `gan-jax evaluate`
    # The EMA half-life ramp: min(500k, 0.05 * images seen) is a linear move 0 -> 500k over 10M images.
    train_as_the_reference(c, BATCH, gamma=0.01, ema_half_life=EMA_HALF_LIFE)
    adaptive_augmentation(c)

    flags = arg_flags(arg)
    if "runlocal" in flags:
        s.channel_base = 512
        s.channel_max = 32
        s.w_dim = 32
        c.model.latent_dim = 32
        s.mbstd_group = 4
    if "uncond" in flags:
        c.model.conditioning = "none"
    if "paper" in flags:
        c.reg.path_length.weight = 2.0
        c.reg.path_length.every = 4
        s.style_mixing = 0.9
        s.architecture = "resnet"
    parse_arg(c, arg, flags=("uncond", "paper"))
    return lock(c)
