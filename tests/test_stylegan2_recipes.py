"""The StyleGAN2 recipes: `cifar10_stylegan2_ada` is StyleGAN2-ADA's `cifar` configuration, and both
recipes train from their `runlocal` variant."""

import numpy as np
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


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
@pytest.mark.parametrize("name", ["cifar10_stylegan2_ada", "mnist_stylegan2"])
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
