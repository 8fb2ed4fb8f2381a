"""The pieces of a run's periodic evaluation that the modalities (`loop.modalities`) put together:

- the registered metrics of a data kind that need no network (the 2-D mixtures' mode metrics);
- images: the fixed-noise grid (one row per class when conditional) and a latent interpolation strip;
- text: `eval.num_samples` sentences at `text.sample_temperature` on fixed noise, decoded to
  `samples/step_XXXXXXXX.txt` (and TensorBoard text), `nll_gen` (the generator's per-token NLL of
  the held-out set, up to `<eos>` for real text) and the `metrics.text.SampleScorer` metrics.
"""

from __future__ import annotations

import functools
import pathlib

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax.core.sampling import (
    eval_key,
    generate,
    generator_params,
    is_conditional,
    sample_ids,
    token_log_probs,
)
from gan_jax.core.state import GANState
from gan_jax.data import DataSpec
from gan_jax.loop import pictures
from gan_jax.metrics import base as metrics_lib
from gan_jax.metrics import text as text_metrics
from gan_jax.models import sample_latent
from gan_jax.rng import stream


def evaluate_samples(spec: DataSpec, samples: np.ndarray) -> dict[str, float]:
    """The registered metrics of the data's kind that need no network (the mode metrics of the 2-D mixtures)."""
    names = metrics_lib.names_for(spec.kind, needs=("reference",))
    records = metrics_lib.compute(names, metrics_lib.MetricInputs(samples, source=spec.source))
    return {r["metric"]: r["value"] for r in records}


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latent vectors a and b [D] at fractions t [T] -> [T, D]."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    return (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)


GRID_CLASSES = 16  # a conditional grid's rows at most: ImageNet's 1000 rows would be 8,000 images a picture


def grid_classes(num_classes: int) -> np.ndarray:
    """The classes a conditional grid shows, a row each: all of them, or GRID_CLASSES evenly spaced ones."""
    if num_classes <= GRID_CLASSES:
        return np.arange(num_classes)
    return np.linspace(0, num_classes - 1, GRID_CLASSES).round().astype(np.int64)


def image_pictures(g_model: nn.Module, state: GANState, model_config, num_classes: int = 0,
                   use_ema: bool = True, columns: int = 8, rows: int = 4, steps: int = 10) -> dict[str, np.ndarray]:
    """Fixed-noise pictures of an image generator, as uint8 grids ready to save.

    "grid": 8x8 samples, or for a conditional generator one row per class (the same noise
    in each column; `GRID_CLASSES` evenly spaced classes of a larger set); "interpolation": `rows`
    strips of `steps` images along great circles between pairs of fixed latent vectors (for
    conditional generators, of one class per row).
    """
    key = eval_key(state, "pictures")
    conditional = is_conditional(model_config)
    if conditional:
        z = np.asarray(sample_latent(key, columns, model_config))
        classes = grid_classes(num_classes)
        z = np.tile(z, (len(classes), 1))
        labels = np.repeat(classes, columns)
        grid = generate(g_model, state, len(z), model_config, use_ema, labels=labels, z=jnp.asarray(z))
    else:
        grid = generate(g_model, state, columns * columns, model_config, use_ema, key=key)
    ends = np.asarray(sample_latent(stream(key, "interpolation"), 2 * rows, model_config), np.float64)
    t = np.linspace(0.0, 1.0, steps)
    path_z = np.concatenate([_slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)]).astype(np.float32)
    labels = np.repeat(np.arange(rows) % max(num_classes, 1), steps) if conditional else None
    strip = generate(g_model, state, len(path_z), model_config, use_ema, labels=labels, z=jnp.asarray(path_z))
    return {"grid": pictures.image_grid(grid, columns=columns), "interpolation": pictures.image_grid(strip, steps)}


@functools.lru_cache(maxsize=4)
def _scorer(tokenizer, test_ids_bytes: bytes, shape: tuple) -> text_metrics.SampleScorer:
    # One scorer per held-out set: its BLEU reference statistics are built once and reused by every eval.
    return text_metrics.SampleScorer(tokenizer, np.frombuffer(test_ids_bytes, np.int32).reshape(shape))


def sample_scorer(spec: DataSpec) -> text_metrics.SampleScorer:
    test_ids = np.ascontiguousarray(spec.extra["test_ids"], np.int32)
    return _scorer(spec.extra["tokenizer"], test_ids.tobytes(), test_ids.shape)


def nll_gen(g_model: nn.Module, state: GANState, spec: DataSpec, use_ema: bool) -> float:
    """The generator's mean per-token NLL of the held-out set (teacher forcing)."""
    scorer = sample_scorer(spec)
    log_probs = token_log_probs(g_model, generator_params(state, use_ema), state.g.model_state, scorer.test_ids)
    return text_metrics.mean_nll(log_probs, scorer.test_ids, scorer.real_text)


def evaluate_text(g_model: nn.Module, state: GANState, spec: DataSpec, config: ml_collections.ConfigDict,
                  workdir: pathlib.Path, step: int, writer=None) -> dict[str, float]:
    """Samples, writes them decoded, and returns the text metrics (see the module docstring)."""
    ids = sample_ids(g_model, state, config.eval.num_samples, config, config.eval.use_ema)
    metrics = {"nll_gen": nll_gen(g_model, state, spec, config.eval.use_ema), **sample_scorer(spec)(ids)}
    decoded = [spec.extra["tokenizer"].decode(row) for row in ids]
    path = workdir / "samples" / f"step_{step:08d}.txt"
    path.write_text("".join(line + "\n" for line in decoded), encoding="utf-8")
    if writer is not None:
        writer.write_text(step, "samples", "\n\n".join(decoded[:20]))
    return metrics
