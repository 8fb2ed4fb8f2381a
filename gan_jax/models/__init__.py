"""Model registry: a config name -> a Flax module built from `config.model` and the data shape."""

from __future__ import annotations

import difflib
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import ml_collections

from gan_jax.models import dcgan, mlp, resnet, text

GeneratorFactory = Callable[[ml_collections.ConfigDict, Sequence[int], "str | None"], nn.Module]
DiscriminatorFactory = Callable[[ml_collections.ConfigDict, Sequence[int], "str | None"], nn.Module]

GENERATORS: dict[str, GeneratorFactory] = {
    "mlp": lambda m, shape, axis: mlp.MLPGenerator(shape, m.g_width, m.g_depth, axis_name=axis),
    "pacgan_mlp": lambda m, shape, axis: mlp.PacGANGenerator(
        shape, m.g_width, m.g_depth, axis_name=axis, fourier_features=m.get("g_fourier_features", 0),
        fourier_scale=m.get("g_fourier_scale", 1.0)),
    "dcgan": lambda m, shape, axis: dcgan.DCGANGenerator(shape, m.g_width, m.upsample, axis_name=axis),
    "sngan_resnet": lambda m, shape, axis, num_classes=0: resnet.SNGANGenerator(
        shape, m.g_width, num_classes, axis_name=axis),
    # Text: shape is (max_len, vocab_size).
    "lstm": lambda m, shape, axis: text.LSTMGenerator(
        shape[1], shape[0], m.text.beta_max, m.text.beta_anneal, m.text.beta_anneal_steps, m.text.hard_samples,
        emb_dim=m.text.emb_dim, hidden_dim=m.text.hidden_dim),
    "transformer": lambda m, shape, axis: text.TransformerGenerator(
        shape[1], shape[0], m.text.beta_max, m.text.beta_anneal, m.text.beta_anneal_steps, m.text.hard_samples,
        emb_dim=m.text.emb_dim, width=m.text.hidden_dim, num_layers=m.text.num_layers, num_heads=m.text.num_heads),
}
DISCRIMINATORS: dict[str, DiscriminatorFactory] = {
    "mlp": lambda m, shape, axis: mlp.MLPDiscriminator(m.d_width, m.d_depth, axis_name=axis),
    "pacgan_maxout": lambda m, shape, axis: mlp.PacGANDiscriminator(
        m.d_width, m.d_depth, m.maxout_pieces, axis_name=axis, fourier_features=m.get("d_fourier_features", 0),
        fourier_scale=m.get("d_fourier_scale", 1.0), sample_size=math.prod(shape)),
    "dcgan": lambda m, shape, axis: dcgan.DCGANDiscriminator(m.d_width, axis_name=axis),
    "sngan_resnet": lambda m, shape, axis, num_classes=0: resnet.SNGANDiscriminator(
        m.d_width, num_classes, m.conditioning, axis_name=axis),
    "relgan_cnn": lambda m, shape, axis: text.RelGANDiscriminator(
        m.text.d_num_rep, m.text.d_emb_dim, m.text.d_num_filters, axis_name=axis),
}


def _lookup(table, name, what):
    if name not in table:
        near = difflib.get_close_matches(name, table, n=2)
        hint = f" Did you mean {' or '.join(map(repr, near))}?" if near else ""
        raise ValueError(f"Unknown {what} {name!r} (config key 'model.{what}').{hint} Known: {', '.join(table)}.")
    return table[name]


# Models that take class labels: G(z, y=...) and D(x, y=...) when `model.conditioning` is not "none".
CONDITIONAL = ("sngan_resnet",)


def build_models(model_config: ml_collections.ConfigDict, data_shape: Sequence[int],
                 axis_name: str | None = None, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for `model.generator` / `model.discriminator`.

    `axis_name` is the pmap axis over which batch statistics are averaged. `num_classes`
    (from the data) is used when `model.conditioning` asks for a class-conditional pair.
    """
    g_factory = _lookup(GENERATORS, model_config.generator, "generator")
    d_factory = _lookup(DISCRIMINATORS, model_config.discriminator, "discriminator")
    conditioning = model_config.get("conditioning", "none")
    if conditioning == "none":
        shape = tuple(data_shape)
        return g_factory(model_config, shape, axis_name), d_factory(model_config, shape, axis_name)
    for name in (model_config.generator, model_config.discriminator):
        if name not in CONDITIONAL:
            raise ValueError(f"model.conditioning={conditioning!r} needs conditional networks; {name!r} is not one "
                             f"(conditional: {', '.join(CONDITIONAL)}).")
    if num_classes < 2:
        raise ValueError(f"model.conditioning={conditioning!r} needs class labels, but the data has none; use a "
                         "labelled dataset or --config.model.conditioning=none.")
    g = g_factory(model_config, tuple(data_shape), axis_name, num_classes=num_classes)
    d = d_factory(model_config, tuple(data_shape), axis_name, num_classes=num_classes)
    return g, d


def sample_latent(key: jax.Array, num: int, model_config: ml_collections.ConfigDict) -> jax.Array:
    """The generator's input for `num` samples of `model.latent_dim` dimensions, from `model.latent_dist`:
    N(0, I) ("normal") or uniform on [-1, 1]^d ("uniform", the DCGAN paper's prior)."""
    shape = (num, model_config.latent_dim)
    if model_config.get("latent_dist", "normal") == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    return jax.random.normal(key, shape)
