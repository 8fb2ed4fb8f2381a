"""BigGAN on ImageNet at 128x128, class-conditional (Brock et al. 2019): PyTorch-StudioGAN's
configs/ImageNet/BigGAN-256.yaml (its 128x128 ImageNet BigGAN at batch 256) with its config defaults.

Data: tfds:imagenet2012, the train split's 1,281,167 images center-cropped to a square and resized to
128x128 as they are read (StudioGAN's CenterCropLongEdge then Resize), 1000 classes. tfds cannot download
ImageNet: put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in a folder and pass it as
--config.data.manual_dir=DIR. The loader holds the whole split in memory as uint8, about 63 GB at 128x128.

Where the values come from (StudioGAN 947b35e, BigGAN-256.yaml, src/config.py for what it leaves out):
- networks (`model.generator = model.discriminator = "biggan"`, gan_jax/models/biggan.py, StudioGAN's
  big_resnet): G of 5 up-sampling blocks from a 4x4 map (16, 16, 8, 4, 2, 1 x 96 channels: g_conv_dim 96), z of
  120 split into 6 chunks of 20, a shared class embedding of 128, class-conditional BN, self-attention after
  the 4th block, at 64x64 (attn_g_loc [4]); D of 6 blocks (1, 2, 4, 8, 16, 16 x 96 channels: d_conv_dim 96),
  self-attention after the 1st, at 64x64 (attn_d_loc [1]), a projection head (d_cond_mtd PD); spectral norm
  in both, orthogonal initialisation (config.py's g_init, d_init). 70,433,988 / 87,982,370 parameters, as
  StudioGAN counts them (scripts/count_reference_params.py; tests/test_biggan.py);
- hinge loss, 2 D updates per G update (d_updates_per_step 2), 200k G updates (total_steps);
- Adam with G lr 5e-5, D lr 2e-4, betas (0, 0.999), batch 256;
- an EMA of G with decay 0.9999 for samples and scores (g_ema_decay).

Differences: StudioGAN's EMA copies G for its first 20,000 steps (g_ema_start), ours warms up by
(1 + step) / (10 + step) (`ema.warmup`); its Adam eps is 1e-6 for BigGAN, ours optax's 1e-8; it flips the
training images at random (config.py's apply_rflip), this recipe does not; G draws fakes on uniform labels.

Not trained here: it needs a GPU and the dataset.

    gan-jax train --config imagenet128_biggan --workdir runs/biggan_in128 --config.data.manual_dir=DIR
    gan-jax evaluate --workdir runs/biggan_in128 --metrics fid --num_samples 50000

Variants: `runlocal` (narrow networks, a tiny batch: a CPU smoke test), and `key=value` overrides.
"""

from gan_jax.config import arg_flags, default_config, lock, parse_arg


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:imagenet2012"
    c.data.split = "train"
    c.data.resolution = 128
    c.data.crop = "center"
    c.data.about = ("ImageNet (ILSVRC 2012) cannot be downloaded by tfds: put ILSVRC2012_img_train.tar and "
                    "ILSVRC2012_img_val.tar in a folder and set --config.data.manual_dir to it.")

    c.model.generator = c.model.discriminator = "biggan"
    c.model.latent_dim = 120
    c.model.conditioning = "projection"
    c.model.fake_labels = "uniform"
    c.model.biggan.g_conv_dim = 96
    c.model.biggan.d_conv_dim = 96
    c.model.biggan.shared_dim = 128
    c.model.biggan.g_attention = 64  # after G's 4th block (StudioGAN's attn_g_loc [4])
    c.model.biggan.d_attention = 64  # after D's 1st block (attn_d_loc [1])

    c.batch_size = 256
    c.num_steps = 200_000
    c.n_critic = 2
    c.g_noise = "fresh"
    c.steps_per_dispatch = 1
    c.log_every_steps = 200
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    c.eval.num_samples = 100  # sample grids during training; FID with `gan-jax evaluate`

    c.loss = "hinge"
    c.optim.name = "adam"
    c.optim.g_lr = 5e-5
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.0
    c.optim.b2 = 0.999
    c.optim.schedule = "constant"
    c.ema.decay = 0.9999
    c.ema.warmup = True

    if "runlocal" in arg_flags(arg):
        c.batch_size = 8
        c.model.biggan.g_conv_dim = 8
        c.model.biggan.d_conv_dim = 8
        c.model.biggan.shared_dim = 16
    parse_arg(c, arg)
    return lock(c)
