"""Text: decoded samples, the text metrics and their published rows in the report, MLE pretraining and the
tokenizer before the first step."""

from __future__ import annotations

import sys

from gan_jax.core import sampling
from gan_jax.loop import distributed, evaluation, pretrain
from gan_jax.loop.modalities.base import Modality, register_modality


@register_modality
class Text(Modality):
    kind = "text"
    checks_sample_shape = False  # relaxed one-hot sequences: the models check themselves
    stackable = False  # MLE pretraining runs per run

    def evaluate(self, blueprint, state, config, workdir, step, writer):
        metrics = evaluation.evaluate_text(blueprint.g_model, state, blueprint.spec, config, workdir, step, writer)
        return {f"eval/{k}": v for k, v in metrics.items()}

    def write_samples(self, blueprint, state, config, num, out, fmt, use_ema, key, truncation=None):
        if truncation is not None:
            raise ValueError("--truncation applies to image and 2-D generators; text samples are drawn at "
                             "text.sample_temperature (gan-jax evaluate --temperatures sweeps it).")
        if key is not None:
            state = state.replace(rng=key)
        ids = sampling.sample_ids(blueprint.g_model, state, num, config, use_ema)
        tokenizer = blueprint.spec.extra["tokenizer"]
        path = out.with_suffix(".txt")
        path.write_text("".join(tokenizer.decode(row) + "\n" for row in ids), encoding="utf-8")
        return path

    def report(self, config, metrics):
        from gan_jax.metrics import text as text_metrics

        return [text_metrics.format_table(metrics, config.eval.num_samples,
                                          published="coco" in config.data.source.lower())]

    def before_training(self, blueprint, state, iterator, workdir, fresh, writer, primary):
        distributed.on_primary(lambda: pretrain.save_tokenizer(workdir, blueprint.spec), "tokenizer")
        if not fresh:
            return state
        # MLE pretraining before adversarial step 0; deterministic, so every process computes the same
        # pretrained state, and process 0 reports it.
        return pretrain.pretrain(blueprint.config, blueprint.g_model, state, iterator.arrays["x"], writer,
                                 lambda text: print(text, file=sys.stderr) if primary else None)
