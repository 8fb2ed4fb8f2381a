"""g_noise: the generator update on fresh noise or on the last critic update's fakes, against plain jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import optim
from gan_jax.models import build_models, sample_latent
from gan_jax.state import create_state
from gan_jax.step import make_train_step

LR = 0.05


def _setup(g_noise, n_critic=2):
    c = config_lib.default_config()
    c.model.generator, c.model.discriminator = "pacgan_mlp", "mlp"  # G with batch norm
    c.model.latent_dim, c.model.g_width, c.model.g_depth, c.model.d_width, c.model.d_depth = 2, 8, 2, 8, 2
    c.batch_size, c.n_critic, c.g_noise = 16, n_critic, g_noise
    c.optim.name, c.optim.g_lr, c.optim.d_lr = "sgd", LR, LR
    config_lib.validate(c, 1)
    g, d = build_models(c.model, (2,))
    g_tx, d_tx = optim.make_optimizers(c)
    state = create_state(c, g, d, (2,), g_tx, d_tx)
    return c, g, d, jax.jit(make_train_step(c, g, d, g_tx, d_tx)), state


def _reference(c, g, d, state, x):
    """One step by hand: SGD on the non-saturating losses, keys derived as the step documents."""
    softplus = jax.nn.softplus
    d_key, g_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
    gp, g_vars, dp = state.g.params, state.g.model_state, state.d.params

    def gen(params, z):
        return g.apply({"params": params, **g_vars}, z, train=True, mutable=["batch_stats"])

    def disc(params, v):
        return d.apply({"params": params}, v)

    zs = [sample_latent(jax.random.split(jax.random.fold_in(d_key, i))[0], c.batch_size, c.model)
          for i in range(c.n_critic)]
    for i, z in enumerate(zs):
        fake = gen(gp, z)[0]
        grad = jax.grad(lambda p: jnp.mean(softplus(-disc(p, x[i]))) + jnp.mean(softplus(disc(p, fake))))(dp)
        dp = jax.tree.map(lambda p, g_: p - LR * g_, dp, grad)
    z_g = zs[-1] if c.g_noise == "reuse" else sample_latent(g_key, c.batch_size, c.model)
    grad = jax.grad(lambda p: jnp.mean(softplus(-disc(dp, gen(p, z_g)[0]))))(gp)
    gp_new = jax.tree.map(lambda p, g_: p - LR * g_, gp, grad)
    return gp_new, gen(gp, z_g)[1], dp


@pytest.mark.parametrize("g_noise", ["fresh", "reuse"])
def test_generator_update_matches_jax_grad_on_the_documented_noise(g_noise):
    c, g, d, step, state = _setup(g_noise)
    x = jax.random.normal(jax.random.key(3), (c.n_critic, c.batch_size, 2))
    new, _ = step(state, {"x": x})
    gp, g_stats, dp = _reference(c, g, d, state, x)
    for got, want in [(new.g.params, gp), (new.d.params, dp), (new.g.model_state["batch_stats"], g_stats["batch_stats"])]:
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_the_two_modes_train_differently_and_reuse_needs_an_adversarial_objective():
    outs = []
    for mode in ("fresh", "reuse"):
        c, g, d, step, state = _setup(mode, n_critic=1)
        outs.append(step(state, {"x": jnp.ones((1, 16, 2))})[0].g.params)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])))
    assert diff > 1e-4
    c = config_lib.default_config()
    c.g_noise, c.text.g_objective = "reuse", "mle"
    with pytest.raises(ValueError, match="g_noise"):
        config_lib.validate(c, 1)
    c.g_noise, c.text.g_objective = "reused", "adversarial"
    with pytest.raises(ValueError, match="reuse"):
        config_lib.validate(c, 1)
