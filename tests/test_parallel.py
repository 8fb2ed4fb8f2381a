"""pmap and jit+sharding give the numbers of a single device, for a model with batch norm."""

import jax
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.core import optim
from gan_jax.core.parallel import Runner
from gan_jax.core.state import create_state
from gan_jax.core.step import make_train_step
from gan_jax.models import build_models


def _config(**overrides):
    c = config_lib.default_config()
    c.batch_size = 16
    c.model.g_width = 32
    c.model.d_width = 16
    c.n_critic = 2
    c.update(overrides)
    return c


def _one_dispatch(config, mode, x):
    g, d = build_models(config.model, (2,))
    g_tx = optim.make_optimizer(config, config.optim.g_lr)
    d_tx = optim.make_optimizer(config, config.optim.d_lr, config.n_critic)
    state = create_state(config, g, d, (2,), g_tx, d_tx)

    def build(axis_name, num_devices):
        gm, dm = build_models(config.model, (2,), axis_name)
        return make_train_step(config, gm, dm, g_tx, d_tx, axis_name, num_devices)

    runner = Runner(mode, build, jax.devices()[:4])
    new_state, metrics = runner.step(runner.put_state(state), runner.put_batch({"x": x}))
    return jax.device_get(runner.get_state(new_state)), jax.device_get(metrics)


def _assert_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["pmap", "jit"])
@pytest.mark.parametrize("loss,gp", [("non_saturating", 0.0), ("relativistic", 1.0)])
def test_parallel_modes_match_single_device(mode, loss, gp):
    assert jax.device_count() >= 4
    # SGD keeps parameter differences proportional to gradient differences (Adam's first
    # step would amplify float rounding of tiny gradients to a full learning-rate step).
    config = _config(loss=loss, optim=dict(name="sgd", g_lr=0.01, d_lr=0.01), reg=dict(gp_weight=gp),
                     ema=dict(decay=0.9))
    x = np.random.default_rng(0).normal(size=(3, config.n_critic, config.batch_size, 2)).astype(np.float32)
    ref_state, ref_metrics = _one_dispatch(config, "none", x)
    state, metrics = _one_dispatch(config, mode, x)
    for name in ref_metrics:
        np.testing.assert_allclose(metrics[name], ref_metrics[name], rtol=1e-4, atol=1e-5, err_msg=name)
    _assert_close((state.g.params, state.d.params, state.g_ema), (ref_state.g.params, ref_state.d.params,
                                                                   ref_state.g_ema), atol=1e-5)
    # The generator's batch statistics are those of the global batch on every device.
    _assert_close(state.g.model_state, ref_state.g.model_state, atol=1e-5)
    assert int(state.step) == 3


@pytest.mark.slow
def test_pmap_with_adam_agrees_to_learning_rate_scale():
    config = _config(optim=dict(g_lr=1e-3, d_lr=1e-3))
    x = np.random.default_rng(1).normal(size=(1, config.n_critic, config.batch_size, 2)).astype(np.float32)
    ref_state, ref_metrics = _one_dispatch(config, "none", x)
    state, metrics = _one_dispatch(config, "pmap", x)
    np.testing.assert_allclose(metrics["d_loss"], ref_metrics["d_loss"], rtol=1e-5)
    _assert_close(state.g.params, ref_state.g.params, atol=2e-3)
