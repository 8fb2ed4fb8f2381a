"""R3GAN on CIFAR-10 (Huang et al. 2024, config E): the CIFAR10 preset of R3GAN's train.py, class-conditional.

Networks (`model.generator = model.discriminator = "r3gan"`, gan_jax/models/r3gan.py): 4 stages (4x4 to
32x32) of 768 channels, 2 residual blocks each, cardinality 96, expansion 2, z of 64 dimensions; G's label
embedding has z's 64 dimensions, D projects onto an embedding of 768 (the 4x4 stage's width); the three
stages of highest resolution compute in bfloat16 (`model.r3gan.bf16_stages = 3`). 20,781,952 / 21,280,512
parameters, as R3GAN's code counts them (tests/test_r3gan.py).

Objective: RpGAN (`loss = "rpgan"`) with R1 and R2 at gamma (our terms are weight / 2 * |grad|^2, so both
weights = gamma give R3GAN's gamma / 2 * (R1 + R2)); one D and one G update a step, G on fresh noise; the
fakes of a conditional step take the real batch's labels (`model.fake_labels = "real"`). Adam with beta1 0
and eps 1e-8 for both networks, batch 512. Every start -> end value moves on a cosine over 20 Mimg
(`schedule.steps` = 20e6 / 512 steps) and then holds: the learning rate 2e-4 -> 5e-5, Adam's beta2
0.9 -> 0.99, gamma 0.05 -> 0.005, the generator EMA's half-life 0 -> 5 Mimg, and the ADA augmentation
probability 0 -> 0.55, with R3GAN's pipeline (every geometric transformation at multiplier 1, the colour
ones at 0.5, cutout at 1; `ada.R3GAN`).
R3GAN trains with `--mirror=1` (x-flipped copies of the dataset); this recipe has no dataset flips
(the augmentation's own x-flips remain). R3GAN's train.py trains until stopped; `num_steps` here ends with
the schedules, at 20 Mimg.

    gan-jax train --config cifar10_r3gan --workdir runs/r3gan_cifar --config.data.manual_dir=DIR
    gan-jax evaluate --workdir runs/r3gan_cifar --metrics fid --num_samples 50000

Variants: `uncond` (no labels), `runlocal` (narrow networks, a tiny batch: a CPU smoke test), and
`key=value` overrides of any config key (e.g. `model.r3gan.widths=256,256,256,256`).
"""

import math

from gan_jax.config import arg_flags, default_config, lock, parse_arg
from gan_jax.objectives.augment import ada

BATCH = 512
SCHEDULE_IMAGES = 20_000_000  # R3GAN's decay_nimg: every schedule reaches its end value here


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:cifar10"
    c.data.split = "train"

    c.model.generator = c.model.discriminator = "r3gan"
    c.model.latent_dim = 64
    c.model.conditioning = "projection"
    c.model.fake_labels = "real"
    c.model.r3gan.widths = "768,768,768,768"
    c.model.r3gan.blocks = "2"
    c.model.r3gan.cardinality = "96"
    c.model.r3gan.expansion = 2
    c.model.r3gan.g_embed_dim = 0  # z's 64
    c.model.r3gan.d_embed_dim = 0  # the 4x4 stage's 768
    c.model.r3gan.bf16_stages = 3

    c.batch_size = BATCH
    steps = math.ceil(SCHEDULE_IMAGES / BATCH)
    c.num_steps = steps
    c.steps_per_dispatch = 1
    c.log_every_steps = 200
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.eval.num_samples = 100  # sample grids during training; FID with `gan-jax evaluate`

    c.loss = "rpgan"
    c.n_critic = 1
    c.g_noise = "fresh"
    c.reg.r1.weight = c.reg.r2.weight = 0.05
    c.reg.r1.weight_end = c.reg.r2.weight_end = 0.005

    c.schedule.kind = "cosine"
    c.schedule.steps = steps
    c.optim.name = "adam"
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.schedule = "cosine"
    c.optim.lr_end_factor = 5e-5 / 2e-4
    c.optim.b1 = 0.0
    c.optim.b2 = 0.9
    c.optim.b2_end = 0.99

    c.ema.half_life_images = 0.0
    c.ema.half_life_images_end = 5e6

    c.augment.ada.mode = "schedule"
    c.augment.ada.p = 0.0
    c.augment.ada.p_end = 0.55
    for key, value in ada.R3GAN.items():
        c.augment.ada[key] = value

    flags = arg_flags(arg)
    if "runlocal" in flags:
        c.model.r3gan.widths = "32,32,32,32"
        c.model.r3gan.blocks = "1"
        c.model.r3gan.cardinality = "4"
        c.model.r3gan.bf16_stages = 0  # bfloat16 is emulated, and slow, on most CPUs
    if "uncond" in flags:
        c.model.conditioning = "none"
    parse_arg(c, arg, flags=("uncond",))
    return lock(c)
