"""StyleGAN2-ADA on CelebA at 64x64: the `auto` configuration that StyleGAN2-ADA's train.py computes for a
64x64 dataset on one GPU (`--cfg=auto --gpus=1`, unconditional, no --mirror), with its default ADA.

Data: tfds:celeb_a, each 178x218 photo center-cropped to 178x178 and resized to 64x64 as it is read (as
celeba64_dcgan reads it); no labels. Offline: --config.data.manual_dir=DIR with the CelebA files tfds expects.

Where the values come from (NVlabs/stylegan2-ada-pytorch d72cc7d, train.py, `cfg_specs['auto']` and the
`if cfg == 'auto'` branch with res = 64, gpus = 1):
- batch 32: mb = max(min(gpus * min(4096 // res, 32), 64), gpus);
- minibatch stddev over groups of 4: mbstd = min(mb // gpus, 4);
- channel base 16384, at most 512 channels: fmaps = 0.5 below 512x512, channel_base = fmaps * 32768
  (512 channels at 4x4 to 32x32, 256 at 64x64);
- Adam lr 0.0025 (below 1024x1024), betas (0, 0.99), eps 1e-8 (optax's default), for G and D;
- R1 gamma 0.0256 every 16 D updates: gamma = 0.0002 * res^2 / mb (`reg.r1.weight`; our term is weight / 2 *
  |grad|^2, the reference's r1_gamma / 2 * |grad|^2);
- EMA half-life 10k images (ema_kimg = mb * 10 / 32), ramped (ema_rampup 0.05: at most 0.05 of the images
  seen, i.e. 0 -> 10k linearly over the first 200k images);
- a 2-layer mapping network (map=2), z and w of 512 (train.py's G_kwargs), conv clamp 256 (train.py sets it
  for both networks), the `skip` generator and the `resnet` discriminator (Discriminator's default: only
  `cifar` switches it to `orig`);
- 25M images (kimg=25000);
- ADA (`--aug=ada`, the default): target 0.6, the `bgc` pipeline (train.py's default augpipe), p from 0,
  adjusted every 4 D updates with a speed of 500k images per unit of p (training_loop's ada_interval and
  ada_kimg).
The networks have 22,243,608 (G) and 23,407,361 (D) parameters, as the reference's code counts them
(scripts/count_reference_params.py; tests/test_stylegan2_recipes.py).

- StyleGAN2Loss's path-length regularization (pl_weight 2, every 4 G updates: `reg.path_length`) and style
  mixing (probability 0.9: `model.stylegan2.style_mixing`), which `auto` keeps (only `cifar` turns them off).

What this recipe does not do as the reference does: the reference computes its 4 highest resolutions (8x8 to 64x64 here) in float16,
this recipe in float32 (`model.dtype=bfloat16` is the option); its lazy R1 runs as an extra optimizer step
with lr and betas scaled by 16/17, here R1 joins the D update it falls on and the stated lr and betas are used.

Not trained here: it needs a GPU and the dataset.

    gan-jax train --config celeba64_stylegan2_ada --workdir runs/sg2_celeba64 --config.data.manual_dir=DIR
    gan-jax evaluate --workdir runs/sg2_celeba64 --metrics fid --num_samples 50000

Variants: `runlocal` (narrow networks, a tiny batch: a CPU smoke test), and `key=value` overrides of any
config key.
"""

import math
import pathlib

from gan_jax.config import arg_flags, default_config, load_module, lock, parse_arg

_cifar = load_module(pathlib.Path(__file__).with_name("cifar10_stylegan2_ada.py"))

RESOLUTION = 64
BATCH = 32  # max(min(1 * min(4096 // 64, 32), 64), 1)
TOTAL_IMAGES = 25_000_000  # kimg=25000
EMA_HALF_LIFE = 10_000  # ema_kimg = 32 * 10 / 32
R1_GAMMA = 0.0002 * RESOLUTION ** 2 / BATCH  # 0.0256


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:celeb_a"
    c.data.split = "train"
    c.data.resolution = RESOLUTION
    c.data.crop = "center"

    c.model.generator = c.model.discriminator = "stylegan2"
    c.model.latent_dim = 512
    c.model.conditioning = "none"
    s = c.model.stylegan2
    s.w_dim = 512
    s.mapping_layers = 2
    s.channel_base = 16384
    s.channel_max = 512
    s.conv_clamp = 256.0
    s.architecture = "resnet"
    s.mbstd_group = 4
    s.mbstd_channels = 1
    s.style_mixing = 0.9
    c.reg.path_length.weight = 2.0
    c.reg.path_length.every = 4

    c.num_steps = math.ceil(TOTAL_IMAGES / BATCH)
    c.log_every_steps = 500
    c.eval_every_steps = 10_000
    c.ckpt_every_steps = 10_000
    c.eval.num_samples = 100  # sample grids during training; FID with `gan-jax evaluate`
    # The EMA half-life ramp: min(10k, 0.05 * images seen) is a linear move 0 -> 10k over 200k images.
    _cifar.train_as_the_reference(c, BATCH, gamma=R1_GAMMA, ema_half_life=EMA_HALF_LIFE)
    _cifar.adaptive_augmentation(c)

    if "runlocal" in arg_flags(arg):
        c.batch_size = 8
        s.channel_base = 512
        s.channel_max = 32
        s.w_dim = 32
        c.model.latent_dim = 32
    parse_arg(c, arg)
    return lock(c)
