"""Model registry: a config name -> a Flax module built from `config.model` and the data shape."""

from __future__ import annotations

import difflib
from typing import Callable, Sequence

import flax.linen as nn
import jax
import ml_collections

from gan_jax.models import mlp

GeneratorFactory = Callable[[ml_collections.ConfigDict, Sequence[int], "str | None"], nn.Module]
DiscriminatorFactory = Callable[[ml_collections.ConfigDict, "str | None"], nn.Module]

GENERATORS: dict[str, GeneratorFactory] = {
    "mlp": lambda m, shape, axis: mlp.MLPGenerator(shape, m.g_width, m.g_depth, axis_name=axis),
    "pacgan_mlp": lambda m, shape, axis: mlp.PacGANGenerator(shape, m.g_width, m.g_depth, axis_name=axis),
}
DISCRIMINATORS: dict[str, DiscriminatorFactory] = {
    "mlp": lambda m, axis: mlp.MLPDiscriminator(m.d_width, m.d_depth, axis_name=axis),
    "pacgan_maxout": lambda m, axis: mlp.PacGANDiscriminator(m.d_width, m.d_depth, m.maxout_pieces, axis_name=axis),
}


def _lookup(table, name, what):
    if name not in table:
        near = difflib.get_close_matches(name, table, n=2)
        hint = f" Did you mean {' or '.join(map(repr, near))}?" if near else ""
        raise ValueError(f"Unknown {what} {name!r} (config key 'model.{what}').{hint} Known: {', '.join(table)}.")
    return table[name]


def build_models(model_config: ml_collections.ConfigDict, data_shape: Sequence[int],
                 axis_name: str | None = None) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for `model.generator` / `model.discriminator`.

    `axis_name` is the pmap axis over which batch statistics are averaged.
    """
    g = _lookup(GENERATORS, model_config.generator, "generator")(model_config, tuple(data_shape), axis_name)
    d = _lookup(DISCRIMINATORS, model_config.discriminator, "discriminator")(model_config, axis_name)
    return g, d


def sample_latent(key: jax.Array, num: int, model_config: ml_collections.ConfigDict) -> jax.Array:
    """The generator's input for `num` samples: N(0, I) of `model.latent_dim` dimensions."""
    return jax.random.normal(key, (num, model_config.latent_dim))
