"""2-D points (the Gaussian mixtures): scatter plots, the mode metrics, PacGAN's table in the report."""

from __future__ import annotations

import numpy as np

from gan_jax.core.sampling import generate
from gan_jax.data import synthetic
from gan_jax.loop import evaluation, pictures
from gan_jax.loop.modalities.base import Modality, register_modality


@register_modality
class Points(Modality):
    kind = "points"
    animated = True

    def evaluate(self, blueprint, state, config, workdir, step, writer):
        samples = generate(blueprint.g_model, state, config.eval.num_samples, config.model, config.eval.use_ema)
        metrics = evaluation.evaluate_samples(blueprint.spec, samples)
        means, _ = synthetic.mixture(blueprint.spec.source.split(":", 1)[1])
        # Two lines, so that the last metric is not cut at the picture's right edge.
        title = f"{blueprint.spec.source}, step {step}\n" + ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())
        picture = workdir / "samples" / f"step_{step:08d}.png"
        pictures.save_scatter(picture, samples, means, title)
        writer.write_image(step, "samples", picture)
        return {f"eval/{k}": v for k, v in metrics.items()}

    def frame(self, blueprint, config, state):
        samples = generate(blueprint.g_model, state, config.eval.num_samples, config.model, config.eval.use_ema)
        return pictures.points_frame(samples, synthetic.mixture(blueprint.spec.source.split(":", 1)[1])[0])

    def write_samples(self, blueprint, state, config, num, out, fmt, use_ema, key, truncation=None):
        samples = generate(blueprint.g_model, state, num, config.model, use_ema, key=key, truncation=truncation)
        path = out.with_suffix(".npz")
        np.savez(path, x=samples)
        return path

    def report(self, config, metrics):
        from gan_jax.metrics import modes

        return [modes.format_table(config.data.source.split(":", 1)[1], metrics, config.eval.num_samples)]
