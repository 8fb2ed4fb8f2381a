"""The twin optimizers, built from `config.optim` with optax.

Learning rates, betas, weight decay and momentum are injected hyperparameters
(`optax.inject_hyperparams`): they live in the optimizer state, not in the compiled
program, so runs that differ only in them can be stacked and vmapped.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import ml_collections
import optax


def lr_multiplier(config: ml_collections.ConfigDict, updates_per_step: int) -> optax.Schedule:
    """A schedule in [0, 1] over generator steps that scales the base learning rate."""
    total = config.num_steps
    warmup = config.optim.warmup_steps
    kind = config.optim.schedule

    def multiplier(count):
        step = count // updates_per_step
        progress = jnp.clip((step - warmup) / max(total - warmup, 1), 0.0, 1.0)
        if kind == "constant":
            value = jnp.ones_like(progress)
        elif kind == "linear":
            value = 1.0 - progress
        else:
            value = 0.5 * (1.0 + jnp.cos(math.pi * progress))
        if warmup:
            value = value * jnp.minimum(1.0, (step + 1) / warmup)
        return value

    return multiplier


# optim.name -> (optax optimizer, the optim.* keys passed to it as injected hyperparameters, beside the
# learning rate): they live in the optimizer state, not in the compiled step.
OPTIMIZERS = {
    "adam": (optax.adam, ("b1", "b2")),
    "adamw": (optax.adamw, ("b1", "b2", "weight_decay")),
    "sgd": (optax.sgd, ("momentum",)),
}


def injected_keys(config: ml_collections.ConfigDict) -> list[str]:
    """The `optim.*` keys whose values live in the optimizer states (per-run values)."""
    return ["optim.g_lr", "optim.d_lr"] + [f"optim.{k}" for k in OPTIMIZERS[config.optim.name][1]]


def make_optimizer(config: ml_collections.ConfigDict, lr: float, updates_per_step: int = 1
                   ) -> optax.GradientTransformation:
    """One of the twin optimizers (G: `updates_per_step=1`; D: `n_critic`)."""
    o = config.optim
    if o.name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {o.name!r} (config key 'optim.name'); use {', '.join(OPTIMIZERS)}.")
    factory, keys = OPTIMIZERS[o.name]
    inner = optax.inject_hyperparams(factory)(learning_rate=lr, **{k: o[k] for k in keys})
    parts = []
    if o.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(o.grad_clip))
    parts.append(inner)
    if o.schedule != "constant" or o.warmup_steps:
        parts.append(optax.scale_by_schedule(lr_multiplier(config, updates_per_step)))
    return optax.chain(*parts)


def make_optimizers(config: ml_collections.ConfigDict
                    ) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """The twin optimizers of a run: (G's, stepping once per step; D's, stepping n_critic times)."""
    return (make_optimizer(config, config.optim.g_lr, 1),
            make_optimizer(config, config.optim.d_lr, config.n_critic))
