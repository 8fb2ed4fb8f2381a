"""The oracle of the text-GAN literature (SeqGAN): a random LSTM language model as the true data.

A 1-layer LSTM, embedding 32, hidden 32, vocabulary 5000, sequences of 20 tokens, every
weight and bias drawn from N(0, 1) with a fixed seed; sequences start from token 0 with zero
state. Its samples are the training and held-out sets; NLL_oracle (the oracle's per-token
negative log-likelihood of generated text) measures quality, and its value on the oracle's
own samples (about 5.75) is the floor.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

VOCAB_SIZE = 5000
SEQ_LEN = 20
EMB_DIM = 32
HIDDEN_DIM = 32
START_TOKEN = 0
WEIGHT_SEED = 88  # the oracle's weights: fixed, independent of the run's seed
_CHUNK = 2000  # sequences per device call, to bound the [chunk, vocab] logits in memory


def oracle_params(seed: int = WEIGHT_SEED, vocab_size: int = VOCAB_SIZE, emb_dim: int = EMB_DIM,
                  hidden_dim: int = HIDDEN_DIM) -> dict[str, np.ndarray]:
    """The oracle's weights, all N(0, 1), from numpy's generator seeded with `seed`."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {
        "embedding": normal(vocab_size, emb_dim),
        "w": normal(emb_dim, 4 * hidden_dim),  # input -> gates i, f, o, candidate
        "u": normal(hidden_dim, 4 * hidden_dim),  # hidden -> gates
        "b": normal(4 * hidden_dim),
        "w_out": normal(hidden_dim, vocab_size),
        "b_out": normal(vocab_size),
    }


def _cell(params, carry, x):
    h, c = carry
    gates = x @ params["w"] + h @ params["u"] + params["b"]
    i, f, o, g = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h @ params["w_out"] + params["b_out"]


def _zero_carry(params, n):
    hidden = params["u"].shape[0]
    return jnp.zeros((n, hidden)), jnp.zeros((n, hidden))


def _categorical(key, logits) -> jax.Array:
    """One draw per row by inverting the CDF: one uniform a row instead of a Gumbel per logit."""
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    u = jax.random.uniform(key, (logits.shape[0], 1)) * cdf[:, -1:]
    return jnp.minimum(jnp.sum(cdf < u, axis=-1), logits.shape[-1] - 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _sample(params, key, n: int, length: int) -> jax.Array:
    def body(carry, step_key):
        state, token = carry
        state, logits = _cell(params, state, params["embedding"][token])
        token = _categorical(step_key, logits)
        return (state, token), token

    start = jnp.full((n,), START_TOKEN, jnp.int32)
    _, tokens = jax.lax.scan(body, (_zero_carry(params, n), start), jax.random.split(key, length))
    return tokens.T


@jax.jit
def _token_nll(params, ids) -> jax.Array:
    inputs = jnp.concatenate([jnp.full((ids.shape[0], 1), START_TOKEN, ids.dtype), ids[:, :-1]], axis=1)

    def body(state, x):
        return _cell(params, state, x)

    _, logits = jax.lax.scan(body, _zero_carry(params, ids.shape[0]), params["embedding"][inputs.T])
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, ids.T[..., None], axis=-1)[..., 0].T


def sample(params: dict, n: int, seed: int, length: int = SEQ_LEN) -> np.ndarray:
    """int32 [n, length] oracle sequences; deterministic in (params, n, seed, length)."""
    key = jax.random.key(seed)
    chunks = [np.asarray(_sample(params, jax.random.fold_in(key, i), min(_CHUNK, n - start), length))
              for i, start in enumerate(range(0, n, _CHUNK))]
    return np.concatenate(chunks, axis=0)


def token_nll(params: dict, ids: np.ndarray) -> np.ndarray:
    """float [N, T]: -log p_oracle(token_t | tokens_<t) of every token of `ids` [N, T]."""
    ids = np.asarray(ids, np.int32)
    return np.concatenate([np.asarray(_token_nll(params, ids[s:s + _CHUNK])) for s in range(0, len(ids), _CHUNK)])


def nll(params: dict, ids: np.ndarray) -> float:
    """NLL_oracle per token: the mean of `token_nll`."""
    return float(np.mean(token_nll(params, ids)))


@functools.lru_cache(maxsize=2)
def cached_params(seed: int = WEIGHT_SEED) -> dict:
    return {k: jnp.asarray(v) for k, v in oracle_params(seed).items()}
