"""bCR against a hand computation, with DiffAugment on: each side's consistency is measured on the input
D saw in the loss (the fake batch with its own augmentation draw), and its weight is read from the state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.core import optim
from gan_jax.core.state import create_state
from gan_jax.core.step import make_train_step
from gan_jax.models import build_models, sample_latent
from gan_jax.objectives.augment.diffaug import apply_policy
from gan_jax.rng import stream

SHAPE = (8, 8, 1)


def _setup(bcr_weight=1.5):
    c = config_lib.default_config()
    c.data.source = "digits"
    c.model.generator, c.model.discriminator = "mlp", "mlp"
    c.model.latent_dim, c.model.g_width, c.model.g_depth, c.model.d_depth = 4, 16, 1, 0  # D linear in its input
    c.batch_size, c.optim.name, c.optim.d_lr, c.optim.g_lr = 6, "sgd", 0.05, 0.05
    c.augment.diffaug.policy = "translation,cutout"
    c.reg.bcr.weight, c.reg.bcr.policy = bcr_weight, "translation"
    config_lib.validate(c, 1)
    g, d = build_models(c.model, SHAPE)
    g_tx, d_tx = optim.make_optimizers(c)
    return c, g, d, g_tx, d_tx, create_state(c, g, d, SHAPE, g_tx, d_tx)


@pytest.mark.slow
def test_bcr_by_hand_with_diffaugment():
    c, g, d, g_tx, d_tx, state = _setup()
    x = jax.random.uniform(jax.random.key(7), (1, c.batch_size) + SHAPE, minval=-1, maxval=1)
    _, metrics = jax.jit(make_train_step(c, g, d, g_tx, d_tx))(state, {"x": x})

    w = np.asarray(state.d.params["Dense_0"]["kernel"])[:, 0]
    b = float(state.d.params["Dense_0"]["bias"][0])

    def logits(images):  # the linear D by hand
        return np.asarray(images).reshape(len(images), -1) @ w + b

    key = stream(stream(jax.random.fold_in(state.rng, 0), "d"), 0)  # the first critic update (the step's docstring)
    z = sample_latent(stream(key, "z"), c.batch_size, c.model)
    fake = g.apply({"params": state.g.params}, z)
    policy, consistency = ("translation", "cutout"), ("translation",)
    real_in = apply_policy(policy, stream(key, "augment", "real"), x[0])
    fake_in = apply_policy(policy, stream(key, "augment", "fake"), fake)
    bcr_key = stream(key, "bcr")

    def side(inputs, name):
        return np.mean((logits(apply_policy(consistency, stream(bcr_key, name), inputs)) - logits(inputs)) ** 2)

    expected = side(real_in, "real") + side(fake_in, "fake")
    np.testing.assert_allclose(float(metrics["bcr"]), expected, rtol=1e-4)
    # The earlier formulation re-augmented the fakes with the real batch's draw, against logits of the fake draw.
    mixed_in = apply_policy(policy, stream(key, "augment", "real"), fake)
    wrong = side(real_in, "real") + np.mean(
        (logits(apply_policy(consistency, stream(bcr_key, "fake"), mixed_in)) - logits(fake_in)) ** 2)
    assert abs(wrong - expected) > 1e-3 * abs(expected)


@pytest.mark.slow
def test_bcr_weight_comes_from_the_state():
    """A step built for weight 1.5 run on a state holding 4.0 gives the step built for 4.0: sweepable by vmap."""
    c, g, d, g_tx, d_tx, state = _setup(1.5)
    c4, *_, state4 = _setup(4.0)
    x = jax.random.uniform(jax.random.key(8), (1, c.batch_size) + SHAPE, minval=-1, maxval=1)
    assert float(state4.hparams["reg"]["bcr"]["weight"]) == 4.0
    moved = state.replace(hparams=state4.hparams)
    a, _ = jax.jit(make_train_step(c, g, d, g_tx, d_tx))(moved, {"x": x})
    b, _ = jax.jit(make_train_step(c4, g, d, g_tx, d_tx))(state4, {"x": x})
    for u, v in zip(jax.tree.leaves(a.d.params), jax.tree.leaves(b.d.params)):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)
    c0, *_ = _setup(1.5)
    plain, _ = jax.jit(make_train_step(c0, g, d, g_tx, d_tx))(state, {"x": x})
    assert max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a.d.params),
                                                              jax.tree.leaves(plain.d.params))) > 1e-5
