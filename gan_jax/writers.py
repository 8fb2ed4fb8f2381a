"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard, the console, PNG files."""

from __future__ import annotations

import json
import math
import pathlib
import sys
from typing import Any, Mapping

import numpy as np


class MetricWriter:
    """Writes `{"step": s, name: value, ...}` lines to metrics.jsonl and scalars to TensorBoard."""

    def __init__(self, workdir: pathlib.Path, tensorboard: bool = True):
        self.path = workdir / "metrics.jsonl"
        self._file = open(self.path, "a")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(workdir), flush_secs=30)

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        values = {k: float(v) for k, v in scalars.items()}
        if not values:
            return
        self._file.write(json.dumps({"step": int(step), **values}) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)

    def write_image(self, step: int, tag: str, png_path: pathlib.Path) -> None:
        if self._tb is not None:
            from PIL import Image

            self._tb.add_image(tag, np.asarray(Image.open(png_path).convert("RGB")), step, dataformats="HWC")

    def write_text(self, step: int, tag: str, text: str) -> None:
        if self._tb is not None:
            self._tb.add_text(tag, text, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def truncate_metrics(path: pathlib.Path, last_step: int) -> None:
    """Drops lines after `last_step` so a resumed run neither duplicates nor skips steps."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError):
            continue  # a line cut short by a killed process
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in kept))
    tmp.replace(path)  # atomic: a kill here leaves the old or the new file, never half of one


class Progress:
    """A console progress bar with steps/s and the latest losses."""

    def __init__(self, total: int, initial: int, enabled: bool = True):
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr,
                         disable=not enabled, smoothing=0.1)

    def update(self, step: int, postfix: Mapping[str, float] | None = None) -> None:
        self._bar.update(step - self._bar.n)
        if postfix:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)

    def write(self, text: str) -> None:
        self._bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


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
