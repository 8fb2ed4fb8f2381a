"""Evaluation of a generator: samples, metrics and pictures, from a live state or a checkpoint."""

from __future__ import annotations

import functools
import pathlib

import flax.linen as nn
import jax
import numpy as np

from gan_jax.data import DataSpec, synthetic
from gan_jax.metrics import modes
from gan_jax.models import sample_latent
from gan_jax.state import GANState

EVAL_STREAM = 2**31 - 2  # fixed noise for evaluation, disjoint from training steps


@functools.partial(jax.jit, static_argnums=0)
def _generate(g_model: nn.Module, params, model_state, z):
    return g_model.apply({"params": params, **model_state}, z, train=False)


def generate(g_model: nn.Module, state: GANState, num: int, model_config, use_ema: bool = True,
             key: jax.Array | None = None) -> np.ndarray:
    """`num` samples from the (EMA) generator in inference mode, on fixed noise unless `key` is given."""
    key = jax.random.fold_in(state.rng, EVAL_STREAM) if key is None else key
    z = sample_latent(key, num, model_config)
    params = state.g_ema if (use_ema and state.g_ema is not None) else state.g.params
    return np.asarray(_generate(g_model, params, state.g.model_state, z))


def evaluate_samples(spec: DataSpec, samples: np.ndarray) -> dict[str, float]:
    """The metrics that fit the data: mode statistics for the 2-D mixtures."""
    if spec.kind == "points":
        means, std = synthetic.mixture(spec.source.split(":", 1)[1])
        return modes.mode_metrics(samples, means, std)
    return {}


def save_samples_picture(path: pathlib.Path, spec: DataSpec, samples: np.ndarray, step: int,
                         metrics: dict[str, float]) -> None:
    from gan_jax import writers

    if spec.kind == "points":
        means, _ = synthetic.mixture(spec.source.split(":", 1)[1])
        title = f"{spec.source}, step {step}: " + ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())
        writers.save_scatter(path, samples, means, title)
    else:
        writers.save_image_grid(path, samples[:64], columns=8)
