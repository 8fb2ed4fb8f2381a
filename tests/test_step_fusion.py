"""Straight-line (unrolled) scans in the step: the same numbers as lax.scan, and no loop to slow convs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.core import optim
from gan_jax.core.state import create_state
from gan_jax.core.step import fuse_steps, make_train_step, unrolled_scan
from gan_jax.models import build_models


def test_unrolled_scan_matches_lax_scan():
    def f(carry, x):
        a, b = x
        carry = jnp.tanh(carry * 1.5 + a) - b
        return carry, {"c": carry.sum(), "x": a * b}

    rng = np.random.default_rng(0)
    xs = (jnp.asarray(rng.standard_normal((4, 3))), jnp.asarray(rng.standard_normal((4, 3))))
    init = jnp.asarray(rng.standard_normal(3))
    expected = jax.lax.scan(f, init, xs)
    got = unrolled_scan(f, init, xs)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _dcgan_step(n_critic):
    c = config_lib.default_config()
    c.model.generator = c.model.discriminator = "dcgan"
    c.model.latent_dim, c.model.g_width, c.model.d_width = 8, 4, 4
    c.batch_size, c.n_critic = 4, n_critic
    shape = (28, 28, 1)
    g, d = build_models(c.model, shape)
    g_tx, d_tx = optim.make_optimizer(c, 1e-3), optim.make_optimizer(c, 1e-3, n_critic)
    state = create_state(c, g, d, shape, g_tx, d_tx)
    batch = {"x": jnp.zeros((1, n_critic, 4) + shape)}
    return fuse_steps(make_train_step(c, g, d, g_tx, d_tx)), state, batch


def _convs_in_loops(jaxpr, in_loop=False):
    """How many convolutions sit inside a scan / while loop of a jaxpr (recursively)."""
    count = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated" and in_loop:
            count += 1
        loop = in_loop or eqn.primitive.name in ("scan", "while")
        for value in eqn.params.values():
            for v in value if isinstance(value, (tuple, list)) else [value]:
                inner = getattr(v, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    count += _convs_in_loops(inner, loop)
                elif hasattr(v, "eqns"):
                    count += _convs_in_loops(v, loop)
    return count


@pytest.mark.slow
def test_single_dispatch_step_has_no_conv_in_a_loop():
    step, state, batch = _dcgan_step(n_critic=2)
    jaxpr = jax.make_jaxpr(step)(state, batch).jaxpr
    assert _convs_in_loops(jaxpr) == 0
    # The check itself finds convolutions that are in a loop.
    looped = jax.make_jaxpr(lambda s, b: jax.lax.scan(lambda c, x: step(c, x), s, b))(
        state, {"x": batch["x"][None]}).jaxpr
    assert _convs_in_loops(looped) > 0


@pytest.mark.slow
def test_fused_steps_equal_plain_steps_in_sequence():
    c = config_lib.default_config()
    c.batch_size, c.n_critic, c.model.g_width, c.model.d_width = 8, 2, 16, 16
    g, d = build_models(c.model, (2,))
    g_tx, d_tx = optim.make_optimizer(c, 1e-3), optim.make_optimizer(c, 1e-3, 2)
    state = create_state(c, g, d, (2,), g_tx, d_tx)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 2, 8, 2)), jnp.float32)
    plain = jax.jit(make_train_step(c, g, d, g_tx, d_tx))
    expected = state
    for i in range(2):
        expected, _ = plain(expected, {"x": x[i]})
    fused = jax.jit(fuse_steps(make_train_step(c, g, d, g_tx, d_tx)))
    one, _ = fused(state, {"x": x[:1]})  # k = 1: no loop
    one, _ = fused(one, {"x": x[1:]})
    two, _ = fused(state, {"x": x})  # k = 2: lax.scan
    for got in (one, two):
        for a, b in zip(jax.tree.leaves(got.g.params) + jax.tree.leaves(got.d.params),
                        jax.tree.leaves(expected.g.params) + jax.tree.leaves(expected.d.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
