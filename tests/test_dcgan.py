"""DCGAN networks: shapes and parameter counts at 28, 32 and 64 pixels; the fast transposed conv."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.core.state import count_params
from gan_jax.models import build_models, upsample


def _conv(k, c_in, c_out):  # a k x k conv (or transposed conv) with bias
    return k * k * c_in * c_out + c_out


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _bn(c):  # scale and bias
    return 2 * c


# Hand-computed from the layer list in gan_jax/models/dcgan.py (width 64, latent 100).
EXPECTED = {
    28: (  # BENCHMARKS.md dcgan_mnist, PyTorch counts 778,305 / 138,561
        _dense(100, 7 * 7 * 128) + _bn(7 * 7 * 128) + _conv(4, 128, 64) + _bn(64) + _conv(4, 64, 1),
        _conv(4, 1, 64) + _conv(4, 64, 128) + _dense(7 * 7 * 128, 1)),
    32: (
        _dense(100, 4 * 4 * 256) + _bn(4 * 4 * 256) + _conv(4, 256, 128) + _bn(128) + _conv(4, 128, 64)
        + _bn(64) + _conv(4, 64, 3),
        _conv(4, 3, 64) + _conv(4, 64, 128) + _conv(4, 128, 256) + _dense(4 * 4 * 256, 1)),
    64: (
        _dense(100, 4 * 4 * 512) + _bn(4 * 4 * 512) + _conv(4, 512, 256) + _bn(256) + _conv(4, 256, 128)
        + _bn(128) + _conv(4, 128, 64) + _bn(64) + _conv(4, 64, 3),
        _conv(4, 3, 64) + _conv(4, 64, 128) + _conv(4, 128, 256) + _conv(4, 256, 512) + _dense(4 * 4 * 512, 1)),
}
SHAPES = {28: (28, 28, 1), 32: (32, 32, 3), 64: (64, 64, 3)}


def _build(shape, upsample_kind="conv_transpose"):
    m = config_lib.default_config().model
    m.generator = m.discriminator = "dcgan"
    m.latent_dim, m.g_width, m.d_width, m.upsample = 100, 64, 64, upsample_kind
    return build_models(m, shape)


def _init(shape, upsample_kind="conv_transpose"):
    g, d = _build(shape, upsample_kind)
    z = jax.random.normal(jax.random.key(0), (3, 100))
    gv = g.init(jax.random.key(1), z, train=False)
    x, _ = g.apply(gv, z, train=True, mutable=["batch_stats"])
    dv = d.init(jax.random.key(2), x, train=False)
    return gv, dv, x, d.apply(dv, x, train=True)


def test_dcgan_mnist_matches_the_pytorch_reference_counts():
    assert EXPECTED[28] == (778_305, 138_561)


@pytest.mark.slow
@pytest.mark.parametrize("side", [28, 32, 64])
def test_shapes_and_parameter_counts(side):
    gv, dv, x, logits = _init(SHAPES[side])
    assert x.shape == (3,) + SHAPES[side]
    assert logits.shape == (3,)
    assert float(jnp.max(jnp.abs(x))) <= 1.0
    assert (count_params(gv["params"]), count_params(dv["params"])) == EXPECTED[side]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["subpixel", "resize_conv", "conv_transpose_direct"])
def test_upsampling_options_give_images(kind):
    gv, _, x, _ = _init((32, 32, 3), kind)
    assert x.shape == (3, 32, 32, 3)
    g_params = count_params(gv["params"])
    # Only the three upsampling layers (256->128, 128->64, 64->3) differ from the transposed conv.
    ups = {"subpixel": lambda i, o: _conv(3, i, 4 * o), "resize_conv": lambda i, o: _conv(3, i, o),
           "conv_transpose_direct": lambda i, o: _conv(4, i, o)}[kind]
    layers = [(256, 128), (128, 64), (64, 3)]
    assert g_params == EXPECTED[32][0] - sum(_conv(4, i, o) for i, o in layers) + sum(ups(i, o) for i, o in layers)


def test_unsupported_resolution_is_refused():
    g, _ = _build((48, 48, 3))
    with pytest.raises(ValueError, match="28, 32, 64"):
        g.init(jax.random.key(0), jnp.zeros((2, 100)), train=False)


def _numpy_conv_transpose(x, kernel):
    """Scatter form of a stride-2 transposed conv with PyTorch's padding 1 (flax/lax kernel orientation)."""
    b, h, w, _ = x.shape
    out = np.zeros((b, 2 * h + 2, 2 * w + 2, kernel.shape[-1]))
    flipped = kernel[::-1, ::-1]  # lax.conv_transpose does not flip; the scatter form does
    for i in range(h):
        for j in range(w):
            out[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("bc,yxco->byxo", x[:, i, j], flipped)
    return out[:, 1:-1, 1:-1]


# One output channel takes the 3x3-convolution path, more take the four phase convolutions.
@pytest.mark.parametrize("features", [1, 2])
def test_fast_conv_transpose_equals_the_direct_one(features):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((4, 4, 3, features)).astype(np.float32)
    expected = _numpy_conv_transpose(x.astype(np.float64), kernel.astype(np.float64))
    fast = upsample.conv_transpose_4x4_s2(jnp.asarray(x), jnp.asarray(kernel))
    np.testing.assert_allclose(fast, expected, atol=1e-4)
    direct = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")
    y = direct.apply({"params": {"kernel": kernel, "bias": np.zeros(features, np.float32)}}, jnp.asarray(x))
    np.testing.assert_allclose(fast, y, atol=1e-4)


@pytest.mark.parametrize("features", [1, 3])
def test_fast_conv_transpose_has_the_same_gradients(features):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 7, 7, 4)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((4, 4, 4, features)), jnp.float32)
    target = jnp.asarray(rng.standard_normal((2, 14, 14, features)), jnp.float32)

    def loss(fn):
        return lambda x, k: jnp.sum(jnp.sin(fn(x, k)) * target)

    direct = jax.grad(loss(lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), "SAME",
                                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))),
                      argnums=(0, 1))(x, kernel)
    fast = jax.grad(loss(upsample.conv_transpose_4x4_s2), argnums=(0, 1))(x, kernel)
    for a, b in zip(fast, direct):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_depth_to_space_places_channels_as_pixels():
    y = np.arange(2 * 3 * 4).reshape(1, 2, 3, 4).astype(np.float32)  # 2x2 blocks of 1 channel
    out = np.asarray(upsample.depth_to_space(jnp.asarray(y), 2))
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(out[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 0], y[0, i, j].reshape(2, 2))
