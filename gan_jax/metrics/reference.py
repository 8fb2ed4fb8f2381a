"""Features of real data for the metrics, computed once and cached on disk.

A reference set is named by (dataset, split, resolution, N, feature network): the same key
gives the same N examples (the first N of a fixed permutation with seed 0, or the whole
split when N is its size) and the same features, read back from
`<cache>/reference/<key>.npz` after the first time.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Callable

import numpy as np


def cache_root() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "gan_jax" / "reference"


def reference_key(dataset: str, split: str, resolution: tuple[int, ...], num: int, network: str) -> str:
    raw = f"{dataset}-{split}-{'x'.join(map(str, resolution))}-n{num}-{network}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def select(num_examples: int, num: int) -> np.ndarray:
    """Indices of the reference subset: the first `num` of a seed-0 permutation, in order."""
    if num > num_examples:
        raise ValueError(f"asked for {num} reference examples, the split has only {num_examples}; "
                         f"lower the sample count (--num_samples / eval.num_samples).")
    if num == num_examples:
        return np.arange(num_examples)
    return np.sort(np.random.default_rng(0).permutation(num_examples)[:num])


def reference_features(dataset: str, split: str, images: np.ndarray, num: int, network: str,
                       featurize: Callable[[np.ndarray], dict[str, np.ndarray]],
                       cache_dir: str | pathlib.Path | None = None) -> dict[str, np.ndarray]:
    """{"features": [num, d], ...} of `num` images of a split, from the cache when it has them.

    `images` are the whole split in [-1, 1]; `featurize` maps images to named arrays.
    """
    key = reference_key(dataset, split, images.shape[1:], num, network)
    path = pathlib.Path(cache_dir) if cache_dir else cache_root()
    path = path / f"{key}.npz"
    if path.is_file():
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}
    out = featurize(images[select(len(images), num)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(path)
    return out
