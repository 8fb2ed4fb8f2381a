"""Networks match BENCHMARKS.md section 2 parameter for parameter (PyTorch counts)."""

import jax
import jax.numpy as jnp
import pytest

from gan_jax import config as config_lib
from gan_jax.models import build_models
from gan_jax.state import count_params


def _counts(generator, discriminator, latent, shape, **widths):
    m = config_lib.default_config().model
    m.generator, m.discriminator, m.latent_dim = generator, discriminator, latent
    for k, v in widths.items():
        m[k] = v
    g, d = build_models(m, shape)
    gv = g.init(jax.random.key(0), jnp.zeros((2, latent)), train=False)
    out = g.apply(gv, jnp.zeros((2, latent)), train=False)
    assert out.shape == (2,) + shape
    dv = d.init(jax.random.key(1), out, train=False)
    assert d.apply(dv, out, train=False).shape == (2,)
    return count_params(gv["params"]), count_params(dv["params"])


def test_seed_mlp_counts():
    assert _counts("mlp", "mlp", 100, (784,), g_width=128, g_depth=2, d_width=128, d_depth=2) == (130_576, 117_121)


def test_seed_mlp_on_images_has_the_same_counts():
    assert _counts("mlp", "mlp", 100, (28, 28, 1), g_width=128, g_depth=2, d_width=128,
                   d_depth=2) == (130_576, 117_121)


def test_toy_pacgan_counts():
    # PyTorch counts BatchNorm's affine scale and bias as parameters, as flax does.
    assert _counts("pacgan_mlp", "pacgan_maxout", 2, (2,)) == (486_402, 405_201)


def test_unknown_model_suggests_a_name():
    m = config_lib.default_config().model
    m.generator = "pacgan_mpl"
    with pytest.raises(ValueError, match="pacgan_mlp"):
        build_models(m, (2,))
