"""RelGAN's CNN discriminator: the fused convolution + max-pool against the plain computation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import text as text_models


def _reference(x, kernel, bias):
    """relu, then the max over time, of the VALID convolution written as one matmul on the unfolded windows."""
    w, e, f = kernel.shape
    n = x.shape[1] - w + 1
    unfolded = jnp.concatenate([x[:, i:i + n] for i in range(w)], axis=-1)
    return jnp.max(nn.relu(unfolded @ kernel.reshape(w * e, f) + bias), axis=1)


@pytest.mark.parametrize("window,channels", [(1, 1), (2, 1), (5, 1), (3, 2), (4, 16)])
def test_window_conv_max_pool_matches_plain_computation(window, channels):
    rng = np.random.default_rng(window * 10 + channels)
    x = jnp.asarray(rng.normal(size=(6, 9, channels)), jnp.float32)
    module = text_models.WindowConvMaxPool(features=7, window=window)
    params = module.init(jax.random.key(0), x)["params"]
    params = {**params, "bias": jnp.asarray(rng.normal(size=7), jnp.float32)}
    np.testing.assert_allclose(np.asarray(module.apply({"params": params}, x)),
                               np.asarray(_reference(x, params["kernel"], params["bias"])), rtol=1e-5, atol=1e-6)
    weights = jnp.asarray(rng.normal(size=(6, 7)), jnp.float32)

    def loss(fn):
        return lambda p, x: jnp.sum(weights * fn(p, x))

    ours = jax.grad(loss(lambda p, x: module.apply({"params": p}, x)), argnums=(0, 1))(params, x)
    ref = jax.grad(loss(lambda p, x: _reference(x, p["kernel"], p["bias"])), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_conv_max_splits_the_gradient_among_tied_windows():
    # Token embeddings repeat in real text: a sequence 'a b a b a' has the window (a, b) twice.
    a, b = 0.7, -0.3
    x = jnp.asarray([[a, b, a, b, a]], jnp.float32)[..., None]
    kernel = jnp.asarray([[[1.0, -1.0]], [[2.0, 0.5]]])  # [2, 1, 2]
    got = jax.grad(lambda k, x: text_models.conv_max(x, k).sum(), argnums=(0, 1))(kernel, x)
    want = jax.grad(lambda k, x: _reference(x, k, jnp.zeros(2)).sum(), argnums=(0, 1))(kernel, x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_discriminator_parameters_keep_their_names():
    d = text_models.RelGANDiscriminator(num_rep=3, emb_dim=1, num_filters=5)
    params = d.init(jax.random.key(0), jnp.zeros((2, 6, 11)))["params"]
    assert [params[f"WindowConv_{i}"]["kernel"].shape for i in range(4)] == [(w, 1, 5) for w in (2, 3, 4, 5)]
