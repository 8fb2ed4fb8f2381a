"""Checks of a data source against what a run asks of it, run before anything is written.

Each raises `DataError` with a message that names the source, the config key and the fix,
so every source (tfds, synthetic, local files, text) can share them.
"""

from __future__ import annotations

from typing import Sequence

import jax
import ml_collections

from gan_jax.data import DataError, DataSpec


def check_batch_size(spec: DataSpec, batch_size: int, split: str = "train") -> None:
    """A batch must fit in the dataset (batches wrap around epochs, but never repeat an example)."""
    if batch_size > spec.num_examples:
        raise DataError(f"batch_size {batch_size} is larger than the {spec.num_examples} examples of "
                        f"{spec.source!r} ({split}); lower --config.batch_size.")


def check_labels(spec: DataSpec, needed: bool, why: str = "labels were requested") -> None:
    """Refuses a labelled run (conditional GAN, classifier metric ...) on a source without labels."""
    if needed and not spec.num_classes:
        raise DataError(f"{why}, but {spec.source!r} has no class labels. Use a labelled source "
                        "(e.g. tfds:mnist) or turn off the option that needs labels.")


def check_sample_shape(shape: Sequence[int], spec: DataSpec, generator: str) -> None:
    """The generator's sample shape must be the data's (resolution and channels)."""
    if tuple(shape) != tuple(spec.shape):
        raise DataError(
            f"Generator {generator!r} makes samples of shape {tuple(shape)} but {spec.source!r} has examples of "
            f"shape {tuple(spec.shape)}. Pick a model (config key 'model.generator') or model resolution that "
            "matches the data, or resize the data.")


def check_generator_matches_data(g_model, params, model_state, z_shape: Sequence[int], spec: DataSpec,
                                 model_config: ml_collections.ConfigDict) -> None:
    """Traces (without running) one generator call and checks its sample shape against the data."""
    z = jax.ShapeDtypeStruct(tuple(z_shape), jax.numpy.float32)
    kwargs = {}
    if model_config.conditioning != "none":  # class-conditional generators also take labels
        kwargs["y"] = jax.ShapeDtypeStruct(tuple(z_shape[:1]), jax.numpy.int32)
    out = jax.eval_shape(lambda p, s, z, kw: g_model.apply({"params": p, **s}, z, train=False, **kw),
                         params, model_state, z, kwargs)
    if isinstance(out, jax.ShapeDtypeStruct):  # models with structured outputs check themselves
        check_sample_shape(out.shape[1:], spec, model_config.generator)
