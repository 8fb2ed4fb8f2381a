"""Samples of a generator in inference mode, from a state: images and points, or text token ids.

Evaluation draws from a named stream of the run's key that no training step uses, so the same
state gives the same samples wherever it is evaluated (during training, from a checkpoint).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax.core.nets import apply_model, compute_dtype
from gan_jax.core.state import GANState
from gan_jax.models import sample_latent
from gan_jax.rng import stream

EVAL_STREAM = "eval"  # fixed evaluation noise: stream(state.rng, EVAL_STREAM)
_CHUNK = 250  # sequences per device call when sampling or scoring text


def is_conditional(model_config) -> bool:
    return model_config.conditioning != "none"


def eval_key(state: GANState, *names) -> jax.Array:
    """The key of a fixed evaluation stream of the run (`names` pick sub-streams)."""
    return stream(state.rng, EVAL_STREAM, *names)


def generator_params(state: GANState, use_ema: bool):
    """The EMA generator's parameters when asked for and present, else the online ones."""
    return state.g_ema if (use_ema and state.g_ema is not None) else state.g.params


@functools.partial(jax.jit, static_argnums=(0, 4))
def _generate(g_model: nn.Module, params, model_state, z, bfloat16: bool = False, y=None):
    return apply_model(g_model, params, model_state, z, False, y, jnp.bfloat16 if bfloat16 else None)[0]


def truncated_latent(key: jax.Array, num: int, model_config, threshold: float) -> jax.Array:
    """BigGAN's truncation trick: N(0, I) latents with every entry redrawn until |z| <= `threshold`,
    that is the normal truncated to [-threshold, threshold] (the prior is "normal" only)."""
    if model_config.latent_dist != "normal":
        raise ValueError(f"truncation redraws Gaussian latents; this generator's prior is "
                         f"{model_config.latent_dist!r} (model.latent_dist), so there is nothing to truncate.")
    if not threshold > 0:
        raise ValueError(f"the truncation threshold must be > 0, got {threshold}.")
    return jax.random.truncated_normal(key, -threshold, threshold, (num, model_config.latent_dim))


def requested_labels(num: int, num_classes: int) -> np.ndarray:
    """The classes evaluation asks a conditional generator for: class i % K for sample i."""
    if num_classes < 1:
        raise ValueError("A class-conditional generator needs labels or num_classes.")
    return np.arange(num) % num_classes


def generate(g_model: nn.Module, state: GANState, num: int, model_config, use_ema: bool = True,
             key: jax.Array | None = None, labels: np.ndarray | None = None, z: jax.Array | None = None,
             num_classes: int = 0, batch: int = 1000, truncation: float | None = None) -> np.ndarray:
    """`num` samples from the (EMA) generator in inference mode, on fixed noise unless `key` is given.

    Conditional generators get `labels`, or labels cycling over `num_classes` (class i % K for
    sample i). `z` replaces the drawn noise; `truncation` draws it from the normal truncated to
    [-truncation, truncation]. Samples are made `batch` at a time.
    """
    key = eval_key(state) if key is None else key
    if z is None:
        z = (sample_latent(key, num, model_config) if truncation is None
             else truncated_latent(key, num, model_config, truncation))
    if is_conditional(model_config):
        labels = jnp.asarray(requested_labels(num, num_classes) if labels is None else labels, jnp.int32)
    else:
        labels = None
    params = generator_params(state, use_ema)
    bf16 = compute_dtype(model_config) is not None
    out = []
    for start in range(0, num, batch):
        y = None if labels is None else labels[start:start + batch]
        out.append(np.asarray(_generate(g_model, params, state.g.model_state, z[start:start + batch], bf16, y)))
    return np.concatenate(out)


@functools.partial(jax.jit, static_argnums=0)
def _train_mode_stats(g_model: nn.Module, params, model_state, z, y=None):
    return apply_model(g_model, params, model_state, z, True, y)[1]["batch_stats"]


def standing_statistics(g_model: nn.Module, state: GANState, model_config, num_classes: int, passes: int,
                        batch: int, use_ema: bool = True, key: jax.Array | None = None) -> GANState:
    """The state with its generator's batch-norm statistics recomputed for the parameters that sample
    (the EMA's when `use_ema`): BigGAN's "standing statistics", the plain average of the batch means and
    (biased) variances over `passes` train-mode forwards of `batch` fresh latents (and uniform labels).

    Each forward starts from zero statistics, so a layer returns (1 - m) x its batch statistic; one more
    forward from ones on the first batch gives m + (1 - m) x the same statistic, hence m, whatever the
    layer's momentum.
    """
    if "batch_stats" not in state.g.model_state:
        raise ValueError("standing statistics recompute a generator's batch-norm statistics; this generator "
                         "has no batch norm.")
    if passes < 1 or batch < 1:
        raise ValueError(f"standing statistics need >= 1 forward of >= 1 sample, got {passes} x {batch}.")
    key = eval_key(state, "standing") if key is None else key
    params = generator_params(state, use_ema)
    stats = state.g.model_state["batch_stats"]
    zeros = jax.tree.map(jnp.zeros_like, stats)
    ones = jax.tree.map(jnp.ones_like, stats)
    total, first = None, None
    for i in range(passes):
        z_key, y_key = jax.random.split(jax.random.fold_in(key, i))
        z = sample_latent(z_key, batch, model_config)
        y = jax.random.randint(y_key, (batch,), 0, num_classes) if is_conditional(model_config) else None
        scaled = _train_mode_stats(g_model, params, {**state.g.model_state, "batch_stats": zeros}, z, y)
        total = scaled if total is None else jax.tree.map(jnp.add, total, scaled)
        if i == 0:
            first = (scaled, _train_mode_stats(g_model, params, {**state.g.model_state, "batch_stats": ones}, z, y))
    momentum = jax.tree.map(jnp.subtract, first[1], first[0])
    averaged = jax.tree.map(lambda t, m: t / passes / (1.0 - m), total, momentum)
    return state.replace(g=state.g.replace(model_state={**state.g.model_state, "batch_stats": averaged}))


def for_sampling(g_model: nn.Module, state: GANState, config, num_classes: int, use_ema: bool = True,
                 passes: int | None = None) -> GANState:
    """The state to sample from: with standing statistics when `passes` (default eval.standing_statistics) > 0."""
    passes = config.eval.get("standing_statistics", 0) if passes is None else passes
    if not passes:
        return state
    return standing_statistics(g_model, state, config.model, num_classes, passes,
                               config.eval.get("standing_batch", 64), use_ema)


@functools.partial(jax.jit, static_argnums=0)
def _sample_ids(g_model: nn.Module, params, model_state, z, temperature):
    return g_model.apply({"params": params, **model_state}, z, temperature, method="sample_ids")


@functools.partial(jax.jit, static_argnums=0)
def _log_prob(g_model: nn.Module, params, model_state, ids):
    return g_model.apply({"params": params, **model_state}, ids, method="log_prob")


def sample_ids(g_model: nn.Module, state: GANState, num: int, config: ml_collections.ConfigDict,
               use_ema: bool = True, temperature: float | None = None) -> np.ndarray:
    """int32 [num, max_len] text samples at `temperature` (default `text.sample_temperature`), on the
    fixed evaluation noise."""
    z = sample_latent(eval_key(state), num, config.model)
    params = generator_params(state, use_ema)
    t = jnp.float32(config.text.sample_temperature if temperature is None else temperature)
    return np.concatenate([np.asarray(_sample_ids(g_model, params, state.g.model_state, z[s:s + _CHUNK], t))
                           for s in range(0, num, _CHUNK)])


def token_log_probs(g_model: nn.Module, params, model_state, ids: np.ndarray) -> np.ndarray:
    """[N, T] log-probabilities of each token of `ids` under teacher forcing."""
    return np.concatenate([np.asarray(_log_prob(g_model, params, model_state, ids[s:s + _CHUNK]))
                           for s in range(0, len(ids), _CHUNK)])
