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

Objective and optimizer as R3GAN's CIFAR-10 preset, with its schedules compressed into the run's 8,800
steps of batch 16 (about 39 minutes on one core here): RpGAN; Adam with beta1 0, its learning rate 2e-4 -> 5e-5
and beta2 0.9 -> 0.99 on cosines (`optim.schedule`, `optim.b2_end`); an EMA of G whose half-life grows
0 -> 4,000 images (250 steps at the end). R1 and R2 at gamma 25 (weight / 2 * |grad|^2 each, R3GAN's gamma / 2 *
(R1 + R2)), chosen by `get_sweep("gamma")`'s 1, 5 and 25, each the whole recipe for 40 minutes of one core, seed 0:
FID-MNIST of the EMA G 59.3 at gamma 25, 69.1 at 5 and 66.1 at 1, gamma 25 the best at every checkpoint from
step 1,100 on (the largest class 16.6 %, 16.5 % and 17.9 %; Inception FID 56.6 at 25, 56.1 at 5); larger than
R3GAN's presets' 0.05 to 2, as these small networks need.
One departure from the paper: R1 and R2 are computed lazily, on every 4th D step with 4 times the weight
(`reg.r1.every`, the speed-up R3GAN's author suggests), which makes a step 1.3x faster here. The batch and
the EMA were measured at gamma 5, 40 minutes of one core each, seed 0 (docs/results/images.md): FID-MNIST of the EMA G
69.1 at batch 16 (8,800 steps), 88.4 at batch 32 (4,600 steps, the same schedules), 115.1 at batch 64 with
the EMA to 4,000 images and 156.9 with it to 32,000 (2,000 steps at a constant learning rate: `batch64`, the
earlier schedule); a step of 16 takes a quarter of a step of 64 on this CPU (4.0 against 0.95 steps/s), so
in the same time the smaller batch sees about as many images (141,000 against 128,000) in 4.4 times the steps. `cond` makes it class-conditional (label embedding in G, projection D,
fakes on the real batch's labels). Offline, point tfds at the original files: --config.data.manual_dir=DIR.

    gan-jax train --config mnist_r3gan --workdir runs/mnist_r3gan --config.data.manual_dir=/path/to/mnist
    gan-jax evaluate --workdir runs/mnist_r3gan --metrics fid_mnist,labels --classifier DIR
    gan-jax sweep --config mnist_r3gan:data.manual_dir=DIR --sweep_arg gamma --workdir W --mode local

Variants: `cond`, `batch64` (the earlier schedule above), `base4` (the 4x4-base recipe above, on `batch64`),
`narrow` (the one-block 32, 32, 16, 8 recipe at gamma 0.05 that collapses), kept to reproduce
docs/results/images.md; `runlocal`, and `key=value` overrides of any config key.
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
EMA_HALF_LIFE = 4_000  # images, reached over the run from 0
LR, LR_END = 2e-4, 5e-5  # R3GAN's cosine decay, over the run
VARIANTS = ("batch64", "base4", "narrow")  # the earlier recipes, kept to reproduce docs/results/images.md


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
    c.optim.g_lr = c.optim.d_lr = LR
    c.optim.schedule = "cosine"
    c.optim.lr_end_factor = LR_END / LR
    c.optim.b1 = 0.0
    c.optim.b2 = 0.9
    c.optim.b2_end = 0.99
    c.ema.decay = 0.0
    c.ema.half_life_images = 0.0
    c.ema.half_life_images_end = float(EMA_HALF_LIFE)
    c.eval.num_samples = 64
    flags = arg_flags(arg)
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


def batch64(c) -> None:
    """The earlier schedule: 2,000 steps of batch 64 at a constant learning rate of 2e-4, the EMA's half-life
    growing to 32,000 images, R1 and R2 at gamma 5 (beta2's ramp as the recipe)."""
    c.batch_size = 64
    c.num_steps = c.schedule.steps = 2_000
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
