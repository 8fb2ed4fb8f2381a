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


def points_frame(samples: np.ndarray, means: np.ndarray, size: int = 256) -> np.ndarray:
    """2-D samples as a uint8 [size, size, 3] picture: white ground, a pink ring (radius `RING` pixels) around
    each true mean, drawn first, and the samples over it as 2x2-pixel dots from light to dark blue as they pile
    up (4 or more on a pixel: darkest); the square spans the means plus a margin, y upwards."""
    span = float(np.abs(means).max()) * 1.4 + 0.5
    frame = np.full((size, size, 3), 255, np.uint8)

    def pixels(xy):
        col = np.floor((xy[:, 0] + span) / (2 * span) * size).astype(int)
        row = np.floor((span - xy[:, 1]) / (2 * span) * size).astype(int)
        keep = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        return row[keep], col[keep]

    rows, cols = np.mgrid[:size, :size]
    for r, c in zip(*pixels(np.asarray(means, np.float64))):
        ring = np.abs(np.hypot(rows - r, cols - c) - RING) < 0.75
        frame[ring] = (245, 160, 160)
    row, col = pixels(np.asarray(samples, np.float64))
    counts = np.zeros((size + 1, size + 1), np.int64)
    for dr in (0, 1):  # each sample covers its pixel and the three below and to the right
        for dc in (0, 1):
            np.add.at(counts, (row + dr, col + dc), 1)
    counts = counts[:size, :size]
    level = np.clip(counts, 1, 4)[..., None] / 4.0
    light, dark = np.array([150, 170, 235.0]), np.array([10, 30, 140.0])
    return np.where(counts[..., None] > 0, light + (dark - light) * level, frame).astype(np.uint8)


RING = 4  # pixels: the radius of the ring around each true mean in `points_frame`


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


def label_rows(grid: np.ndarray, labels: list[str], row_height: int, padding: int = 2,
               margin: int = 14) -> np.ndarray:
    """`grid` (uint8 [H, W] or [H, W, C]) with a white margin on the left holding `labels[i]` beside row i."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(grid[..., 0] if grid.ndim == 3 and grid.shape[-1] == 1 else grid)
    out = Image.new(image.mode, (image.width + margin, image.height), 255 if image.mode == "L" else (255,) * 3)
    out.paste(image, (margin, 0))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(labels):
        top = padding + i * (row_height + padding)
        draw.text((2, top + max(row_height - 11, 0) // 2), text, fill=0 if image.mode == "L" else (0, 0, 0))
    return np.asarray(out)

