"""Model registry: `model.generator` / `model.discriminator` name -> a Flax module built from
`config.model` and the data shape.

Each model file registers its networks (`register_generator`, `register_discriminator`) with
the `config.model` keys it adds (flat keys, or a sub-dict such as `model.text`), so a new
network is one file. The keys every model reads (`latent_dim`, widths, `conditioning`, ...) are
in `gan_jax.config.default_config`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import ml_collections

from gan_jax.errors import ConfigError
from gan_jax.registry import Registry

# (config.model, data shape, pmap axis name or None, number of classes) -> module
Build = Callable[[ml_collections.ConfigDict, tuple, "str | None", int], nn.Module]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Build
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # keys it adds to config.model
    conditional: bool = False  # takes class labels (y=...) when model.conditioning is not "none"
    validate: Callable[[Any, Any], None] | None = None  # (config.model, whole config) -> raises ConfigError
    # methods besides __call__ that objectives may apply (StyleGAN2's "map" and "synthesize")
    methods: tuple[str, ...] = ()


GENERATORS: Registry[ModelEntry] = Registry("generator", "model.generator", ("gan_jax.models",))
DISCRIMINATORS: Registry[ModelEntry] = Registry("discriminator", "model.discriminator", ("gan_jax.models",))


def register_generator(name: str, build: Build, config=None, conditional: bool = False, validate=None,
                       methods: tuple[str, ...] = ()) -> ModelEntry:
    return GENERATORS.register(name, ModelEntry(name, build, dict(config or {}), conditional, validate,
                                                tuple(methods)))


def register_discriminator(name: str, build: Build, config=None, conditional: bool = False,
                           validate=None) -> ModelEntry:
    return DISCRIMINATORS.register(name, ModelEntry(name, build, dict(config or {}), conditional, validate))


def model_config_defaults() -> dict[str, Any]:
    """The `config.model` keys every registered network adds, merged; a key declared twice must agree."""
    merged: dict[str, tuple[str, Any]] = {}
    for entry in GENERATORS.values() + DISCRIMINATORS.values():
        for key, value in entry.config.items():
            if key in merged and merged[key][1] != value:
                raise ValueError(f"model key {key!r} is declared by {merged[key][0]!r} with default {merged[key][1]!r} "
                                 f"and by {entry.name!r} with {value!r}; declare it once.")
            merged.setdefault(key, (entry.name, value))
    return {key: value for key, (_, value) in merged.items()}


def validate(config) -> None:
    """The chosen networks' checks of their own keys."""
    for entry in (GENERATORS.get(config.model.generator), DISCRIMINATORS.get(config.model.discriminator)):
        if entry.validate is not None:
            entry.validate(config.model, config)


def build_models(model_config: ml_collections.ConfigDict, data_shape: Sequence[int],
                 axis_name: str | None = None, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for `model.generator` / `model.discriminator`.

    `axis_name` is the pmap axis over which batch statistics are averaged. `num_classes`
    (from the data) is used when `model.conditioning` asks for a class-conditional pair.
    """
    g_entry = GENERATORS.get(model_config.generator)
    d_entry = DISCRIMINATORS.get(model_config.discriminator)
    conditioning = model_config.conditioning
    shape = tuple(data_shape)
    if conditioning == "none":
        num_classes = 0
    else:
        for entry in (g_entry, d_entry):
            if not entry.conditional:
                known = sorted({e.name for e in GENERATORS.values() + DISCRIMINATORS.values() if e.conditional})
                raise ConfigError(f"model.conditioning={conditioning!r} needs conditional networks; {entry.name!r} is "
                                  f"not one (conditional: {', '.join(known)}).")
        if num_classes < 2:
            raise ConfigError(f"model.conditioning={conditioning!r} needs class labels, but the data has none; use a "
                              "labelled dataset or --config.model.conditioning=none.")
    return (g_entry.build(model_config, shape, axis_name, num_classes),
            d_entry.build(model_config, shape, axis_name, num_classes))


def sample_latent(key: jax.Array, num: int, model_config: ml_collections.ConfigDict) -> jax.Array:
    """The generator's input for `num` samples of `model.latent_dim` dimensions, from `model.latent_dist`:
    N(0, I) ("normal") or uniform on [-1, 1]^d ("uniform", the DCGAN paper's prior)."""
    shape = (num, model_config.latent_dim)
    if model_config.latent_dist == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    return jax.random.normal(key, shape)
