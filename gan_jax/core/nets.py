"""Applying the networks inside the step: compute dtype, spectral normalisation, PacGAN packing."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax.models.layers import spectral_normalize_params

# Model-state collection of the parameter-level spectral normalisation (model.spectral_norm).
SPECTRAL_PARAMS = "spectral_params"


def compute_dtype(model_config: ml_collections.ConfigDict):
    """None (float32) or jnp.bfloat16, from `model.dtype`."""
    return jnp.bfloat16 if model_config.dtype == "bfloat16" else None


def _cast(tree, dtype):
    return jax.tree.map(lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, tree)


def apply_model(model: nn.Module, params, model_state: dict, x, train: bool, y=None, dtype=None, rngs=None):
    """Applies a module; returns (output, updated non-parameter variables).

    `y` (class labels) is passed to conditional models. With `dtype` (bfloat16) the module
    computes in that dtype from a cast of the float32 parameters, and returns float32. With a
    "spectral_params" collection, every kernel is spectrally normalised first. `rngs` (name -> key)
    reach modules that draw randomness (StyleGAN2's per-pixel noise takes "noise").
    """
    vectors = model_state.get(SPECTRAL_PARAMS)
    flax_state = {k: v for k, v in model_state.items() if k != SPECTRAL_PARAMS}
    if vectors is not None:
        params, vectors = spectral_normalize_params(params, vectors, update=train)
    if dtype is not None:
        params = _cast(params, dtype)
        x = x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
    kwargs = {} if y is None else {"y": y}
    variables = {"params": params, **flax_state}
    if train and flax_state:
        out, updates = model.apply(variables, x, train=True, mutable=list(flax_state), rngs=rngs, **kwargs)
        new_state = {**flax_state, **updates}
    else:
        out, new_state = model.apply(variables, x, train=train, rngs=rngs, **kwargs), dict(flax_state)
    if vectors is not None:
        new_state[SPECTRAL_PARAMS] = vectors
    if dtype is not None:
        out = _cast(out, jnp.float32)
    return out, new_state


def pack_input(x: jax.Array, pack: int) -> jax.Array:
    """PacGAN packing: [B, ...] -> [B / pack, ...] with the pack samples merged into the last axis."""
    if pack == 1:
        return x
    b = x.shape[0]
    x = x.reshape((b // pack, pack) + x.shape[1:])
    x = jnp.moveaxis(x, 1, -1)
    return x.reshape(x.shape[:-2] + (x.shape[-2] * pack,))
