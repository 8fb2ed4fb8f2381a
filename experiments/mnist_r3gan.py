"""R3GAN (config E networks, RpGAN + R1 + R2) on MNIST, sized for this 2-core CPU.

Networks: R3GAN's (gan_jax/models/r3gan.py) with its presets' block structure: two residual blocks a stage,
expansion 2, the 3x3 convs in groups of 16 channels (cardinality 8, 4, 2), narrowed to 3 stages of 64, 32,
16 channels on a 7x7 base (7x7, 14x14, 28x28: `model.r3gan.base_side=7`, where R3GAN's bases are 4x4), z of
64 dimensions; G / D 118,224 / 114,192 parameters. The networks take MNIST at its own 28x28. Measured
against the earlier 4x4-base recipe (`base4`: 4 stages of 64, 64, 32, 8 channels, 4x4 to 32x32, D padding
the digits with black to 32x32 and G's output cropped to 28x28; G / D 179,784 / 175,752), 2,000 steps
each on the `batch64` schedule, seed 0, on one core: FID-MNIST 157 against 491 (EMA G; 93 with the raw G), largest class 20 %
against 38 %, in 39 minutes against 36 (docs/results/images.md). The `base4` widths were chosen by
`get_sweep("widths")` at 500 steps: 64, 64, 32, 8 trained more evenly than 32, 32, 16, 8 (largest class
17 % against 25 %), and 128, 64, 16, 16 collapsed (93 % one class).

Objective and optimizer: R3GAN's CIFAR-10 preset's RpGAN and Adam (beta1 0, beta2 0.9 -> 0.99 on a cosine over
the run's 8,800 steps of batch 16: `optim.b2_end`), R1 and R2 at gamma 25 (weight / 2 * |grad|^2 each, R3GAN's
gamma / 2 * (R1 + R2)), and an EMA of G whose half-life grows 0 -> 1,000 images (62 steps at the end).
Three departures from the paper, each measured (docs/results/images.md; 8,800 steps, seed 0, FID-MNIST and
the largest class of the EMA G):
- constant learning rates, where R3GAN's fall from 2e-4 to 5e-5 over its first 20 M images: compressed into
  this run's 141,000 images (`decay`, the recipe before), the decay stalled training, FID-MNIST 62.6 and
  the largest class 15.3 % against 22.0 and 12.1 % at a constant 2e-4 (the same EMA; seed 1: 23.4, 12.5 %);
- D's rate twice G's (4e-4 and 2e-4), where R3GAN's are equal: 17.2 and 12.2 %;
- R1 and R2 computed lazily, on every 4th D step with 4 times the weight (`reg.r1.every`, the speed-up
  R3GAN's author suggests), which makes a step 1.3x faster here.
Gamma 25 was chosen by `get_sweep("gamma")`'s 1, 5 and 25 on `decay`, each the whole recipe for 40 minutes
of one core, seed 0: FID-MNIST 59.3 at gamma 25, 69.1 at 5 and 66.1 at 1, larger than R3GAN's presets' 0.05
to 2, as these small networks need. The batch was measured on `decay` at gamma 5 (FID-MNIST 69.1 at batch 16,
88.4 at batch 32, 115.1 at batch 64 in the same time): a step of 16 takes a quarter of a step of 64 on this
CPU, so the smaller batch sees about as many images in 4.4 times the steps. `cond` makes it class-conditional
(label embedding in G, projection D, fakes on the real batch's labels). Offline, point tfds at the original
files: --config.data.manual_dir=DIR.

    gan-jax train --config mnist_r3gan --workdir runs/mnist_r3gan --config.data.manual_dir=/path/to/mnist
    gan-jax evaluate --workdir runs/mnist_r3gan --metrics fid_mnist,labels --classifier DIR
    gan-jax sweep --config mnist_r3gan:data.manual_dir=DIR --sweep_arg gamma --workdir W --mode local

Variants: `cond`, `decay` (the learning-rate decay above), `batch64` (the earlier schedule above), `base4`
(the 4x4-base recipe above, on `batch64`), `narrow` (the one-block 32, 32, 16, 8 recipe at gamma 0.05 that
collapses), kept to reproduce docs/results/images.md; `runlocal`, and `key=value` overrides of any config key.
"""

from gan_jax.config import arg_flags, default_config, lock, parse_arg, zip_

WIDTHS = (64, 32, 16)  # 7x7, 14x14, 28x28
BASE_SIDE = 7
BASE4_WIDTHS = (64, 64, 32, 8)  # the `base4` recipe: 4x4, 8x8, 16x16, 32x32
CHANNELS_PER_GROUP = 16  # R3GAN's presets: each block's 3x3 conv has groups of 16 of its expansion x width channels
EXPANSION = 2
GAMMA = 25.0
BATCH64_GAMMA = 5.0  # the gamma the `batch64` schedule (and `base4` on it) was measured with
LAZY = 4  # R1 and R2 on every 4th D step, weighted x4
BATCH = 16
STEPS = 8_800  # 2,317 s measured on one core here (about 4 steps/s)
EMA_HALF_LIFE = 1_000  # images, reached over the run from 0
G_LR, D_LR = 2e-4, 4e-4  # constant; D at twice G's rate
DECAY_LR_END, DECAY_EMA_HALF_LIFE = 5e-5, 4_000  # `decay`: R3GAN's cosine to 5e-5 over the run, its EMA
VARIANTS = ("batch64", "base4", "narrow", "decay")  # the earlier recipes, kept to reproduce docs/results/images.md


def cardinality(widths, expansion=EXPANSION, per_group=CHANNELS_PER_GROUP) -> str:
    """The groups of each stage's 3x3 convs for `per_group` channels a group (at least one group)."""
    return ",".join(str(max(1, w * expansion // per_group)) for w in widths)


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:mnist"
    c.data.split = "train"
    c.model.generator = c.model.discriminator = "r3gan"
    c.model.latent_dim = 64
    c.model.r3gan.widths = ",".join(map(str, WIDTHS))
    c.model.r3gan.blocks = "2"
    c.model.r3gan.cardinality = cardinality(WIDTHS)
    c.model.r3gan.base_side = BASE_SIDE
    c.model.r3gan.expansion = EXPANSION
    c.model.r3gan.bf16_stages = 0
    c.batch_size = BATCH
    c.num_steps = STEPS
    c.steps_per_dispatch = 1  # a conv step is long enough; XLA CPU runs convs inside a scan loop slower
    c.log_every_steps = 250
    c.eval_every_steps = 1_000
    c.ckpt_every_steps = 1_100
    c.keep_checkpoints = 10
    c.loss = "rpgan"
    c.n_critic = 1
    c.g_noise = "fresh"
    c.reg.r1.weight = c.reg.r2.weight = GAMMA
    c.reg.r1.every = c.reg.r2.every = LAZY
    c.schedule.kind = "cosine"
    c.schedule.steps = STEPS
    c.optim.name = "adam"
    c.optim.g_lr, c.optim.d_lr = G_LR, D_LR
    c.optim.schedule = "constant"
    c.optim.b1 = 0.0
    c.optim.b2 = 0.9
    c.optim.b2_end = 0.99
    c.ema.decay = 0.0
    c.ema.half_life_images = 0.0
    c.ema.half_life_images_end = float(EMA_HALF_LIFE)
    c.eval.num_samples = 64
    flags = arg_flags(arg)
    if "decay" in flags:
        decay(c)
    if "batch64" in flags:
        batch64(c)
    if "base4" in flags:
        base4(c, BASE4_WIDTHS)
    if "narrow" in flags:
        narrow(c)
    if "cond" in flags:
        c.model.conditioning = "projection"
        c.model.fake_labels = "real"
    parse_arg(c, arg, flags=("cond", *VARIANTS))
    return lock(c)


def decay(c) -> None:
    """The batch-16 recipe before the constant learning rates: G and D at 2e-4 -> 5e-5 on a cosine over the run, as
    R3GAN's over its first 20 M images, and the EMA's half-life growing to 4,000 images."""
    c.optim.g_lr = c.optim.d_lr = G_LR
    c.optim.schedule, c.optim.lr_end_factor = "cosine", DECAY_LR_END / G_LR
    c.ema.half_life_images_end = float(DECAY_EMA_HALF_LIFE)


def batch64(c) -> None:
    """The earlier schedule: 2,000 steps of batch 64 at a constant learning rate of 2e-4, the EMA's half-life
    growing to 32,000 images, R1 and R2 at gamma 5 (beta2's ramp as the recipe)."""
    c.batch_size = 64
    c.num_steps = c.schedule.steps = 2_000
    c.optim.g_lr = c.optim.d_lr = G_LR
    c.optim.schedule, c.optim.lr_end_factor = "constant", 0.0
    c.ema.half_life_images_end = 32_000.0
    c.ckpt_every_steps = 500
    c.reg.r1.weight = c.reg.r2.weight = BATCH64_GAMMA


def base4(c, widths) -> None:
    """R3GAN's 4x4 bases: one stage a doubling from 4x4 to 32x32 (D pads MNIST to 32x32, G's output is
    cropped to 28x28), on the `batch64` schedule it was measured with."""
    batch64(c)
    c.model.r3gan.widths = ",".join(map(str, widths))
    c.model.r3gan.cardinality = cardinality(widths)
    c.model.r3gan.base_side = 4


def narrow(c) -> None:
    """The recipe of the collapse measurements in docs/results/images.md: one block a stage of 32, 32, 16, 8
    channels, R1 and R2 at gamma 0.05 on every step, Adam beta2 0.99 throughout, EMA decay 0.999, 20,000 steps."""
    base4(c, (32, 32, 16, 8))
    c.model.r3gan.blocks = "1"
    c.reg.r1.weight = c.reg.r2.weight = 0.05
    c.reg.r1.every = c.reg.r2.every = 1
    c.optim.b2, c.optim.b2_end = 0.99, -1.0
    c.ema.decay, c.ema.half_life_images_end = 0.999, -1.0
    c.num_steps = 20_000
    c.log_every_steps, c.eval_every_steps, c.ckpt_every_steps, c.keep_checkpoints = 500, 5_000, 5_000, 5


def get_sweep(arg=None):
    """`gamma` (the default): R1 = R2 weight over 1, 5, 25 (state-held values: `--mode vmap` trains them as one
    program); `widths`: three network widths on the 4x4 base, as `base4` (`--mode local`). The 4x4-base probes
    ran on the `batch64` schedule; the recipe's gamma was chosen from the same three values as 40-minute runs of
    the whole recipe, one a core (docs/results/images.md)."""
    if arg in (None, "", "gamma"):
        return zip_(**{"reg.r1.weight": [1.0, 5.0, 25.0], "reg.r2.weight": [1.0, 5.0, 25.0]})
    if arg == "widths":
        shapes = [(32, 32, 16, 8), (64, 64, 32, 8), (128, 64, 16, 16)]
        return [{"model.r3gan.widths": ",".join(map(str, w)), "model.r3gan.cardinality": cardinality(w),
                 "model.r3gan.base_side": 4} for w in shapes]
    raise ValueError(f"mnist_r3gan's sweeps are 'gamma' and 'widths', not {arg!r}.")
