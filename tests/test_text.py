"""Text data, tokenizers, the oracle, text models and objectives, and a text run end to end."""

import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import objectives
from gan_jax.data import get_dataset, oracle
from gan_jax.data.text import TextDataError
from gan_jax.data.tokenizer import EOS_ID, PAD_ID, UNK_ID, Tokenizer
from gan_jax.models import text as text_models

ROOT = pathlib.Path(__file__).resolve().parent.parent
SENTENCES = ["the cat sat on the mat .", "a dog ran .", "the dog sat .", "a cat ran on the mat ."]


# Tokenizers.

@pytest.mark.parametrize("level", ["word", "char"])
def test_tokenizer_round_trips_text(level):
    tok = Tokenizer.build(SENTENCES, level, max_len=40)
    for s in SENTENCES:
        ids = tok.encode(s)
        assert ids.shape == (40,) and ids.dtype == np.int32
        assert tok.decode(ids) == s
    loaded = Tokenizer.from_json(tok.to_json())
    assert loaded.tokens == tok.tokens and loaded.decode(tok.encode(SENTENCES[0])) == SENTENCES[0]


def test_tokenizer_vocabulary_limit_unk_eos_pad():
    tok = Tokenizer.build(SENTENCES, "word", max_len=5, vocab_size=6)
    # Counts: the 4, . 4, cat/dog/mat/on/ran/sat/a 2 or less -> the two most frequent words, ties alphabetical.
    assert tok.tokens == ["<pad>", "<bos>", "<eos>", "<unk>", ".", "the"]
    np.testing.assert_array_equal(tok.encode("the zebra ."), [5, UNK_ID, 4, EOS_ID, PAD_ID])
    np.testing.assert_array_equal(tok.encode("the the the the the the"), [5] * 5)  # cut, no room for <eos>
    assert tok.decode([5, UNK_ID, EOS_ID, 5]) == "the <unk>"


def test_empty_or_blank_text_file_gives_clear_error(tmp_path):
    c = config_lib.default_config()
    for name, content in [("empty.txt", ""), ("blank.txt", "\n   \n\t\n")]:
        path = tmp_path / name
        path.write_text(content)
        c.data.source = f"local:{path}"
        c.data.tokenizer = "word"
        with pytest.raises(TextDataError, match="empty or holds only blank lines"):
            get_dataset(c.data, 2, 0)
    good = tmp_path / "good.txt"
    good.write_text("\n".join(SENTENCES))
    c.data.source = f"local:{good}"
    with pytest.raises(TextDataError, match="data.test_file"):
        get_dataset(c.data, 2, 0)
    c.data.test_file = str(tmp_path / "missing.txt")
    with pytest.raises(TextDataError, match="does not exist"):
        get_dataset(c.data, 2, 0)


def test_local_text_source(tmp_path):
    (tmp_path / "train.txt").write_text("\n".join(SENTENCES) + "\n\n")
    (tmp_path / "test.txt").write_text("the cat ran .\n")
    c = config_lib.default_config()
    c.data.source = f"local:{tmp_path / 'train.txt'}"
    c.data.test_file = str(tmp_path / "test.txt")
    c.data.tokenizer = "word"
    c.data.max_len = 8
    it, spec = get_dataset(c.data, 2, 0)
    tok = spec.extra["tokenizer"]
    assert spec.kind == "text" and spec.shape == (8, tok.vocab_size) and spec.num_examples == 4
    batch = next(it)
    assert batch["x"].shape == (2, 8) and batch["x"].dtype == np.int32
    assert {tok.decode(row) for row in batch["x"]} <= set(SENTENCES)
    assert tok.decode(spec.extra["test_ids"][0]) == "the cat ran ."


def test_tfds_text_on_mock_data(_mocked_download, tmp_path):
    import tensorflow_datasets as tfds

    c = config_lib.default_config()
    c.data.source = "tfds:tiny_shakespeare"
    c.data.tokenizer = "char"
    c.data.max_len = 16
    c.data.vocab_size = 30
    c.data.data_dir = str(tmp_path)
    with tfds.testing.mock_data(num_examples=3):
        it, spec = get_dataset(c.data, 2, 0)
    tok = spec.extra["tokenizer"]
    assert spec.kind == "text" and spec.shape == (16, tok.vocab_size) and tok.vocab_size <= 30
    assert next(it)["x"].shape == (2, 16)
    assert len(spec.extra["test_ids"]) >= 1


# The oracle.

def _numpy_oracle_nll(p, ids):
    """An independent float64 numpy LSTM (SeqGAN's target LSTM equations)."""
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    n, t = ids.shape
    h = np.zeros((n, p["u"].shape[0]))
    c = np.zeros_like(h)
    prev = np.zeros(n, int)
    total = np.zeros((n, t))
    for step in range(t):
        gates = p["embedding"][prev] @ p["w"] + h @ p["u"] + p["b"]
        i, f, o, g = np.split(gates, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        logits = h @ p["w_out"] + p["b_out"]
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        total[:, step] = logz - logits[np.arange(n), ids[:, step]]
        prev = ids[:, step]
    return total


def test_oracle_nll_matches_numpy_and_sampling_is_deterministic():
    params = oracle.oracle_params(seed=5, vocab_size=50, emb_dim=8, hidden_dim=8)
    for v in params.values():  # N(0, 1) weights
        assert abs(v.mean()) < 0.5 and 0.6 < v.std() < 1.4
    ids = oracle.sample(params, 30, seed=1, length=7)
    assert ids.shape == (30, 7) and ids.min() >= 0 and ids.max() < 50
    np.testing.assert_array_equal(ids, oracle.sample(params, 30, seed=1, length=7))
    assert not np.array_equal(ids, oracle.sample(params, 30, seed=2, length=7))
    np.testing.assert_allclose(oracle.token_nll(params, ids), _numpy_oracle_nll(params, ids), rtol=1e-4, atol=1e-4)
    # The oracle's own samples are likelier under it than uniform random sequences.
    uniform = np.random.default_rng(0).integers(0, 50, (30, 7))
    assert oracle.nll(params, ids) < oracle.nll(params, uniform)


def test_oracle_categorical_draws_follow_softmax():
    logits = jnp.log(jnp.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.0, 0.0, 0.3]]) + 1e-30)
    n = 20_000
    draws = np.asarray(jax.vmap(lambda k: oracle._categorical(k, logits))(jax.random.split(jax.random.key(0), n)))
    freq = np.stack([np.bincount(draws[:, r], minlength=4) / n for r in range(2)])
    np.testing.assert_allclose(freq, [[0.1, 0.2, 0.3, 0.4], [0.7, 0.0, 0.0, 0.3]], atol=0.015)


_ORACLE_DIGEST = """
import hashlib, numpy as np
from gan_jax.data import oracle
p = oracle.oracle_params()
x = oracle.sample({k: v for k, v in p.items()}, 50, 0, 20)
print(hashlib.sha256(np.ascontiguousarray(x).tobytes() + p['w'].tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_oracle_identical_across_runs():
    digests = {subprocess.run([sys.executable, "-c", _ORACLE_DIGEST], capture_output=True, text=True, check=True,
                              env={"JAX_PLATFORMS": "cpu", "PATH": ""}).stdout.strip() for _ in range(2)}
    assert len(digests) == 1 and len(digests.pop()) == 64


# Models.

GENERATORS = [
    lambda **kw: text_models.LSTMGenerator(20, 6, emb_dim=8, hidden_dim=8, **kw),
    lambda **kw: text_models.TransformerGenerator(20, 6, emb_dim=8, width=16, num_layers=1, num_heads=2, **kw),
]


@pytest.mark.slow
@pytest.mark.parametrize("make", GENERATORS)
def test_gumbel_rows_sum_to_one_and_harden_as_beta_grows(make):
    g = make(beta_max=1000.0, beta_anneal="linear", anneal_steps=100)
    z = jax.random.normal(jax.random.key(0), (16, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    hard_ids = g.apply(variables, z, method="sample_ids")
    peaks = []
    for step in (0, 50, 100):
        v = {**variables, "schedule": {"step": jnp.int32(step)}}
        out, updates = g.apply(v, z, train=True, mutable=["schedule"])
        assert int(updates["schedule"]["step"]) == step + 1
        np.testing.assert_allclose(np.asarray(out.sum(-1)), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(out.argmax(-1)), np.asarray(hard_ids))  # same noise, same tokens
        peaks.append(float(out.max(-1).mean()))
    assert peaks[0] < peaks[1] < peaks[2] and peaks[2] > 0.99
    hard = g.apply(variables, z, train=False)
    assert set(np.unique(np.asarray(hard)).tolist()) == {0.0, 1.0}


def test_beta_anneal_values():
    assert float(text_models.beta_at(jnp.int32(0), 100.0, "exp", 10)) == pytest.approx(1.0)
    assert float(text_models.beta_at(jnp.int32(5), 100.0, "exp", 10)) == pytest.approx(10.0, rel=1e-5)
    assert float(text_models.beta_at(jnp.int32(20), 100.0, "exp", 10)) == pytest.approx(100.0, rel=1e-5)
    assert float(text_models.beta_at(jnp.int32(5), 101.0, "linear", 10)) == pytest.approx(51.0)


@pytest.mark.slow
@pytest.mark.parametrize("make", GENERATORS)
def test_teacher_forcing_is_causal_and_normalised(make):
    g = make()
    z = jax.random.normal(jax.random.key(0), (4, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    ids = np.asarray(g.apply(variables, z, method="sample_ids"))
    logp = np.asarray(g.apply(variables, ids, method="log_prob"))
    changed = ids.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 20
    logp2 = np.asarray(g.apply(variables, changed, method="log_prob"))
    np.testing.assert_allclose(logp[:, :3], logp2[:, :3], atol=1e-6)  # the past does not see the future
    assert not np.allclose(logp[:, 4:], logp2[:, 4:])  # the future sees the past
    # The first token's distribution sums to 1 over the vocabulary.
    first = np.array([g.apply(variables, np.full((1, 6), v), method="log_prob")[0, 0] for v in range(20)])
    assert np.exp(first).sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_discriminator_ids_equal_one_hot():
    d = text_models.RelGANDiscriminator(num_rep=3, emb_dim=4, num_filters=5)
    ids = np.random.default_rng(0).integers(0, 20, (4, 6))
    one_hot = jax.nn.one_hot(ids, 20)
    variables = d.init(jax.random.key(0), one_hot)
    out = d.apply(variables, one_hot)
    assert out.shape == (4, 3)
    np.testing.assert_allclose(np.asarray(d.apply(variables, ids)), np.asarray(out), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window", [1, 2, 5])
def test_window_conv_matches_numpy_valid_convolution(window):
    x = np.random.default_rng(1).normal(size=(3, 7, 4)).astype(np.float32)
    conv = text_models.WindowConv(features=5, window=window)
    variables = conv.init(jax.random.key(0), x)
    kernel = np.asarray(variables["params"]["kernel"], np.float64)  # [window, in, out]
    bias = np.random.default_rng(2).normal(size=5)
    variables = {"params": {"kernel": variables["params"]["kernel"], "bias": jnp.asarray(bias, jnp.float32)}}
    n = 7 - window + 1
    expected = np.zeros((3, n, 5)) + bias
    for t in range(n):  # out[b, t, f] = sum_{i, e} x[b, t + i, e] * kernel[i, e, f] + bias[f]
        for i in range(window):
            expected[:, t] += x[:, t + i].astype(np.float64) @ kernel[i]
    np.testing.assert_allclose(np.asarray(conv.apply(variables, x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("make", GENERATORS)
def test_gradient_flows_from_d_loss_to_every_generator_parameter(make):
    g = make(beta_max=10.0)
    d = text_models.RelGANDiscriminator(num_rep=2, emb_dim=4, num_filters=4)
    z = jax.random.normal(jax.random.key(0), (8, 2))
    g_vars = g.init(jax.random.key(1), z, train=False)
    d_vars = d.init(jax.random.key(2), jnp.zeros((2, 6, 20)))
    real = jnp.asarray(np.random.default_rng(0).integers(0, 20, (8, 6)))

    def g_loss(params):
        fake, _ = g.apply({**g_vars, "params": params}, z, train=True, mutable=["schedule"])
        return objectives.get_loss("relativistic").g(d.apply(d_vars, real), d.apply(d_vars, fake), jnp.mean)

    grads = jax.grad(g_loss)(g_vars["params"])
    norms = {jax.tree_util.keystr(path): float(jnp.linalg.norm(leaf))
             for path, leaf in jax.tree_util.tree_leaves_with_path(grads)}
    assert all(np.isfinite(v) and v > 0 for v in norms.values()), norms


@pytest.mark.slow
def test_reinforce_and_mle_objectives():
    g = text_models.LSTMGenerator(20, 6, emb_dim=8, hidden_dim=8, hard=True)
    z = jax.random.normal(jax.random.key(0), (8, 2))
    variables = g.init(jax.random.key(1), z, train=False)
    real = jnp.asarray(np.random.default_rng(0).integers(0, 20, (8, 6)))
    ids = g.apply(variables, z, method="sample_ids")
    scores = jnp.arange(8.0)  # a critic that prefers later rows
    critic = lambda x: scores  # noqa: E731
    objective = objectives.G_OBJECTIVES.get("reinforce")(g, jnp.mean)
    loss, _ = objective(variables["params"], {"schedule": variables["schedule"]}, z, real, critic)
    reward = jax.nn.sigmoid(scores)
    logp = g.apply(variables, ids, method="log_prob").mean(-1)
    assert float(loss) == pytest.approx(float(-jnp.mean((reward - reward.mean()) * logp)), rel=1e-5)
    mle = objectives.G_OBJECTIVES.get("mle")(g, jnp.mean)
    nll, _ = mle(variables["params"], {"schedule": variables["schedule"]}, z, real, critic)
    assert float(nll) == pytest.approx(-float(g.apply(variables, real, method="log_prob").mean()), rel=1e-6)
    with pytest.raises(ValueError, match="text.g_objective"):
        objectives.G_OBJECTIVES.get("ppo")


# A text run end to end.

def _tiny_text_config(tmp_path, **text):
    (tmp_path / "train.txt").write_text("\n".join(SENTENCES * 5))
    (tmp_path / "test.txt").write_text("\n".join(SENTENCES[:2]))
    c = config_lib.load_config(str(ROOT / "experiments" / "coco_relgan.py"))
    c.unlock()
    c.data.source = f"local:{tmp_path / 'train.txt'}"
    c.data.test_file = str(tmp_path / "test.txt")
    c.data.max_len = 8
    c.update(dict(num_steps=4, batch_size=4, steps_per_dispatch=2, log_every_steps=2, eval_every_steps=4,
                  ckpt_every_steps=4))
    c.model.text.update(dict(emb_dim=8, hidden_dim=8, d_num_rep=2, d_emb_dim=4, d_num_filters=4))
    c.text.pretrain_steps = 3
    c.eval.num_samples = 6
    c.text.update(text)
    if c.text.g_objective == "reinforce":
        c.model.text.hard_samples = True
    c.lock()
    return c


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["adversarial", "reinforce", "mle"])
def test_text_run_end_to_end(tmp_path, objective):
    from gan_jax.data import tokenizer as tokenizer_lib
    from gan_jax.loop.trainer import train_and_evaluate

    config = _tiny_text_config(tmp_path, g_objective=objective)
    summary = train_and_evaluate(config, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert summary["step"] == 4
    metrics = summary["metrics"]
    for key in ("eval/bleu2", "eval/bleu5", "eval/self_bleu3", "eval/nll_gen", "eval/unique_sentences",
                "train/g_loss", "train/d_loss"):
        assert np.isfinite(metrics[key]), key
    lines = (run / "samples" / "step_00000004.txt").read_text().splitlines()
    assert len(lines) == 6
    vocab = set(tokenizer_lib.load(run / "tokenizer.json").tokens)
    assert all(set(line.split()) <= vocab for line in lines)
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and first["pretrain/steps"] == 3 and np.isfinite(first["pretrain/nll"])


def test_reinforce_needs_hard_samples():
    c = config_lib.load_config(str(ROOT / "experiments" / "oracle_relgan.py"))
    c.unlock()
    c.text.g_objective = "reinforce"
    with pytest.raises(config_lib.ConfigError, match="hard_samples"):
        config_lib.validate(c, 1)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["adversarial", "reinforce"])
def test_text_step_under_pmap_matches_single_device(objective):
    from gan_jax.core import optim
    from gan_jax.core.parallel import Runner
    from gan_jax.core.state import create_state
    from gan_jax.core.step import make_train_step
    from gan_jax.models import build_models

    c = config_lib.default_config()
    c.update(dict(batch_size=8, loss="relativistic", model=dict(generator="lstm", discriminator="relgan_cnn"),
                  optim=dict(name="sgd", g_lr=0.05, d_lr=0.05)))
    c.model.text.update(dict(emb_dim=8, hidden_dim=8, d_num_rep=2, d_emb_dim=4, d_num_filters=4,
                             hard_samples=objective == "reinforce"))
    c.text.g_objective = objective
    shape = (6, 20)
    x = np.random.default_rng(0).integers(0, 20, (2, 1, 8, 6)).astype(np.int32)

    def run(mode):
        g, d = build_models(c.model, shape)
        g_tx, d_tx = optim.make_optimizer(c, c.optim.g_lr), optim.make_optimizer(c, c.optim.d_lr)
        state = create_state(c, g, d, shape, g_tx, d_tx)

        def build(axis_name, num_devices):
            gm, dm = build_models(c.model, shape, axis_name)
            return make_train_step(c, gm, dm, g_tx, d_tx, axis_name, num_devices)

        runner = Runner(mode, build, jax.devices()[:4])
        new_state, metrics = runner.step(runner.put_state(state), runner.put_batch({"x": x}))
        return jax.device_get(runner.get_state(new_state)), jax.device_get(metrics)

    ref_state, ref_metrics = run("none")
    state, metrics = run("pmap")
    if objective == "adversarial":  # beta's counter: one per generator update
        assert int(ref_state.g.model_state["schedule"]["step"]) == 2
    for name in ref_metrics:
        np.testing.assert_allclose(metrics[name], ref_metrics[name], rtol=1e-4, atol=1e-5, err_msg=name)
    for a, b in zip(jax.tree.leaves(state.g.params), jax.tree.leaves(ref_state.g.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_coco_recipes_ask_for_their_files_by_key_instead_of_pointing_outside_the_package():
    from gan_jax.data.text import TextDataError, load_text

    for name in ("coco_relgan", "coco_mle"):
        c = config_lib.load_config(str(ROOT / "experiments" / f"{name}.py"))
        assert ".." not in c.data.source and c.data.test_file is None
        with pytest.raises(TextDataError) as e:
            load_text(c.data)
        message = str(e.value)
        assert "--config.data.source=local:" in message and "--config.data.test_file=" in message
        assert "image_coco.txt" in message and "test_coco.txt" in message
