"""The StyleGAN2 recipes: `cifar10_stylegan2_ada` is StyleGAN2-ADA's `cifar` configuration."""

import pytest

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

