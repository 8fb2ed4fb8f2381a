"""Evaluation of a generator: samples, metrics and pictures, from a live state or a checkpoint."""

from __future__ import annotations

import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data import DataSpec, synthetic
from gan_jax.metrics import modes
from gan_jax.models import sample_latent
from gan_jax.state import GANState

EVAL_STREAM = 2**31 - 2  # fixed noise for evaluation, disjoint from training steps


@functools.partial(jax.jit, static_argnums=(0, 4))
def _generate(g_model: nn.Module, params, model_state, z, bfloat16: bool = False, y=None):
    if bfloat16:
        params = jax.tree.map(lambda p: p.astype(jnp.bfloat16) if jnp.issubdtype(p.dtype, jnp.floating) else p,
                              params)
        z = z.astype(jnp.bfloat16)
    kwargs = {} if y is None else {"y": y}
    out = g_model.apply({"params": params, **model_state}, z, train=False, **kwargs)
    return out.astype(jnp.float32) if jnp.issubdtype(out.dtype, jnp.floating) else out


def is_conditional(model_config) -> bool:
    return model_config.get("conditioning", "none") != "none"


def generate(g_model: nn.Module, state: GANState, num: int, model_config, use_ema: bool = True,
             key: jax.Array | None = None, labels: np.ndarray | None = None, z: jax.Array | None = None,
             num_classes: int = 0, batch: int = 1000) -> np.ndarray:
    """`num` samples from the (EMA) generator in inference mode, on fixed noise unless `key` is given.

    Conditional generators get `labels`, or labels cycling over `num_classes` (class i % K for
    sample i). `z` replaces the drawn noise. Samples are made `batch` at a time.
    """
    key = jax.random.fold_in(state.rng, EVAL_STREAM) if key is None else key
    z = sample_latent(key, num, model_config) if z is None else z
    if is_conditional(model_config):
        if labels is None:
            if num_classes < 1:
                raise ValueError("A class-conditional generator needs labels or num_classes.")
            labels = np.arange(num) % num_classes
        labels = jnp.asarray(labels, jnp.int32)
    else:
        labels = None
    params = state.g_ema if (use_ema and state.g_ema is not None) else state.g.params
    bf16 = model_config.get("dtype", "float32") == "bfloat16"
    out = []
    for start in range(0, num, batch):
        y = None if labels is None else labels[start:start + batch]
        out.append(np.asarray(_generate(g_model, params, state.g.model_state, z[start:start + batch], bf16, y)))
    return np.concatenate(out)


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


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latent vectors a and b [D] at fractions t [T] -> [T, D]."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    return (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)


def image_pictures(g_model: nn.Module, state: GANState, model_config, num_classes: int = 0,
                   use_ema: bool = True, columns: int = 8, rows: int = 4, steps: int = 10) -> dict[str, np.ndarray]:
    """Fixed-noise pictures of an image generator, as uint8 grids ready to save.

    "grid": 8x8 samples, or for a conditional generator one row per class (the same noise
    in each column); "interpolation": `rows` strips of `steps` images along great circles
    between pairs of fixed latent vectors (for conditional generators, of one class per row).
    """
    from gan_jax import writers

    key = jax.random.fold_in(state.rng, EVAL_STREAM + 1)
    conditional = is_conditional(model_config)
    if conditional:
        z = np.asarray(sample_latent(key, columns, model_config))
        z = np.tile(z, (num_classes, 1))
        labels = np.repeat(np.arange(num_classes), columns)
        grid = generate(g_model, state, len(z), model_config, use_ema, labels=labels, z=jnp.asarray(z))
    else:
        grid = generate(g_model, state, columns * columns, model_config, use_ema, key=key)
    ends = np.asarray(sample_latent(jax.random.fold_in(key, 1), 2 * rows, model_config), np.float64)
    t = np.linspace(0.0, 1.0, steps)
    path_z = np.concatenate([_slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)]).astype(np.float32)
    labels = np.repeat(np.arange(rows) % max(num_classes, 1), steps) if conditional else None
    strip = generate(g_model, state, len(path_z), model_config, use_ema, labels=labels, z=jnp.asarray(path_z))
    return {"grid": writers.image_grid(grid, columns=columns), "interpolation": writers.image_grid(strip, steps)}


def evaluate_and_save(g_model: nn.Module, state: GANState, spec: DataSpec, config, workdir: pathlib.Path,
                      step: int, writer) -> dict[str, float]:
    """One periodic evaluation of a run: pictures under `workdir/samples` (also sent to `writer`)
    and the data kind's metrics, returned as {"eval/NAME": value}.

    Points: the sample scatter and the mode metrics. Images: the fixed-noise grid (one row per
    class when conditional) and a latent interpolation strip. Text: the text metrics and samples.
    """
    from gan_jax import writers

    if spec.kind == "text":
        from gan_jax import text_run

        metrics = text_run.evaluate_text(g_model, state, spec, config, workdir, step, writer)
        return {f"eval/{k}": v for k, v in metrics.items()}
    picture = workdir / "samples" / f"step_{step:08d}.png"
    metrics = {}
    if spec.kind == "image":
        pictures = image_pictures(g_model, state, config.model, spec.num_classes or 0, config.eval.use_ema)
        writers.save_png(picture, pictures["grid"])
        strip = workdir / "samples" / f"interpolation_{step:08d}.png"
        writers.save_png(strip, pictures["interpolation"])
        writer.write_image(step, "samples", picture)
        writer.write_image(step, "interpolation", strip)
    else:
        samples = generate(g_model, state, config.eval.num_samples, config.model, config.eval.use_ema)
        metrics = evaluate_samples(spec, samples)
        save_samples_picture(picture, spec, samples, step, metrics)
        writer.write_image(step, "samples", picture)
    return {f"eval/{k}": v for k, v in metrics.items()}
