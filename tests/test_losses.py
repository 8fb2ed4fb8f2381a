"""Loss values against hand computation with numpy."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import objectives as losses

REAL = np.array([2.0, -0.5, 0.3])
FAKE = np.array([-1.0, 0.7, 1.5, -2.0])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_non_saturating_matches_log_probabilities():
    # D maximises E[log D(x)] + E[log(1 - D(G(z)))]; G maximises E[log D(G(z))].
    expected_d = -(np.mean(np.log(sigmoid(REAL))) + np.mean(np.log(1 - sigmoid(FAKE))))
    expected_g = -np.mean(np.log(sigmoid(FAKE)))
    loss = losses.get_loss("non_saturating")
    np.testing.assert_allclose(loss.d(jnp.array(REAL), jnp.array(FAKE), jnp.mean), expected_d, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.array(REAL), jnp.array(FAKE), jnp.mean), expected_g, rtol=1e-6)


def test_minimax_generator_minimises_log_one_minus_d():
    expected_g = np.mean(np.log(1 - sigmoid(FAKE)))
    loss = losses.get_loss("minimax")
    np.testing.assert_allclose(loss.g(jnp.array(REAL), jnp.array(FAKE), jnp.mean), expected_g, rtol=1e-6)


def test_hinge_by_hand():
    # relu(1 - [2, -0.5, 0.3]) = [0, 1.5, 0.7] -> 2.2/3; relu(1 + [-1, .7, 1.5, -2]) = [0, 1.7, 2.5, 0] -> 4.2/4
    loss = losses.get_loss("hinge")
    np.testing.assert_allclose(loss.d(jnp.array(REAL), jnp.array(FAKE), jnp.mean), 2.2 / 3 + 4.2 / 4, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.array(REAL), jnp.array(FAKE), jnp.mean), -(-0.8 / 4), rtol=1e-6)


def test_wasserstein_by_hand():
    loss = losses.get_loss("wasserstein")
    np.testing.assert_allclose(loss.d(jnp.array(REAL), jnp.array(FAKE), jnp.mean), -0.2 - 0.6, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.array(REAL), jnp.array(FAKE), jnp.mean), 0.2, rtol=1e-6)


def test_least_squares_by_hand():
    loss = losses.get_loss("least_squares")
    d = 0.5 * np.mean((REAL - 1) ** 2) + 0.5 * np.mean(FAKE**2)
    g = 0.5 * np.mean((FAKE - 1) ** 2)
    np.testing.assert_allclose(loss.d(jnp.array(REAL), jnp.array(FAKE), jnp.mean), d, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.array(REAL), jnp.array(FAKE), jnp.mean), g, rtol=1e-6)


def test_relativistic_average_by_hand():
    # RaSGAN: D_ra(a, b) = sigmoid(a - mean(b)).
    d = -np.mean(np.log(sigmoid(REAL - FAKE.mean()))) - np.mean(np.log(1 - sigmoid(FAKE - REAL.mean())))
    g = -np.mean(np.log(sigmoid(FAKE - REAL.mean()))) - np.mean(np.log(1 - sigmoid(REAL - FAKE.mean())))
    loss = losses.get_loss("relativistic")
    np.testing.assert_allclose(loss.d(jnp.array(REAL), jnp.array(FAKE), jnp.mean), d, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.array(REAL), jnp.array(FAKE), jnp.mean), g, rtol=1e-6)


def test_relativistic_standard_by_hand():
    # RSGAN: D_rs(a, b) = sigmoid(a - b), real and fake paired by position.
    real, fake = np.array([2.0, -0.5, 0.3, 1.1]), FAKE
    d = -np.mean(np.log(sigmoid(real - fake)))
    g = -np.mean(np.log(sigmoid(fake - real)))
    loss = losses.get_loss("relativistic_standard")
    np.testing.assert_allclose(loss.d(jnp.array(real), jnp.array(fake), jnp.mean), d, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.array(real), jnp.array(fake), jnp.mean), g, rtol=1e-6)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="hinge"):
        losses.get_loss("hinj")
