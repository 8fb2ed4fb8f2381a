"""Objective plugins: adversarial losses, regularizer and auxiliary terms, augmentations, generator
objectives. Each lives in one file of this package and registers itself (see `base`)."""

from gan_jax.objectives.base import (  # noqa: F401
    AUGMENTS,
    G_OBJECTIVES,
    LOSSES,
    TERMS,
    Augment,
    DContext,
    GContext,
    Loss,
    Term,
    TermOutput,
    active_augment,
    active_terms,
    register_augment,
    register_g_objective,
    register_loss,
    register_term,
)


def get_loss(name: str) -> Loss:
    return LOSSES.get(name)


def global_mean(axis_name: str | None):
    """The batch mean; over all devices of `axis_name` when given (equal shards assumed)."""
    import jax
    import jax.numpy as jnp

    if axis_name is None:
        return jnp.mean
    return lambda x: jax.lax.pmean(jnp.mean(x), axis_name)
