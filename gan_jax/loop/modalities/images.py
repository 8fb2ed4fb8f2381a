"""Images: the fixed-noise grid and a latent interpolation strip, samples as PNG files or one .npz."""

from __future__ import annotations

import numpy as np

from gan_jax.core.sampling import generate, is_conditional
from gan_jax.loop import evaluation, pictures
from gan_jax.loop.modalities.base import Modality, register_modality


@register_modality
class Images(Modality):
    kind = "image"
    animated = True

    def _grids(self, blueprint, config, state):
        return evaluation.image_pictures(blueprint.g_model, state, config.model, blueprint.num_classes,
                                         config.eval.use_ema)

    def evaluate(self, blueprint, state, config, workdir, step, writer):
        grids = self._grids(blueprint, config, state)
        picture = workdir / "samples" / f"step_{step:08d}.png"
        strip = workdir / "samples" / f"interpolation_{step:08d}.png"
        pictures.save_png(picture, grids["grid"])
        pictures.save_png(strip, grids["interpolation"])
        writer.write_image(step, "samples", picture)
        writer.write_image(step, "interpolation", strip)
        return {}

    def frame(self, blueprint, config, state):
        grid = self._grids(blueprint, config, state)["grid"]
        return np.repeat(grid, 3, axis=-1) if grid.shape[-1] == 1 else grid

    def write_samples(self, blueprint, state, config, num, out, fmt, use_ema, key, truncation=None):
        samples = generate(blueprint.g_model, state, num, config.model, use_ema, key=key,
                           num_classes=blueprint.num_classes, truncation=truncation)
        labels = np.arange(num) % blueprint.num_classes if is_conditional(config.model) else None
        pixels = np.clip(np.rint((samples + 1.0) * 127.5), 0, 255).astype(np.uint8)
        if fmt == "npz":
            path = out.with_suffix(".npz")
            arrays = {"x": pixels}
            if labels is not None:
                arrays["label"] = labels.astype(np.int32)
            np.savez(path, **arrays)
            return path
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(pixels):
            name = f"{i:06d}" + (f"_class{labels[i]}" if labels is not None else "") + ".png"
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(out / name)
        # One picture to look at first: the first 64 samples as an 8-wide grid, beside the folder.
        pictures.save_image_grid(out.parent / f"{out.name}_grid.png", samples[:64], columns=8)
        return out
