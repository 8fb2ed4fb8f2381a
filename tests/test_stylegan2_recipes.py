"""The StyleGAN2 recipes: `cifar10_stylegan2_ada` is StyleGAN2-ADA's `cifar` configuration,
`celeba64_stylegan2_ada` its `auto` configuration for 64x64 on one GPU, and the recipes train from their
`runlocal` variant."""

import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib


def test_cifar_recipe_is_the_reference_cifar_configuration():
    c = config_lib.load_config("cifar10_stylegan2_ada")
    s = c.model.stylegan2
    assert (c.model.latent_dim, s.w_dim, s.mapping_layers, s.channel_base, s.channel_max) == (512, 512, 2, 32768, 512)
    assert (s.conv_clamp, s.architecture, s.mbstd_group, s.d_mapping_layers) == (256.0, "orig", 32, 8)
    assert (c.batch_size, c.optim.g_lr, c.optim.d_lr, c.optim.b1, c.optim.b2) == (64, 0.0025, 0.0025, 0.0, 0.99)
    assert (c.reg.r1.weight, c.reg.r1.every, c.loss, c.model.conditioning) == (0.01, 16, "non_saturating", "projection")
    assert (c.augment.ada.mode, c.augment.ada.target) == ("adaptive", 0.6)
    # The EMA ramp: the half-life reaches 500k images at 0.05 of the images seen, i.e. after 10M images.
    assert c.ema.half_life_images_end == 500_000 and c.schedule.kind == "linear"
    assert c.schedule.steps * c.batch_size == pytest.approx(500_000 / 0.05, rel=1e-4)
    assert c.num_steps * c.batch_size >= 100_000_000
    assert config_lib.load_config("cifar10_stylegan2_ada:uncond").model.conditioning == "none"


def test_celeba64_recipe_is_the_reference_auto_configuration_for_64x64():
    c = config_lib.load_config("celeba64_stylegan2_ada")
    config_lib.validate(c, 1)
    s = c.model.stylegan2
    assert (c.data.source, c.data.resolution, c.data.crop, c.model.conditioning) == ("tfds:celeb_a", 64, "center",
                                                                                     "none")
    # train.py `auto`, res 64, 1 GPU: mb 32, mbstd min(32, 4), fmaps 0.5 -> channel base 16384, map 2, D resnet.
    assert (c.model.latent_dim, s.w_dim, s.mapping_layers, s.channel_base, s.channel_max) == (512, 512, 2, 16384, 512)
    assert (s.conv_clamp, s.architecture, s.mbstd_group, s.mbstd_channels) == (256.0, "resnet", 4, 1)
    assert (c.batch_size, c.optim.g_lr, c.optim.d_lr, c.optim.b1, c.optim.b2) == (32, 0.0025, 0.0025, 0.0, 0.99)
    assert c.reg.r1.weight == pytest.approx(0.0002 * 64 ** 2 / 32) and c.reg.r1.every == 16
    assert (c.augment.ada.mode, c.augment.ada.target, c.augment.ada.interval) == ("adaptive", 0.6, 4)
    # ema_kimg = 32 * 10 / 32 = 10, ramp 0.05: the half-life reaches 10k images after 200k images.
    assert c.ema.half_life_images_end == 10_000 and c.schedule.kind == "linear"
    assert c.schedule.steps * c.batch_size == 10_000 / 0.05
    assert c.num_steps * c.batch_size >= 25_000_000
    # auto keeps StyleGAN2Loss's defaults: pl_weight 2 every 4 G updates (G_reg_interval), style mixing 0.9.
    assert (c.reg.path_length.weight, c.reg.path_length.every, s.style_mixing) == (2.0, 4, 0.9)


# NVlabs/stylegan2-ada-pytorch at commit d72cc7d, training.networks Generator and Discriminator with the
# keyword arguments train.py gives them for `--cfg=auto --gpus=1` on a 64x64 dataset, unconditional (channel
# base 16384, at most 512, map 2, conv_clamp 256, D resnet, mbstd group 4): sum(p.numel() for p in
# net.parameters()), as printed by scripts/count_reference_params.py (w_avg and the noise maps are buffers).
REFERENCE_AUTO64_COUNTS = (22_243_608, 23_407_361)


def test_celeba64_networks_have_the_reference_parameter_counts():
    c = config_lib.load_config("celeba64_stylegan2_ada")
    assert rh.abstract_param_counts(c.model, (64, 64, 3), 0) == REFERENCE_AUTO64_COUNTS


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
@pytest.mark.parametrize("name", ["cifar10_stylegan2_ada", "mnist_stylegan2", "celeba64_stylegan2_ada"])
def test_recipes_run_their_runlocal_variant_on_mock_data(tmp_path, name):
    import tensorflow_datasets as tfds

    from gan_jax.loop.trainer import train_and_evaluate

    config = config_lib.load_config(f"{name}:runlocal")
    config.unlock()
    config.num_steps = 2
    config.log_every_steps = config.eval_every_steps = config.ckpt_every_steps = 2
    config.reg.r1.every = 2  # the lazy R1 falls on one of the two steps
    config.lock()
    with tfds.testing.mock_data(num_examples=32, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 2
    for key in ("train/d_loss", "train/g_loss", "train/r1"):
        assert np.isfinite(summary["metrics"][key]), key
