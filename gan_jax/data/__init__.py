"""Data sources. Every source gives the same thing: a deterministic, resumable batch iterator.

Sources register themselves by kind (`register_source`; the built-in ones are in
`gan_jax/data/sources.py`): `synthetic:NAME`, `tfds:NAME`, `local:PATH`, `digits`,
`stacked:mnist`. `get_dataset(data_config, batch_size, seed)` returns `(iterator, DataSpec)`. The
iterator yields `{"x": float32 [B, ...]}` (plus `"label"` where there are labels) forever;
`iterator.position` counts the batches it has produced, and `iterator.seek(position)`
puts it back there, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Any, Callable, Iterator

import ml_collections
import numpy as np

from gan_jax.errors import DataError
from gan_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What the models and metrics need to know about the data."""

    source: str
    shape: tuple[int, ...]  # one example, e.g. (2,) or (28, 28, 1)
    kind: str  # "points" (2-D mixtures), "image" or "text" (shape (max_len, vocab_size))
    num_examples: int
    num_classes: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class ArrayIterator(Iterator[dict]):
    """Shuffled batches over in-memory arrays; the batch at position p is a pure function of (seed, p).

    Epoch e is a permutation drawn from (seed, e); batches run across epoch boundaries, so no
    example is dropped and every batch has the same shape.

    `batch_size` is the global batch. With several hosts (`process_count` > 1) each host
    yields only its own rows of every global batch: host i gets rows
    [i * B / P, (i + 1) * B / P), so the hosts together see exactly the batches one host
    would, and `position` (global batches produced) is the same number on every host.
    """

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int, transform=None,
                 process_index: int = 0, process_count: int = 1):
        if batch_size % process_count:
            raise DataError(f"batch_size {batch_size} is not divisible by the {process_count} hosts; "
                            f"use a multiple of {process_count} (config key 'batch_size').")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} is not in [0, {process_count}).")
        self.arrays = arrays
        self.n = len(next(iter(arrays.values())))
        self.batch_size = batch_size
        self.local_batch_size = batch_size // process_count
        self.process_index = process_index
        self.process_count = process_count
        self.seed = seed
        self.transform = transform
        self.position = 0
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perms[epoch]

    def indices(self, position: int, count: int = 1) -> np.ndarray:
        """Example indices of the `count` global batches from `position` on, flat [count * B]."""
        start = position * self.batch_size
        flat = np.arange(start, start + count * self.batch_size)
        epochs, offsets = np.divmod(flat, self.n)
        out = np.empty_like(flat)
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            out[mask] = self._perm(int(epoch))[offsets[mask]]
        return out

    def local_indices(self, position: int, count: int = 1) -> np.ndarray:
        """This host's rows of those batches, flat [count * B / process_count]."""
        idx = self.indices(position, count).reshape(count, self.batch_size)
        lo = self.process_index * self.local_batch_size
        return idx[:, lo:lo + self.local_batch_size].reshape(-1)

    def seek(self, position: int) -> None:
        self.position = int(position)

    def batches_at(self, position: int, count: int) -> dict[str, np.ndarray]:
        """This host's part of `count` consecutive batches from `position`: {"x": [count, B / hosts, ...]}.

        Pure in (seed, position, count); does not move the iterator.
        """
        idx = self.local_indices(position, count)
        out = {}
        for key, array in self.arrays.items():
            values = array[idx]
            if key == "x" and self.transform is not None:
                values = self.transform(values)
            out[key] = values.reshape((count, self.local_batch_size) + values.shape[1:])
        return out

    def next_batches(self, count: int) -> dict[str, np.ndarray]:
        """`count` consecutive batches stacked: {"x": [count, B / hosts, ...], ...}."""
        out = self.batches_at(self.position, count)
        self.position += count
        return out

    def __next__(self) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.next_batches(1).items()}


def images_to_float(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 127.5 - 1.0


def local_images(data_config: ml_collections.ConfigDict, source: str, path: str) -> tuple[dict, DataSpec]:
    """`local:FILE.npz`, `local:FOLDER` or `digits`, fitted to `data.resolution`."""
    from gan_jax.data import images as image_lib

    resolution, crop = data_config.resolution, data_config.crop
    class_names = None
    try:
        if source == "digits":
            images, labels = image_lib.load_digits(resolution)
            class_names = [str(i) for i in range(10)]
        elif path.endswith(".npz"):
            images, labels = image_lib.load_npz(path)
            images = image_lib.fit_images(images, resolution, crop)
        elif os.path.isdir(path):
            images, labels, class_names = image_lib.load_folder(path, resolution, crop)
        else:
            raise DataError(f"local source {path!r} is neither a .npz file nor a folder of images "
                            "(config key 'data.source').")
    except image_lib.ImageSourceError as e:
        raise DataError(str(e)) from e
    if len(images) == 0:
        raise DataError(f"{source!r} holds no images.")
    arrays = {"x": images}
    num_classes = None
    if labels is not None:
        arrays["label"] = labels
        num_classes = len(class_names) if class_names else int(labels.max()) + 1
    extra = {"label_names": class_names} if class_names else {}
    return arrays, DataSpec(source, tuple(images.shape[1:]), "image", len(images), num_classes, extra)


@dataclasses.dataclass(frozen=True)
class Source:
    """A kind of data source (the part of `data.source` before ':'): `load(data_config, name, split,
    seed) -> (arrays, spec, transform)`, where `transform` (or None) maps stored `x` rows to floats."""

    kind: str
    load: Callable[[ml_collections.ConfigDict, str, str, int], tuple[dict, DataSpec, Callable | None]]
    usage: str  # how the source is written, for messages: "synthetic:ring8|grid25|oracle"


SOURCES: Registry[Source] = Registry("data source", "data.source", ("gan_jax.data",))


def register_source(kind: str, load, usage: str) -> Source:
    return SOURCES.register(kind, Source(kind, load, usage))


def get_dataset(data_config: ml_collections.ConfigDict, batch_size: int, seed: int,
                split: str | None = None, process_index: int = 0,
                process_count: int = 1) -> tuple[ArrayIterator, DataSpec]:
    """The batch iterator and spec of `data_config.source`; with several hosts, this host's rows."""
    source = data_config.source
    split = split or data_config.split
    kind, _, name = source.partition(":")
    if kind not in SOURCES:
        near = difflib.get_close_matches(source, [s.usage for s in SOURCES.values()], n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise DataError(f"Unknown data source {source!r} (config key 'data.source').{hint} Use one of: "
                        f"{', '.join(s.usage for s in SOURCES.values())}.")
    arrays, spec, transform = SOURCES.get(kind).load(data_config, name, split, seed)
    if batch_size > spec.num_examples:
        raise DataError(f"batch_size {batch_size} is larger than the {spec.num_examples} examples of "
                        f"{source!r} ({split}); lower --config.batch_size.")
    return ArrayIterator(arrays, batch_size, seed, transform, process_index, process_count), spec
