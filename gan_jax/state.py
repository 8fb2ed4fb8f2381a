"""The training state: one pytree holding everything a run needs to continue."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax.models import sample_latent

# Step keys are fold_in(rng, step) for step >= 0; initialisation draws from a stream no step reaches.
INIT_STREAM = 2**31 - 1


@flax.struct.dataclass
class TrainState:
    """One network's parameters, optimizer state and non-parameter variables (batch_stats, ...)."""

    params: Any
    opt_state: Any
    model_state: Any  # every variable collection except "params"; {} when there is none


@flax.struct.dataclass
class GANState:
    step: jax.Array  # generator updates done
    rng: jax.Array  # typed key; per-step keys come from fold_in(rng, step)
    g: TrainState
    d: TrainState
    g_ema: Any  # EMA of the generator parameters; None when disabled
    hparams: dict  # per-run loss and regularizer weights, EMA decay (vmappable, unlike closures)


def _split_variables(variables) -> tuple[Any, dict]:
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


def pack_input(x: jax.Array, pack: int) -> jax.Array:
    """PacGAN packing: [B, ...] -> [B / pack, ...] with the pack samples merged into the last axis."""
    if pack == 1:
        return x
    b = x.shape[0]
    x = x.reshape((b // pack, pack) + x.shape[1:])
    x = jnp.moveaxis(x, 1, -1)
    return x.reshape(x.shape[:-2] + (x.shape[-2] * pack,))


def create_state(config: ml_collections.ConfigDict, g_model: nn.Module, d_model: nn.Module,
                 data_shape: Sequence[int], g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, num_classes: int = 0) -> GANState:
    """Initialises both networks, their optimizers and the EMA from `config.seed`.

    Class-conditional models (`model.conditioning`) are initialised with labels; with
    `model.spectral_norm`, D's state gets the power-iteration vectors of every kernel.
    """
    rng = jax.random.key(config.seed)
    g_key, d_key, z_key = jax.random.split(jax.random.fold_in(rng, INIT_STREAM), 3)
    n = 2 * config.pack  # batch statistics need more than one sample
    z = sample_latent(z_key, n, config.model)
    label = {}
    if config.model.get("conditioning", "none") != "none":
        label = {"y": jnp.arange(n, dtype=jnp.int32) % max(num_classes, 1)}
    g_params, g_vars = _split_variables(g_model.init(g_key, z, train=False, **label))
    x = pack_input(jnp.zeros((n,) + tuple(data_shape)), config.pack)
    d_params, d_vars = _split_variables(d_model.init(d_key, x, train=False, **label))
    if config.model.get("spectral_norm", False) and "spectral" not in d_vars:  # not already built in
        from gan_jax.models.layers import init_spectral_vectors

        d_vars["spectral_params"] = init_spectral_vectors(d_params, jax.random.fold_in(d_key, 1))
    hparams = {
        "gp_weight": jnp.float32(config.reg.gp_weight),
        "r1_weight": jnp.float32(config.reg.r1_weight),
        "ema_decay": jnp.float32(config.ema.decay),
    }
    return GANState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        g=TrainState(g_params, g_tx.init(g_params), g_vars),
        d=TrainState(d_params, d_tx.init(d_params), d_vars),
        g_ema=jax.tree.map(jnp.copy, g_params) if config.ema.decay > 0 else None,
        hparams=hparams,
    )


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
