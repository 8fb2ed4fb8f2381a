"""RpGAN against a hand computation, its pairing by batch position, and its selection by config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import objectives
from gan_jax.core import optim
from gan_jax.core.state import create_state
from gan_jax.core.step import make_train_step
from gan_jax.models import build_models

RNG = np.random.default_rng(1)


def test_rpgan_losses_by_hand():
    real, fake = RNG.normal(size=16), RNG.normal(size=16)
    loss = objectives.get_loss("rpgan")
    np.testing.assert_allclose(float(loss.d(jnp.asarray(real), jnp.asarray(fake), jnp.mean)),
                               np.mean(np.log1p(np.exp(-(real - fake)))), rtol=1e-6)
    np.testing.assert_allclose(float(loss.g(jnp.asarray(real), jnp.asarray(fake), jnp.mean)),
                               np.mean(np.log1p(np.exp(-(fake - real)))), rtol=1e-6)
    assert loss.needs_real_in_g


def test_rpgan_pairs_within_the_batch():
    """Each real logit meets the fake logit at its own position: reordering the fakes changes the loss."""
    real, fake = jnp.asarray([3.0, -3.0]), jnp.asarray([2.0, -4.0])
    loss = objectives.get_loss("rpgan")
    paired = float(loss.d(real, fake, jnp.mean))  # both pairs have real - fake = 1
    np.testing.assert_allclose(paired, np.log1p(np.exp(-1.0)), rtol=1e-6)
    assert abs(float(loss.d(real, fake[::-1], jnp.mean)) - paired) > 1.0


@pytest.mark.slow
def test_rpgan_is_selected_by_config_loss():
    c = config_lib.load_config("grid25:runlocal,loss=rpgan")
    config_lib.validate(c, 1)
    g, d = build_models(c.model, (2,))
    g_tx, d_tx = optim.make_optimizers(c)
    state = create_state(c, g, d, (2,), g_tx, d_tx)
    x = jnp.asarray(RNG.normal(size=(c.n_critic, c.batch_size, 2)), jnp.float32)
    _, metrics = jax.jit(make_train_step(c, g, d, g_tx, d_tx))(state, {"x": x})
    assert np.isfinite(float(metrics["g_loss"])) and np.isfinite(float(metrics["d_adv"]))
