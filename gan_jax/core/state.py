"""The training state: one pytree holding everything a run needs to continue."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import objectives
from gan_jax.core.nets import SPECTRAL_PARAMS, pack_input
from gan_jax.models import sample_latent
from gan_jax.rng import stream


@flax.struct.dataclass
class TrainState:
    """One network's parameters, optimizer state and non-parameter variables (batch_stats, ...)."""

    params: Any
    opt_state: Any
    model_state: Any  # every variable collection except "params"; {} when there is none


@flax.struct.dataclass
class GANState:
    step: jax.Array  # generator updates done
    rng: jax.Array  # typed key; per-step keys come from fold_in(rng, step), sub-streams by name
    g: TrainState
    d: TrainState
    g_ema: Any  # EMA of the generator parameters; None when disabled
    # Per-run numbers, at their config paths: {"reg": {"r1": {"weight": ...}}, "ema": {"decay": ...}, ...}.
    hparams: dict
    terms: dict  # state kept by active terms and augmentations, at their config paths ({} when none)


def _split_variables(variables) -> tuple[Any, dict]:
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


def _plugins(config) -> list[tuple[str, Any]]:
    """(config section, plugin) of every active term and augmentation."""
    active = [("reg", t) for t in objectives.active_terms(config)]
    augment = objectives.active_augment(config)
    return active + ([("augment", augment)] if augment is not None else [])


def ema_enabled(config: ml_collections.ConfigDict) -> bool:
    """Whether the run keeps an EMA of G: by `ema.decay`, or by a half-life in images (`ema.half_life_images`,
    possibly scheduled from 0 to `ema.half_life_images_end`)."""
    return config.ema.decay > 0 or config.ema.half_life_images > 0 or config.ema.half_life_images_end > 0


def hparams_of(config: ml_collections.ConfigDict) -> dict:
    """The per-run numbers the step reads from the state, nested at their config paths."""
    ema = config.ema
    tree: dict = {"ema": {"decay": jnp.float32(ema.decay), "half_life_images": jnp.float32(ema.half_life_images),
                          "half_life_images_end": jnp.float32(ema.half_life_images_end)}}
    for section, plugin in _plugins(config):
        settings = plugin.settings(config)
        values = {key: jnp.float32(settings[key]) for key in plugin.hparams}
        if values:
            tree.setdefault(section, {})[plugin.name] = values
    return tree


def hparam_keys(config: ml_collections.ConfigDict) -> list[str]:
    """The config keys whose values live in `state.hparams` ("reg.r1.weight", "ema.decay", ...)."""

    def flatten(tree, prefix):
        for k, v in tree.items():
            yield from flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]

    return list(flatten(hparams_of(config), ""))


def term_states(config: ml_collections.ConfigDict) -> dict:
    """The initial states of the active terms and augmentations that keep one."""
    tree: dict = {}
    for section, plugin in _plugins(config):
        if plugin.init_state is not None:
            tree.setdefault(section, {})[plugin.name] = plugin.init_state(config)
    return tree


INIT_STREAM = "init"  # step keys are fold_in(rng, step); initialisation draws from a named stream


def create_state(config: ml_collections.ConfigDict, g_model: nn.Module, d_model: nn.Module,
                 data_shape: Sequence[int], g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, num_classes: int = 0) -> GANState:
    """Initialises both networks, their optimizers, the EMA and the terms' states from `config.seed`.

    Class-conditional models (`model.conditioning`) are initialised with labels; with
    `model.spectral_norm`, D's state gets the power-iteration vectors of every kernel.
    """
    rng = jax.random.key(config.seed)
    g_key, d_key, z_key = jax.random.split(stream(rng, INIT_STREAM), 3)
    n = 2 * config.pack  # batch statistics need more than one sample
    z = sample_latent(z_key, n, config.model)
    label = {}
    if config.model.conditioning != "none":
        label = {"y": jnp.arange(n, dtype=jnp.int32) % max(num_classes, 1)}
    g_params, g_vars = _split_variables(g_model.init(g_key, z, train=False, **label))
    x = pack_input(jnp.zeros((n,) + tuple(data_shape)), config.pack)
    d_params, d_vars = _split_variables(d_model.init(d_key, x, train=False, **label))
    if config.model.spectral_norm and "spectral" not in d_vars:  # not already built in
        from gan_jax.models.layers import init_spectral_vectors

        d_vars[SPECTRAL_PARAMS] = init_spectral_vectors(d_params, jax.random.fold_in(d_key, 1))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        g=TrainState(g_params, g_tx.init(g_params), g_vars),
        d=TrainState(d_params, d_tx.init(d_params), d_vars),
        g_ema=jax.tree.map(jnp.copy, g_params) if ema_enabled(config) else None,
        hparams=hparams_of(config),
        terms=term_states(config),
    )


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
