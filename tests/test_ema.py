"""The generator EMA's warm-up: with a decay, step t averages with min(decay, (1 + t) / (10 + t))."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax.data import get_dataset
from gan_jax.loop.blueprint import make_blueprint


@pytest.mark.parametrize("warmup,step,expected_decay", [
    (True, 0, 0.1),  # 1 / 10: a new EMA starts near G, not at its initialisation
    (True, 1000, 1001 / 1010),
    (True, 20000, 0.999),  # (1 + t) / (10 + t) above the decay: the decay itself
    (False, 0, 0.999),
])
def test_ema_decay_warms_up(warmup, step, expected_decay):
    config = rh.config(ema__decay=0.999, ema__warmup=warmup)
    iterator, spec = get_dataset(config.data, config.batch_size, config.seed)
    blueprint = make_blueprint(config, spec)
    state = blueprint.init_state()
    state = state.replace(step=jnp.int32(step), g_ema=jax.tree.map(lambda p: p + 1.0, state.g.params))
    new, _ = blueprint.train_step()(state, iterator.batches_at(0, config.n_critic))  # batch [n_critic, B, ...]
    for ema, old, params in zip(jax.tree.leaves(new.g_ema), jax.tree.leaves(state.g_ema),
                                jax.tree.leaves(new.g.params)):
        expected = expected_decay * np.asarray(old, np.float64) + (1 - expected_decay) * np.asarray(params, np.float64)
        np.testing.assert_allclose(np.asarray(ema), expected, rtol=1e-5, atol=1e-6)
