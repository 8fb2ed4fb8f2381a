"""R2 against hand computations: the term on a quadratic critic, and one SGD step of a linear D."""

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax import objectives
from gan_jax.core import optim
from gan_jax.core.state import create_state
from gan_jax.core.step import make_train_step
from gan_jax.models import build_models, sample_latent
from gan_jax.rng import stream

RNG = np.random.default_rng(0)


def test_r2_is_half_the_squared_input_gradient_at_the_fakes():
    """f(x) = 0.5 x^T A x has gradient A x: R2 = mean 0.5 |A x_f|^2 over the fakes, whatever D does on reals."""
    a = RNG.normal(size=(3, 3))
    a = a + a.T
    fake = RNG.normal(size=(5, 3)).astype(np.float32)

    def quadratic(x):
        return 0.5 * jnp.einsum("bi,ij,bj->b", x, jnp.asarray(a, jnp.float32), x)

    term = objectives.TERMS.get("r2")
    ctx = objectives.DContext(
        real=jnp.zeros_like(fake), fake=jnp.asarray(fake), real_labels=None, fake_labels=None, real_input=None,
        fake_input=None, real_logits=None, fake_logits=None, real_class_logits=None, fake_class_logits=None,
        critic=lambda x: 100.0 * jnp.sum(x**3, axis=1), fake_critic=quadratic, discriminate=None, mean=jnp.mean,
        per_sample=None, settings=None, hparams={"weight": 1.0}, state=None, key=jax.random.key(0), update=0)
    expected = np.mean(0.5 * np.sum((fake @ a) ** 2, axis=1))
    np.testing.assert_allclose(float(term.d(ctx)), expected, rtol=1e-5)


def test_r2_enters_the_discriminator_update():
    """Linear D(x) = w.x + b: R2 = 0.5 |w|^2, so SGD moves w by -lr (grad of the loss + weight * w)."""
    c = config_lib.default_config()
    c.model.generator, c.model.discriminator = "mlp", "mlp"
    c.model.latent_dim, c.model.g_width, c.model.g_depth, c.model.d_depth = 2, 8, 1, 0
    c.batch_size, c.optim.name, c.optim.d_lr, c.optim.g_lr = 8, "sgd", 0.1, 0.1
    c.reg.r2.weight = 0.7
    config_lib.validate(c, 1)
    g, d = build_models(c.model, (2,))
    g_tx, d_tx = optim.make_optimizers(c)
    state = create_state(c, g, d, (2,), g_tx, d_tx)
    x = RNG.normal(size=(1, 8, 2)).astype(np.float32)
    new, metrics = jax.jit(make_train_step(c, g, d, g_tx, d_tx))(state, {"x": jnp.asarray(x)})

    w = np.asarray(state.d.params["Dense_0"]["kernel"])[:, 0]
    b = float(state.d.params["Dense_0"]["bias"][0])
    z = sample_latent(stream(jax.random.fold_in(state.rng, 0), "d", 0, "z"), 8, c.model)  # the step's documented stream
    fake = np.asarray(g.apply({"params": state.g.params}, z))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    real_logits, fake_logits = x[0] @ w + b, fake @ w + b
    # d/dw of mean softplus(-D(x_r)) + mean softplus(D(x_f)), plus 0.7 * d/dw (0.5 |w|^2)
    grad_w = (-(sigmoid(-real_logits)[:, None] * x[0]).mean(0) + (sigmoid(fake_logits)[:, None] * fake).mean(0)
              + 0.7 * w)
    np.testing.assert_allclose(float(metrics["r2"]), 0.5 * np.sum(w**2), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new.d.params["Dense_0"]["kernel"])[:, 0], w - 0.1 * grad_w, rtol=1e-5,
                               atol=1e-6)
