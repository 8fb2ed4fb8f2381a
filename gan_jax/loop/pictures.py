"""Pictures of a run: 2-D sample scatter plots and image grids, as PNG files."""

from __future__ import annotations

import math
import pathlib

import numpy as np


def save_scatter(path: pathlib.Path, samples: np.ndarray, means: np.ndarray, title: str) -> None:
    """Generated 2-D samples over the true means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, color="tab:blue", label="generated")
    ax.scatter(means[:, 0], means[:, 1], s=30, marker="x", color="tab:red", label="true means")
    span = np.abs(means).max() * 1.4 + 0.5
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """[N, H, W, C] images in [-1, 1] -> one uint8 [rows*(H+p)+p, cols*(W+p)+p, C] grid."""
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 255, np.uint8)
    pixels = np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = pixels[i]
    return grid


def save_png(path: pathlib.Path, grid: np.ndarray) -> None:
    """Writes a uint8 [H, W, C] array as PNG."""
    from PIL import Image

    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)


def save_image_grid(path: pathlib.Path, images: np.ndarray, columns: int | None = None) -> None:
    from PIL import Image

    grid = image_grid(images, columns)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    Image.fromarray(grid).save(path)
