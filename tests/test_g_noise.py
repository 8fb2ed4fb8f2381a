"""g_noise: the generator update on fresh noise or on the last critic update's fakes, against plain jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.core import optim
from gan_jax.core.state import create_state
from gan_jax.core.step import due_at, host_scheduled, lazy_terms, make_train_step
from gan_jax.models import build_models, sample_latent
from gan_jax.rng import stream

LR = 0.05


def _setup(g_noise, n_critic=2, r1_weight=0.0, r1_every=1, due=None):
    c = config_lib.default_config()
    c.reg.r1.weight, c.reg.r1.every = r1_weight, r1_every
    c.model.generator, c.model.discriminator = "pacgan_mlp", "mlp"  # G with batch norm
    c.model.latent_dim, c.model.g_width, c.model.g_depth, c.model.d_width, c.model.d_depth = 2, 8, 2, 8, 2
    c.batch_size, c.n_critic, c.g_noise = 16, n_critic, g_noise
    c.optim.name, c.optim.g_lr, c.optim.d_lr = "sgd", LR, LR
    config_lib.validate(c, 1)
    g, d = build_models(c.model, (2,))
    g_tx, d_tx = optim.make_optimizers(c)
    state = create_state(c, g, d, (2,), g_tx, d_tx)
    return c, g, d, jax.jit(make_train_step(c, g, d, g_tx, d_tx, due=due)), state


def _reference(c, g, d, state, x):
    """One step by hand: SGD on the non-saturating losses, keys derived as the step documents."""
    softplus = jax.nn.softplus
    key = jax.random.fold_in(state.rng, state.step)
    d_key, g_key = stream(key, "d"), stream(key, "g")
    gp, g_vars, dp = state.g.params, state.g.model_state, state.d.params

    def gen(params, z):
        return g.apply({"params": params, **g_vars}, z, train=True, mutable=["batch_stats"])

    def disc(params, v):
        return d.apply({"params": params}, v)

    zs = [sample_latent(stream(d_key, i, "z"), c.batch_size, c.model) for i in range(c.n_critic)]
    for i, z in enumerate(zs):
        fake = gen(gp, z)[0]
        def d_loss(p, i=i, fake=fake):
            loss = jnp.mean(softplus(-disc(p, x[i]))) + jnp.mean(softplus(disc(p, fake)))
            k = c.reg.r1.every
            if c.reg.r1.weight > 0 and (int(state.step) * c.n_critic + i) % k == 0:
                # R1 by hand: 0.5 |d D(x) / dx|^2 per real sample, averaged; lazily weighted by k.
                grad_x = jax.grad(lambda v: jnp.sum(disc(p, v)))(x[i])
                loss = loss + c.reg.r1.weight * k * jnp.mean(0.5 * jnp.sum(grad_x ** 2, axis=1))
            return loss

        grad = jax.grad(d_loss)(dp)
        dp = jax.tree.map(lambda p, g_: p - LR * g_, dp, grad)
    z_g = zs[-1] if c.g_noise == "reuse" else sample_latent(stream(g_key, "z"), c.batch_size, c.model)
    grad = jax.grad(lambda p: jnp.mean(softplus(-disc(dp, gen(p, z_g)[0]))))(gp)
    gp_new = jax.tree.map(lambda p, g_: p - LR * g_, gp, grad)
    return gp_new, gen(gp, z_g)[1], dp


@pytest.mark.slow
@pytest.mark.parametrize("g_noise", ["fresh", "reuse"])
def test_generator_update_matches_jax_grad_on_the_documented_noise(g_noise):
    c, g, d, step, state = _setup(g_noise)
    x = jax.random.normal(jax.random.key(3), (c.n_critic, c.batch_size, 2))
    new, _ = step(state, {"x": x})
    gp, g_stats, dp = _reference(c, g, d, state, x)
    for got, want in [(new.g.params, gp), (new.d.params, dp), (new.g.model_state["batch_stats"], g_stats["batch_stats"])]:
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("r1_every", [1, 2, 3])
def test_r1_and_lazy_r1_match_jax_grad(r1_every):
    """R1 at weight 0.7, every D update or every 2nd / 3rd: two steps of 2 D updates each, so the
    due updates are 0-3 (k=1), 0 and 2 (k=2), 0 and 3 (k=3)."""
    c, g, d, step, state = _setup("fresh", r1_weight=0.7, r1_every=r1_every)
    x = jax.random.normal(jax.random.key(4), (2, c.n_critic, c.batch_size, 2))
    for t in range(2):
        gp, g_stats, dp = _reference(c, g, d, state, x[t])
        state, metrics = step(state, {"x": x[t]})
        for a, b in zip(jax.tree.leaves((state.g.params, state.d.params)), jax.tree.leaves((gp, dp)), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    # The logged R1 is the last D update's: update 3 (due for k = 1 and 3, not for k = 2).
    assert (float(metrics["r1"]) > 0) == (r1_every != 2)


@pytest.mark.slow
def test_host_scheduled_lazy_r1_matches_jax_grad():
    """One D update a step: the train loop's two programs (with and without R1), picked by
    due_at, give the hand-computed steps (R1 at steps 0 and 3 of 0-4 for k = 3)."""
    c, g, d, with_r1, state = _setup("fresh", n_critic=1, r1_weight=0.7, r1_every=3, due=frozenset({"r1"}))
    without_r1 = _setup("fresh", n_critic=1, r1_weight=0.7, r1_every=3, due=frozenset())[3]
    lazy = lazy_terms(c)
    assert host_scheduled(c) and lazy == {"r1": 3}
    assert [bool(due_at(lazy, t)) for t in range(5)] == [True, False, False, True, False]
    x = jax.random.normal(jax.random.key(5), (5, 1, c.batch_size, 2))
    for t in range(5):
        gp, _, dp = _reference(c, g, d, state, x[t])
        state, metrics = (with_r1 if due_at(lazy, t) else without_r1)(state, {"x": x[t]})
        for a, b in zip(jax.tree.leaves((state.g.params, state.d.params)), jax.tree.leaves((gp, dp)), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
        assert (float(metrics["r1"]) > 0) == bool(due_at(lazy, t))


@pytest.mark.slow
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
