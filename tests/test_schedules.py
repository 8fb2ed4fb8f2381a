"""Start -> end schedules of per-run values, the EMA by half-life in images, and conditional fakes on the
real labels, each against a hand computation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import models, schedules
from gan_jax.core import optim
from gan_jax.core.state import create_state
from gan_jax.core.step import make_train_step
from gan_jax.models import build_models

RNG = np.random.default_rng(0)


def _cosine(base, final, t, total):
    """R3GAN's cosine schedule by hand: base -> final over `total`, held after."""
    if t >= total:
        return final
    return base + (1 - 0.5 * (1 + np.cos(np.pi * t / total))) * (final - base)


@pytest.mark.parametrize("t", [0, 1, 37, 50, 99, 100, 250])
def test_cosine_and_linear_schedules_by_hand(t):
    np.testing.assert_allclose(float(schedules.interpolate(0.05, 0.005, t, 100, "cosine")),
                               _cosine(0.05, 0.005, t, 100), rtol=1e-6)
    np.testing.assert_allclose(float(schedules.interpolate(2.0, 6.0, t, 100, "linear")), 2 + 4 * min(t, 100) / 100,
                               rtol=1e-6)
    assert float(schedules.interpolate(0.05, -1.0, t, 100, "cosine")) == pytest.approx(0.05)  # no end: constant


def test_scheduled_moves_every_value_with_an_end_sibling():
    tree = {"reg": {"r1": {"weight": 1.0, "weight_end": 0.0}, "bcr": {"weight": 3.0, "weight_end": -1.0}},
            "ema": {"decay": 0.9}}
    out = schedules.scheduled(tree, 50, 100, "linear")
    assert float(out["reg"]["r1"]["weight"]) == pytest.approx(0.5) and float(out["reg"]["bcr"]["weight"]) == 3.0
    assert out["ema"]["decay"] == 0.9 and out["reg"]["r1"]["weight_end"] == 0.0


def _linear_d_config(**changes):
    c = config_lib.default_config()
    c.model.generator, c.model.discriminator = "mlp", "mlp"
    c.model.latent_dim, c.model.g_width, c.model.g_depth, c.model.d_depth = 2, 8, 1, 0
    c.batch_size, c.optim.name, c.optim.d_lr, c.optim.g_lr = 8, "sgd", 0.1, 0.1
    c.num_steps = 40
    for key, value in changes.items():
        config_lib.apply_overrides(c, {key: value})
    config_lib.validate(c, 1)
    return c


@pytest.mark.slow
def test_term_weight_follows_the_schedule_in_the_step():
    """R1 of a linear D is 0.5 |w|^2 whatever the data, so D's update at step s differs from the update
    without R1 by exactly -lr * weight(s) * w."""
    x = jnp.asarray(RNG.normal(size=(1, 8, 2)), jnp.float32)
    with_r1 = _linear_d_config(**{"reg.r1.weight": 0.8, "reg.r1.weight_end": 0.2, "schedule.steps": 20})
    without = _linear_d_config()
    g, d = build_models(with_r1.model, (2,))
    runs = []
    for c in (with_r1, without):
        g_tx, d_tx = optim.make_optimizers(c)
        runs.append((create_state(c, g, d, (2,), g_tx, d_tx), jax.jit(make_train_step(c, g, d, g_tx, d_tx))))
    for s in (0, 7, 20, 33):
        deltas = []
        for initial, step in runs:
            state = initial.replace(step=jnp.int32(s))
            new, _ = step(state, {"x": x})
            deltas.append(np.asarray(new.d.params["Dense_0"]["kernel"]) - np.asarray(state.d.params["Dense_0"]["kernel"]))
        w = np.asarray(state.d.params["Dense_0"]["kernel"])
        weight = _cosine(0.8, 0.2, s, 20)
        np.testing.assert_allclose(deltas[0] - deltas[1], -0.1 * weight * w, rtol=1e-4, atol=1e-7)


def test_ema_by_half_life_in_images():
    """decay(s) = 0.5 ** (batch / half_life(s)), the half-life moving from 0 to 400 images over 10 steps."""
    c = _linear_d_config(**{"ema.half_life_images": 0.0, "ema.half_life_images_end": 400.0, "schedule.steps": 10})
    g, d = build_models(c.model, (2,))
    g_tx, d_tx = optim.make_optimizers(c)
    x = jnp.asarray(RNG.normal(size=(1, 8, 2)), jnp.float32)
    step = jax.jit(make_train_step(c, g, d, g_tx, d_tx))
    for s in (0, 3, 10, 15):
        state = create_state(c, g, d, (2,), g_tx, d_tx)
        state = state.replace(step=jnp.int32(s), g_ema=jax.tree.map(lambda p: p + 1.0, state.g.params))
        new, _ = step(state, {"x": x})
        half_life = _cosine(0.0, 400.0, s, 10)
        decay = 0.5 ** (8 / max(half_life, 1e-8))
        for ema, old, params in zip(jax.tree.leaves(new.g_ema), jax.tree.leaves(state.g_ema),
                                    jax.tree.leaves(new.g.params)):
            np.testing.assert_allclose(ema, decay * np.asarray(old) + (1 - decay) * np.asarray(params), rtol=1e-5,
                                       atol=1e-6)


def test_learning_rate_end_factor_and_scheduled_b2():
    c = _linear_d_config(**{"optim.name": "adam", "optim.schedule": "cosine", "optim.lr_end_factor": 0.25,
                            "optim.b1": 0.0, "optim.b2": 0.9, "optim.b2_end": 0.99, "schedule.steps": 100})
    multiplier = optim.lr_multiplier(c, 1)
    for s in (0, 30, 100, 140):
        assert float(multiplier(jnp.int32(s))) == pytest.approx(_cosine(1.0, 0.25, s, 100), rel=1e-5)
    tx = optim.make_optimizer(c, 2e-4, updates_per_step=2)  # the critic's optimizer with n_critic = 2
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for _ in range(61):
        _, state = tx.update({"w": jnp.ones(2)}, state, params)
    b2 = float(state[0].hyperparams["b2"])  # the value used by the 61st update: count 60, generator step 30
    assert b2 == pytest.approx(_cosine(0.9, 0.99, 30, 100), rel=1e-6)
    assert "optim.b2" not in optim.injected_keys(c)  # scheduled: part of the program, not a per-run value


class _LabelEcho(nn.Module):
    """A conditional 'generator' whose sample is the one-hot of its label (plus a zero-initialised map of z)."""

    @nn.compact
    def __call__(self, z, y, train=True):
        return jax.nn.one_hot(y, 3) + nn.Dense(3, kernel_init=nn.initializers.zeros)(z)


class _Score(nn.Module):
    """A conditional 'discriminator' scoring class k with k (it ignores y)."""

    @nn.compact
    def __call__(self, x, y, train=True):
        return x @ jnp.arange(3.0) + 0.0 * nn.Dense(1)(x)[:, 0]


@pytest.mark.parametrize("fake_labels", ["real", "uniform"])
def test_conditional_fakes_take_the_real_labels_when_asked(fake_labels, monkeypatch):
    models.GENERATORS.load()
    monkeypatch.setitem(models.GENERATORS._entries, "label_echo", models.ModelEntry(
        "label_echo", lambda m, shape, axis, classes: _LabelEcho(), conditional=True))
    monkeypatch.setitem(models.DISCRIMINATORS._entries, "score", models.ModelEntry(
        "score", lambda m, shape, axis, classes: _Score(), conditional=True))
    c = config_lib.default_config()
    c.model.generator, c.model.discriminator, c.model.conditioning = "label_echo", "score", "projection"
    c.model.latent_dim, c.batch_size, c.model.fake_labels = 2, 64, fake_labels
    g, d = build_models(c.model, (3,), num_classes=3)
    g_tx, d_tx = optim.make_optimizers(c)
    state = create_state(c, g, d, (3,), g_tx, d_tx, num_classes=3)
    batch = {"x": jnp.zeros((1, 64, 3)), "label": jnp.full((1, 64), 2, jnp.int32)}
    _, metrics = jax.jit(make_train_step(c, g, d, g_tx, d_tx, num_classes=3))(state, batch)
    # D's mean output on the fakes is the mean label they were made with: 2 for the real labels, ~1 for uniform.
    if fake_labels == "real":
        assert float(metrics["d_fake"]) == pytest.approx(2.0)
    else:
        assert 0.5 < float(metrics["d_fake"]) < 1.5
