"""Relational memory core (Santoro et al. 2018) and RelGAN's relational-memory text generator (Nie et al. 2019).

The core keeps a memory of `mem_slots` rows of `num_heads * head_size` features. Each step
projects the input to one more row, lets every row of [memory; input] attend to every row
(multi-head dot-product attention), adds a residual and a two-layer ReLU MLP, each followed
by layer normalisation, drops the input row, and gates the result into the memory:

    next = sigmoid(i) * tanh(attended) + sigmoid(f + 1) * memory,
    [i, f] = tanh(memory) @ W_mem + input_row @ W_in   (per unit, no biases besides f's fixed +1).

As RelGAN configures it: queries and keys of `head_size` features, queries scaled by
(2 * key_size + head_size) ** -0.5, the q/k/v projection without bias, layer normalisation
over all rows and features of an example jointly (scale and offset per feature, epsilon
1e-12), the initial memory the identity padded with zeros, and every weight matrix drawn
from a normal truncated at two standard deviations with standard deviation 1 / sqrt(fan-in)
(the embedding: 1 / sqrt(vocabulary)). The generator embeds the previous token (the start
token `model.relational.start_token` first), steps the core and reads logits from the
flattened memory.

Config: `model.relational.{mem_slots, num_heads, head_size, start_token}`; the embedding size
and the Gumbel-softmax settings are the shared `model.text` keys.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models import register_generator
from gan_jax.models import text as text_models

LAYER_NORM_EPSILON = 1e-12  # RelGAN's layer normalisation
FORGET_BIAS = 1.0
INPUT_BIAS = 0.0

RELATIONAL_CONFIG = {"relational": {
    "mem_slots": 1,
    "num_heads": 2,
    "head_size": 256,  # memory row width: num_heads * head_size
    "start_token": 0,  # the token whose embedding is the first input (the oracle's start token)
}}


def truncated_normal(std: float):
    """A normal with standard deviation `std`, redrawn beyond two standard deviations (TensorFlow's)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * std

    return init


def _linear(key, fan_in: int, fan_out: int, bias: bool) -> dict:
    out = {"kernel": truncated_normal(1.0 / math.sqrt(fan_in))(key, (fan_in, fan_out))}
    if bias:
        out["bias"] = jnp.zeros((fan_out,))
    return out


def _norm(size: int) -> dict:
    return {"scale": jnp.ones((size,)), "offset": jnp.zeros((size,))}


def init_core(key: jax.Array, input_size: int, num_heads: int, head_size: int) -> dict:
    """The core's parameters: {input, qkv, qkv_norm, attention_norm, mlp_0, mlp_1, mlp_norm, gate_input, gate_memory}."""
    width = num_heads * head_size
    qkv = num_heads * 3 * head_size
    keys = jax.random.split(key, 6)
    return {
        "input": _linear(keys[0], input_size, width, bias=True),
        "qkv": _linear(keys[1], width, qkv, bias=False),
        "qkv_norm": _norm(qkv),
        "attention_norm": _norm(width),
        "mlp_0": _linear(keys[2], width, width, bias=True),
        "mlp_1": _linear(keys[3], width, width, bias=True),
        "mlp_norm": _norm(width),
        "gate_input": _linear(keys[4], width, 2 * width, bias=False),
        "gate_memory": _linear(keys[5], width, 2 * width, bias=False),
    }


def initial_memory(batch: int, mem_slots: int, width: int) -> jax.Array:
    """[batch, mem_slots, width]: the identity, padded with zero columns or cut to `width`."""
    eye = jnp.eye(mem_slots, max(mem_slots, width))[:, :width]
    return jnp.broadcast_to(eye, (batch, mem_slots, width))


def _layer_norm(x, params):
    """Normalises each example over all its rows and features; scale and offset per feature."""
    mean = jnp.mean(x, axis=(-2, -1), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(-2, -1), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPSILON) * params["scale"] + params["offset"]


def project_input(core: dict, inputs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(input row, its q/k/v, its gate pre-activations) for inputs [..., input_size]: the step's work that
    does not depend on the memory, so teacher forcing computes it for all positions at once."""
    row = inputs @ core["input"]["kernel"] + core["input"]["bias"]
    return row, row @ core["qkv"]["kernel"], row @ core["gate_input"]["kernel"]


def core_step(core: dict, memory: jax.Array, projected, num_heads: int) -> jax.Array:
    """The next memory [B, N, W] from memory [B, N, W] and `project_input`'s outputs for [B, input_size]."""
    row, row_qkv, row_gates = projected
    batch, slots, width = memory.shape
    head_size = width // num_heads
    qkv_size = 3 * head_size  # keys and queries have head_size features too
    rows = jnp.concatenate([memory, row[:, None]], axis=1)  # [B, N + 1, W]
    qkv = jnp.concatenate([memory @ core["qkv"]["kernel"], row_qkv[:, None]], axis=1)
    qkv = _layer_norm(qkv, core["qkv_norm"]).reshape(batch, slots + 1, num_heads, qkv_size)
    q, k, v = jnp.split(qkv, 3, axis=-1)
    weights = jax.nn.softmax(jnp.einsum("bnhd,bmhd->bhnm", q * qkv_size**-0.5, k), axis=-1)
    attended = jnp.einsum("bhnm,bmhd->bnhd", weights, v).reshape(batch, slots + 1, width)
    rows = _layer_norm(rows + attended, core["attention_norm"])
    hidden = jax.nn.relu(rows @ core["mlp_0"]["kernel"] + core["mlp_0"]["bias"])
    rows = _layer_norm(rows + hidden @ core["mlp_1"]["kernel"] + core["mlp_1"]["bias"], core["mlp_norm"])
    gates = jnp.tanh(memory) @ core["gate_memory"]["kernel"] + row_gates[:, None]
    input_gate, forget_gate = jnp.split(gates, 2, axis=-1)
    return (jax.nn.sigmoid(input_gate + INPUT_BIAS) * jnp.tanh(rows[:, :slots])
            + jax.nn.sigmoid(forget_gate + FORGET_BIAS) * memory)


class RelationalMemory(nn.Module):
    """The relational memory core as a module: `(inputs [B, input_size], memory [B, N, W]) -> (output [B, N * W],
    next memory)`; `initial_state(batch)` is the starting memory."""

    mem_slots: int = 1
    num_heads: int = 2
    head_size: int = 256

    @nn.compact
    def __call__(self, inputs, memory):
        core = self.param("core", lambda key: init_core(key, inputs.shape[-1], self.num_heads, self.head_size))
        memory = core_step(core, memory, project_input(core, inputs), self.num_heads)
        return memory.reshape(memory.shape[0], -1), memory

    def initial_state(self, batch: int) -> jax.Array:
        return initial_memory(batch, self.mem_slots, self.num_heads * self.head_size)


class RelationalGenerator(text_models._TextGenerator):
    """RelGAN's generator: a relational memory core over token embeddings, logits from the flattened memory."""

    emb_dim: int = 32
    mem_slots: int = 1
    num_heads: int = 2
    head_size: int = 256
    start_token: int = 0

    @property
    def width(self) -> int:
        return self.num_heads * self.head_size

    def _make_params(self):
        v, out = self.vocab_size, self.mem_slots * self.width
        return {
            "embedding": self.param("embedding", truncated_normal(1.0 / math.sqrt(v)), (v, self.emb_dim)),
            "core": self.param("core", lambda key: init_core(key, self.emb_dim, self.num_heads, self.head_size)),
            "w_out": self.param("w_out", truncated_normal(1.0 / math.sqrt(out)), (out, v)),
            "b_out": self.param("b_out", nn.initializers.zeros, (v,)),
        }

    def _start(self, params, batch):
        start = jnp.broadcast_to(params["embedding"][self.start_token], (batch, self.emb_dim))
        return initial_memory(batch, self.mem_slots, self.width), start

    def _logits(self, params, memory):
        return memory.reshape(*memory.shape[:-2], -1) @ params["w_out"] + params["b_out"]

    def _step(self, params, memory, inputs, t):
        memory = core_step(params["core"], memory, project_input(params["core"], inputs), self.num_heads)
        return memory, self._logits(params, memory)

    def _teacher_logits(self, params, ids):
        batch = ids.shape[0]
        memory, start = self._start(params, batch)
        inputs = jnp.concatenate([start[:, None], params["embedding"][ids[:, :-1]]], axis=1)
        projected = project_input(params["core"], jnp.swapaxes(inputs, 0, 1))  # [T, B, ...], batched over T

        def body(memory, xs):
            memory = core_step(params["core"], memory, xs, self.num_heads)
            return memory, memory

        _, memories = jax.lax.scan(body, memory, projected)  # [T, B, N, W]
        return self._logits(params, jnp.swapaxes(memories, 0, 1))  # one matmul over all positions


def _check_relational(model, config):
    text_models._check_text(model, config)
    r = model.relational
    for key in ("mem_slots", "num_heads", "head_size"):
        if not (isinstance(r[key], int) and r[key] >= 1):
            raise ConfigError(f"Config key 'model.relational.{key}' must be a positive integer, got {r[key]!r}.")
    if not (isinstance(r.start_token, int) and r.start_token >= 0):
        raise ConfigError(f"Config key 'model.relational.start_token' must be a token id >= 0, got {r.start_token!r}.")


def _build(m, shape, axis, classes):
    max_len, vocab_size = shape
    if m.relational.start_token >= vocab_size:
        raise ConfigError(f"Config key 'model.relational.start_token' is {m.relational.start_token}, but the "
                          f"vocabulary has {vocab_size} tokens; use an id below {vocab_size}.")
    return RelationalGenerator(vocab_size, max_len, m.text.beta_max, m.text.beta_anneal, m.text.beta_anneal_steps,
                               m.text.hard_samples, emb_dim=m.text.emb_dim, mem_slots=m.relational.mem_slots,
                               num_heads=m.relational.num_heads, head_size=m.relational.head_size,
                               start_token=m.relational.start_token)


# Text data have shape (max_len, vocab_size).
register_generator("relational", _build, config={**text_models.TEXT_CONFIG, **RELATIONAL_CONFIG},
                   validate=_check_relational)
