"""DCGAN on MNIST from tfds: the `dcgan_mnist` networks of `gan-jax benchmark` (docs/results/benchmark.md),
non-saturating loss, Adam 2e-4, β1 0.5, lazy R1 on D; 25,000 steps.

G: z 100 -> Dense 7*7*128, BN, ReLU -> ConvT 64 k4 s2, BN, ReLU -> ConvT 1 k4 s2, tanh;
D: Conv 64 k4 s2, LReLU 0.2 -> Conv 128 k4 s2, LReLU 0.2 -> Dense 1; batch 64. As in the usual
PyTorch DCGAN loop, the G update reuses the D update's fakes (`g_noise=reuse`); samples and
scores come from an EMA of G's weights (decay 0.999; `--no_ema` in `gan-jax evaluate` scores
the raw G). R1 (weight 10, every 16th D update, scaled by 16) keeps D smooth on the real digits:
in a recipe study (docs/results/images.md) it halved FID-MNIST at 15,000 steps and evened
out the classes; `get_sweep` repeats that study (R1 weight 0 / 1 / 10 x seeds).
Offline, point tfds at the original files: --config.data.manual_dir=/path/to/mnist
(the four IDX .gz files). Variants: `runlocal`, `upsample=subpixel` (or `resize_conv`), and
`key=value` overrides of any config key.
"""

from gan_jax.config import default_config, lock, parse_arg, product, seeds


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:mnist"
    c.data.split = "train"
    c.model.generator = "dcgan"
    c.model.discriminator = "dcgan"
    c.model.latent_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    c.model.upsample = "conv_transpose"
    c.batch_size = 64
    c.num_steps = 25_000
    c.steps_per_dispatch = 1  # a conv step is long enough; XLA CPU runs convs inside a scan loop ~30x slower
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.keep_checkpoints = 5
    c.loss = "non_saturating"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.g_noise = "reuse"
    c.ema.decay = 0.999
    c.reg.r1.weight = 10.0
    c.reg.r1.every = 16
    c.eval.num_samples = 64
    parse_arg(c, arg)
    return lock(c)


def get_sweep(arg=None):
    """R1 weight (0, 1, 10) x seeds; `arg` is the number of seeds (default 2). With `--mode vmap` the
    runs without R1 form one compiled group and those with it another."""
    return product(seeds(int(arg) if arg else 2), **{"reg.r1.weight": [0.0, 1.0, 10.0]})
