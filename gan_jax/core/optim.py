"""The twin optimizers, built from `config.optim` with optax.

Learning rates, betas, weight decay and momentum are injected hyperparameters
(`optax.inject_hyperparams`): they live in the optimizer state, not in the compiled
program, so runs that differ only in them can be stacked and vmapped. The learning rate's
multiplier follows `optim.schedule` from 1 to `optim.lr_end_factor` over the run's schedule
(`schedule.steps`, 0: the whole run), after an optional warm-up; with `optim.b2_end` >= 0 Adam's
beta2 moves from `optim.b2` to it along `schedule.kind` over the same steps (then beta2 is part of
the program, not a per-run value).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import schedules


def lr_multiplier(config: ml_collections.ConfigDict, updates_per_step: int) -> optax.Schedule:
    """A schedule over generator steps that scales the base learning rate: 1 -> `optim.lr_end_factor`."""
    total = schedules.total_steps(config)
    warmup = config.optim.warmup_steps
    kind = config.optim.schedule
    end = config.optim.lr_end_factor

    def multiplier(count):
        step = count // updates_per_step
        progress = jnp.clip((step - warmup) / max(total - warmup, 1), 0.0, 1.0)
        if kind == "constant":
            value = jnp.ones_like(progress)
        elif kind == "linear":
            value = 1.0 - progress * (1.0 - end)
        else:
            value = end + (1.0 - end) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
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


def _scheduled_keys(config: ml_collections.ConfigDict) -> set[str]:
    return {"b2"} if config.optim.b2_end >= 0 else set()


def injected_keys(config: ml_collections.ConfigDict) -> list[str]:
    """The `optim.*` keys whose values live in the optimizer states (per-run values)."""
    return ["optim.g_lr", "optim.d_lr"] + [f"optim.{k}" for k in OPTIMIZERS[config.optim.name][1]
                                           if k not in _scheduled_keys(config)]


def make_optimizer(config: ml_collections.ConfigDict, lr: float, updates_per_step: int = 1
                   ) -> optax.GradientTransformation:
    """One of the twin optimizers (G: `updates_per_step=1`; D: `n_critic`)."""
    o = config.optim
    if o.name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {o.name!r} (config key 'optim.name'); use {', '.join(OPTIMIZERS)}.")
    factory, keys = OPTIMIZERS[o.name]
    values = {k: o[k] for k in keys}
    if "b2" in _scheduled_keys(config) and "b2" in values:
        steps, kind = schedules.total_steps(config), config.schedule.kind
        values["b2"] = lambda count: schedules.interpolate(o.b2, o.b2_end, count // updates_per_step, steps, kind)
    inner = optax.inject_hyperparams(factory)(learning_rate=lr, **values)
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


def _is_injected(node) -> bool:
    return isinstance(node, (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState))


def map_hyperparam(opt_state, name: str, fn):
    """The optimizer state with every injected hyperparameter `name` replaced by `fn(old value)`
    (its dtype kept)."""

    def visit(node):
        if _is_injected(node) and name in node.hyperparams:
            hparams = dict(node.hyperparams)
            old = hparams[name]
            hparams[name] = jnp.asarray(fn(old), jnp.asarray(old).dtype)
            return node._replace(hyperparams=hparams)
        return node

    return jax.tree.map(visit, opt_state, is_leaf=_is_injected)


def hyperparam_values(opt_state, name: str) -> list[float]:
    """Every injected hyperparameter `name` in an optimizer state (for messages and tests)."""
    found = []

    def visit(node):
        if _is_injected(node) and name in node.hyperparams:
            found.append(float(jax.device_get(node.hyperparams[name])))
        return node

    jax.tree.map(visit, opt_state, is_leaf=_is_injected)
    return found
