"""Resizing images for feature networks: one convention, clean-fid's "clean".

clean-fid (Parmar et al. 2022) showed that FID moves with the resizer: a resize that aliases
(no low-pass filter when shrinking) or that re-quantises to 8-bit gives other numbers. Its
"clean" resize is PIL's bicubic filter (Keys cubic, a = -0.5, widened by the scale when
shrinking so it is anti-aliased) applied to each channel as a float image, clipped to
[0, 255] and not quantised again. `clean_resize` does the same arithmetic in JAX so it runs
on the device inside the feature extractor's jit; tests hold it to PIL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CLEAN_RESIZER = "clean (PIL-style bicubic on float pixels, antialiased, clipped to [0, 255], no re-quantisation)"


def clean_resize(pixels: jax.Array, size: tuple[int, int]) -> jax.Array:
    """[N, H, W, C] float pixels in [0, 255] -> [N, size[0], size[1], C], clean-fid's convention."""
    n, h, w, c = pixels.shape
    if (h, w) == tuple(size):
        return pixels.astype(jnp.float32)
    scale = jnp.array([size[0] / h, size[1] / w], jnp.float32)
    out = jax.image.scale_and_translate(pixels.astype(jnp.float32), (n, size[0], size[1], c), (1, 2),
                                        scale, jnp.zeros(2, jnp.float32), method="cubic", antialias=True)
    return jnp.clip(out, 0.0, 255.0)
