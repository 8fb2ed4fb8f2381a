"""GP and R1 against closed forms on critics whose gradient is known analytically."""

import jax.numpy as jnp
import numpy as np

from gan_jax.objectives import gradients as regularizers

RNG = np.random.default_rng(0)
A = RNG.normal(size=(3, 3))
A = A + A.T  # f(x) = 0.5 x^T A x has gradient A x


def quadratic(x):
    return 0.5 * jnp.einsum("bi,ij,bj->b", x, A, x)


def test_r1_equals_half_squared_gradient_norm():
    x = RNG.normal(size=(5, 3))
    expected = 0.5 * np.sum((x @ A) ** 2, axis=1)
    np.testing.assert_allclose(regularizers.r1_penalty(quadratic, jnp.array(x, jnp.float32)), expected,
                               rtol=1e-5)


def test_r1_of_linear_critic_is_constant():
    w = np.array([3.0, -4.0])  # |w|^2 = 25
    r1 = regularizers.r1_penalty(lambda x: x @ jnp.array(w, jnp.float32), jnp.ones((4, 2)))
    np.testing.assert_allclose(r1, np.full(4, 12.5), rtol=1e-6)


def test_gradient_penalty_at_interpolates():
    real = RNG.normal(size=(6, 3))
    fake = RNG.normal(size=(6, 3))
    eps = RNG.uniform(size=6)
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    expected = (np.linalg.norm(x_hat @ A, axis=1) - 1.0) ** 2
    gp = regularizers.gradient_penalty(quadratic, jnp.array(real, jnp.float32), jnp.array(fake, jnp.float32),
                                       jnp.array(eps, jnp.float32))
    np.testing.assert_allclose(gp, expected, rtol=1e-4)


def test_gradient_penalty_of_unit_lipschitz_linear_critic_is_zero():
    w = jnp.array([0.6, 0.8])  # |w| = 1
    gp = regularizers.gradient_penalty(lambda x: x @ w, jnp.zeros((3, 2)), jnp.ones((3, 2)), jnp.full((3,), 0.5))
    np.testing.assert_allclose(gp, 0.0, atol=1e-10)


def test_gradient_penalty_on_images_flattens_per_sample():
    # f(x) = 2 * sum(x) over a [2, 2, 1] image: |grad| = 2 * sqrt(4) = 4 -> (4 - 1)^2 = 9.
    x = jnp.zeros((3, 2, 2, 1))
    gp = regularizers.gradient_penalty(lambda v: 2 * jnp.sum(v, axis=(1, 2, 3)), x, x, jnp.zeros(3))
    np.testing.assert_allclose(gp, 9.0, rtol=1e-6)
