"""The relational memory core and RelGAN's relational generator against hand-written numpy and RelGAN's sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.models import build_models, relational


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _numpy_step(p, memory, x, num_heads):
    """One relational memory step in float64, written from Santoro et al. / RelGAN's equations."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
    b, n, w = memory.shape
    d = w // num_heads

    def norm(a, q):  # over rows and features of each example; per-feature scale and offset
        mu = a.mean(axis=(1, 2), keepdims=True)
        var = ((a - mu) ** 2).mean(axis=(1, 2), keepdims=True)
        return (a - mu) / np.sqrt(var + 1e-12) * q["scale"] + q["offset"]

    row = x @ p["input"]["kernel"] + p["input"]["bias"]  # [B, W]
    rows = np.concatenate([memory, row[:, None, :]], axis=1)  # [B, N+1, W]
    qkv = norm(rows @ p["qkv"]["kernel"], p["qkv_norm"])  # [B, N+1, 3W]
    out = np.zeros_like(rows)
    for h in range(num_heads):
        chunk = qkv[:, :, h * 3 * d:(h + 1) * 3 * d]
        q, k, v = chunk[..., :d], chunk[..., d:2 * d], chunk[..., 2 * d:]
        att = _softmax(np.einsum("bid,bjd->bij", q / np.sqrt(3 * d), k))
        out[:, :, h * d:(h + 1) * d] = np.einsum("bij,bjd->bid", att, v)
    rows = norm(rows + out, p["attention_norm"])
    mlp = np.maximum(rows @ p["mlp_0"]["kernel"] + p["mlp_0"]["bias"], 0) @ p["mlp_1"]["kernel"] + p["mlp_1"]["bias"]
    rows = norm(rows + mlp, p["mlp_norm"])[:, :n]
    gates = np.tanh(memory) @ p["gate_memory"]["kernel"] + (row @ p["gate_input"]["kernel"])[:, None, :]
    i, f = gates[..., :w], gates[..., w:]
    return _sigmoid(i) * np.tanh(rows) + _sigmoid(f + 1.0) * memory


def _randomise(params, seed):
    """Every leaf redrawn (norm scales and biases too), so each one shows in the output."""
    leaves, tree = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(tree, [jnp.asarray(rng.normal(0, 0.5, a.shape), jnp.float32) for a in leaves])


@pytest.mark.parametrize("mem_slots,num_heads,head_size", [(1, 2, 4), (3, 2, 3), (2, 1, 5)])
def test_memory_step_matches_numpy(mem_slots, num_heads, head_size):
    core = relational.RelationalMemory(mem_slots, num_heads, head_size)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    memory = np.asarray(core.initial_state(4))
    width = num_heads * head_size
    np.testing.assert_array_equal(memory[0], np.eye(mem_slots, max(mem_slots, width))[:, :width])
    variables = core.init(jax.random.key(0), x, memory)
    params = _randomise(variables["params"], 1)
    memory = memory + np.random.default_rng(2).normal(0, 0.5, memory.shape).astype(np.float32)
    output, new_memory = core.apply({"params": params}, x, memory)
    expected = _numpy_step(params["core"], memory.astype(np.float64), x.astype(np.float64), num_heads)
    np.testing.assert_allclose(np.asarray(new_memory), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(output), expected.reshape(4, -1), rtol=1e-4, atol=1e-5)


def _tiny_generator(**kw):
    return relational.RelationalGenerator(11, 6, emb_dim=5, mem_slots=2, num_heads=2, head_size=3, start_token=1, **kw)


def _numpy_logits(p, ids, g):
    """Teacher-forced logits [B, T, V] by stepping the numpy core position by position."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
    b = ids.shape[0]
    memory = np.broadcast_to(np.eye(g.mem_slots, g.num_heads * g.head_size), (b, g.mem_slots, g.width))
    token = np.full(b, g.start_token)
    out = []
    for t in range(ids.shape[1]):
        memory = _numpy_step(p["core"], memory, p["embedding"][token], g.num_heads)
        out.append(memory.reshape(b, -1) @ p["w_out"] + p["b_out"])
        token = ids[:, t]
    return np.stack(out, axis=1)


@pytest.mark.slow
def test_log_prob_matches_numpy_at_each_temperature():
    g = _tiny_generator()
    z = jax.random.normal(jax.random.key(0), (5, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    variables = {**variables, "params": _randomise(variables["params"], 3)}
    ids = np.random.default_rng(4).integers(0, 11, (5, 6))
    logits = _numpy_logits(variables["params"], ids, g)
    for temperature in (1.0, 0.5, 2.0):
        scaled = logits / temperature
        logz = np.log(np.exp(scaled - scaled.max(-1, keepdims=True)).sum(-1)) + scaled.max(-1)
        expected = np.take_along_axis(scaled, ids[..., None], -1)[..., 0] - logz
        got = g.apply(variables, ids, temperature, method="log_prob")
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_log_prob_normalised_and_causal():
    g = _tiny_generator()
    z = jax.random.normal(jax.random.key(0), (4, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    ids = np.asarray(g.apply(variables, z, method="sample_ids"))
    logp = np.asarray(g.apply(variables, ids, method="log_prob"))
    changed = ids.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 11
    logp2 = np.asarray(g.apply(variables, changed, method="log_prob"))
    np.testing.assert_allclose(logp[:, :3], logp2[:, :3], atol=1e-6)  # the past does not see the future
    assert not np.allclose(logp[:, 4:], logp2[:, 4:])  # the future sees the past
    # Each position's distribution sums to 1 over the vocabulary, whatever the prefix.
    prefix = ids[:1].copy()
    for t in (0, 2, 5):
        rows = np.repeat(prefix, 11, axis=0)
        rows[:, t] = np.arange(11)
        total = np.exp(np.asarray(g.apply(variables, rows, method="log_prob"))[:, t]).sum()
        assert total == pytest.approx(1.0, abs=1e-5)


def test_sample_ids_near_zero_temperature_is_greedy():
    g = _tiny_generator()
    z = jax.random.normal(jax.random.key(0), (6, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    variables = {**variables, "params": _randomise(variables["params"], 5)}
    ids = np.asarray(g.apply(variables, z, 1e-6, method="sample_ids"))
    greedy = np.zeros((6, 0), int)
    for t in range(6):  # decode greedily with the numpy model, one position at a time
        logits = _numpy_logits(variables["params"], np.pad(greedy, ((0, 0), (0, 1))), g)
        greedy = np.concatenate([greedy, logits[:, t].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(ids, greedy)
    assert not np.array_equal(np.asarray(g.apply(variables, z, 1.0, method="sample_ids")), greedy)


def test_gumbel_outputs_and_hard_samples_agree():
    g = _tiny_generator(beta_max=1000.0, beta_anneal="linear", anneal_steps=10)
    z = jax.random.normal(jax.random.key(0), (8, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    ids = np.asarray(g.apply(variables, z, method="sample_ids"))
    v = {**variables, "schedule": {"step": jnp.int32(10)}}
    out, updates = g.apply(v, z, train=True, mutable=["schedule"])
    assert int(updates["schedule"]["step"]) == 11
    np.testing.assert_allclose(np.asarray(out.sum(-1)), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out.argmax(-1)), ids)
    assert float(out.max(-1).mean()) > 0.99


def test_parameter_count_and_initialisation_match_relgan_oracle_config():
    c = config_lib.load_config("oracle_relgan")
    assert c.model.generator == "relational"
    g, _ = build_models(c.model, (20, 5000))
    variables = g.init(jax.random.key(0), jnp.zeros((1, c.model.latent_dim)), train=False)
    params = variables["params"]
    count = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params))
    # RelGAN's rmc_vanilla generator, oracle settings: vocabulary 5000, embedding 32, 1 slot x 2 heads x 256.
    v, e, w = 5000, 32, 2 * 256
    f = 3 * w  # queries, keys, values of both heads
    relgan = (v * e  # g_emb
              + e * w + w  # input_for_cancat (with bias)
              + w * f  # lin_qkv (no bias)
              + 2 * f + 2 * w + 2 * w  # three layer norms: qkv, after attention, after the MLP
              + 2 * (w * w + w)  # the two-layer MLP
              + 2 * (w * 2 * w)  # gate_in and gate_mem (no bias)
              + w * v + v)  # Wo, bo
    assert relgan == 5_107_336
    assert count == relgan
    # Truncated normals with standard deviation 1 / sqrt(fan-in): within two of them, std about 0.88 of it.
    for name, array, fan_in in [("embedding", params["embedding"], v), ("w_out", params["w_out"], w),
                                ("qkv", params["core"]["qkv"]["kernel"], w)]:
        a, std = np.asarray(array), 1 / np.sqrt(fan_in)
        assert np.abs(a).max() <= 2 * std + 1e-7, name
        assert a.std() == pytest.approx(0.88 * std, rel=0.03), name
    np.testing.assert_array_equal(np.asarray(params["b_out"]), 0.0)
    np.testing.assert_array_equal(np.asarray(params["core"]["mlp_norm"]["scale"]), 1.0)


def test_config_errors_name_the_key():
    c = config_lib.load_config("oracle_relgan")
    c.unlock()
    c.model.relational.num_heads = 0
    with pytest.raises(config_lib.ConfigError, match="model.relational.num_heads"):
        config_lib.validate(c, 1)
    c.model.relational.num_heads = 2
    c.model.relational.start_token = 5000
    with pytest.raises(config_lib.ConfigError, match="model.relational.start_token"):
        build_models(c.model, (20, 5000))
