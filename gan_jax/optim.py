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


def make_optimizer(config: ml_collections.ConfigDict, lr: float, updates_per_step: int = 1
                   ) -> optax.GradientTransformation:
    """One of the twin optimizers (G: `updates_per_step=1`; D: `n_critic`)."""
    o = config.optim
    if o.name == "adam":
        inner = optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=o.b1, b2=o.b2)
    elif o.name == "adamw":
        inner = optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=o.b1, b2=o.b2,
                                                      weight_decay=o.weight_decay)
    elif o.name == "sgd":
        inner = optax.inject_hyperparams(optax.sgd)(learning_rate=lr, momentum=o.momentum)
    else:
        raise ValueError(f"Unknown optimizer {o.name!r} (config key 'optim.name'); use adam, adamw or sgd.")
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
