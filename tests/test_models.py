"""Networks match BENCHMARKS.md section 2 parameter for parameter (PyTorch counts)."""

import jax
import jax.numpy as jnp
import pytest

from gan_jax import config as config_lib
from gan_jax.core.state import count_params
from gan_jax.models import build_models


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


def test_fourier_features_match_numpy_and_stay_fixed():
    import numpy as np

    from gan_jax.models.mlp import FourierFeatures

    x = jax.random.normal(jax.random.key(0), (5, 2))
    layer = FourierFeatures(7, scale=2.0)
    variables = layer.init(jax.random.key(1), x)
    b = np.asarray(variables["params"]["B"], np.float64)
    assert b.shape == (2, 7) and 1.0 < b.std() < 4.0  # drawn with std 2
    proj = 2 * np.pi * np.asarray(x, np.float64) @ b
    np.testing.assert_allclose(layer.apply(variables, x), np.concatenate([np.cos(proj), np.sin(proj)], -1),
                               rtol=1e-4, atol=1e-5)
    grad = jax.grad(lambda v: layer.apply(v, x).sum())(variables)
    assert not np.any(np.asarray(grad["params"]["B"]))  # never trained


@pytest.mark.slow
def test_generator_fourier_features_feed_its_first_layer():
    import numpy as np

    m = config_lib.default_config().model
    m.g_fourier_features, m.g_fourier_scale, m.g_width, m.g_depth = 3, 0.5, 4, 1
    g, _ = build_models(m, (2,))
    z = jax.random.normal(jax.random.key(0), (6, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    params = variables["params"]
    b = np.asarray(params["FourierFeatures_0"]["B"], np.float64)
    assert b.shape == (2, 3)
    # The same network by hand in numpy: [z, cos 2πzB, sin 2πzB] -> Dense -> BN (running stats) -> ReLU -> Dense.
    z64 = np.asarray(z, np.float64)
    proj = 2 * np.pi * z64 @ b
    h = np.concatenate([z64, np.cos(proj), np.sin(proj)], -1)
    dense0, dense1, bn = params["Dense_0"], params["Dense_1"], params["BatchNorm_0"]
    h = h @ np.asarray(dense0["kernel"], np.float64) + np.asarray(dense0["bias"], np.float64)
    stats = variables["batch_stats"]["BatchNorm_0"]
    h = (h - np.asarray(stats["mean"])) / np.sqrt(np.asarray(stats["var"]) + 1e-5)
    h = np.maximum(h * np.asarray(bn["scale"]) + np.asarray(bn["bias"]), 0)
    out = h @ np.asarray(dense1["kernel"], np.float64) + np.asarray(dense1["bias"], np.float64)
    np.testing.assert_allclose(g.apply(variables, z, train=False), out, rtol=1e-4, atol=1e-5)
    grad = jax.grad(lambda p: g.apply({**variables, "params": p}, z, train=False).sum())(params)
    assert not np.any(np.asarray(grad["FourierFeatures_0"]["B"]))  # never trained
    assert np.any(np.asarray(grad["Dense_0"]["kernel"][2:]))  # the features reach the first layer


@pytest.mark.slow
def test_packed_discriminator_gives_each_sample_the_same_fourier_features():
    import numpy as np

    from gan_jax.core.state import pack_input
    from gan_jax.models.mlp import FourierFeatures

    m = config_lib.default_config().model
    m.d_fourier_features, m.d_width, m.d_depth = 3, 4, 1
    _, d = build_models(m, (2,))
    x = jax.random.normal(jax.random.key(0), (8, 2))
    packed = pack_input(x, 4)  # [2, 8]: the 4 samples' coordinates interleaved
    variables = d.init(jax.random.key(1), packed)
    captured = d.apply(variables, packed, capture_intermediates=lambda mdl, _: isinstance(mdl, FourierFeatures),
                       mutable=["intermediates"])[1]["intermediates"]["FourierFeatures_0"]["__call__"][0]
    per_sample = FourierFeatures(3).apply({"params": variables["params"]["FourierFeatures_0"]}, x)
    np.testing.assert_allclose(captured, np.asarray(per_sample).reshape(2, 4, 6), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_latent_prior_has_the_declared_moments(dist):
    import numpy as np
    from scipy import stats

    from gan_jax.models import sample_latent

    m = config_lib.default_config().model
    m.latent_dim, m.latent_dist = 3, dist
    z = np.asarray(sample_latent(jax.random.key(0), 20_000, m), np.float64)
    assert z.shape == (20_000, 3)
    reference = stats.norm() if dist == "normal" else stats.uniform(-1, 2)
    # Kolmogorov-Smirnov against scipy's distribution, one coordinate at a time.
    assert all(stats.kstest(z[:, i], reference.cdf).pvalue > 1e-3 for i in range(3))
    if dist == "uniform":
        assert z.min() >= -1 and z.max() <= 1
        np.testing.assert_allclose(z.var(0), 1 / 3, rtol=0.05)


def test_max_along_matches_numpy_values_and_subgradient():
    import numpy as np

    from gan_jax.models.layers import max_along

    x = np.random.default_rng(0).normal(size=(6, 4, 5)).astype(np.float32)
    x[0, 0] = [1.0, 3.0, 3.0, -2.0, 3.0]  # a three-way tie
    w = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    out, grad = jax.value_and_grad(lambda v: jnp.sum(w * max_along(v, -1)))(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda v: max_along(v, -1))(x)), x.max(-1))
    hit = x == x.max(-1, keepdims=True)
    expected = hit * (w / hit.sum(-1))[..., None]  # the weight, shared equally between tied maxima
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad)[0, 0], w[0, 0] * np.array([0, 1, 1, 0, 1]) / 3, rtol=1e-6)
    assert float(out) == pytest.approx(float(np.sum(w * x.max(-1))), rel=1e-6)


@pytest.mark.slow
def test_max_along_second_order_gradient_matches_jnp_max():
    """WGAN-GP and R1 differentiate the input gradient of a maxout D with respect to its weights."""
    import numpy as np

    from gan_jax.models.layers import max_along

    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 4 * 5)), jnp.float32)

    def penalty(k, reduce_max):
        def critic(v):
            return jnp.sum(reduce_max((jnp.tanh(v @ k)).reshape(v.shape[0], 4, 5)) ** 2)

        return jnp.sum((jax.grad(critic)(x) - 1.0) ** 2)

    ours = jax.grad(penalty)(kernel, lambda y: max_along(y, -1))
    reference = jax.grad(penalty)(kernel, lambda y: jnp.max(y, -1))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), rtol=1e-5, atol=1e-6)


def test_cos_sin_cycles_match_numpy_and_their_derivatives():
    import numpy as np

    from gan_jax.models.mlp import cos_sin_cycles

    t = np.concatenate([np.linspace(-3, 3, 2001), np.random.default_rng(0).normal(0, 30, 2000)]).astype(np.float32)
    cos, sin = jax.jit(cos_sin_cycles)(t)
    angle = 2 * np.pi * t.astype(np.float64)
    np.testing.assert_allclose(np.asarray(cos), np.cos(angle), atol=1e-6)
    np.testing.assert_allclose(np.asarray(sin), np.sin(angle), atol=1e-6)
    d_cos = jax.vmap(jax.grad(lambda v: cos_sin_cycles(v)[0]))(t)
    d2_sin = jax.vmap(jax.grad(jax.grad(lambda v: cos_sin_cycles(v)[1])))(t)
    np.testing.assert_allclose(np.asarray(d_cos), -2 * np.pi * np.sin(angle), atol=2e-5)
    np.testing.assert_allclose(np.asarray(d2_sin), -(2 * np.pi) ** 2 * np.sin(angle), atol=2e-4)
