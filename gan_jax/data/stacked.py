"""Stacked MNIST (source `stacked:mnist`): three MNIST digits as the R, G, B channels, 1000 modes.

The set is drawn once from the MNIST split with the run's seed: `data.num_train` images, each
channel an independently chosen digit; the label is 100 l_R + 10 l_G + l_B.
"""

from __future__ import annotations

import numpy as np


def load_stacked_mnist(data_config, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [num_train, 28, 28, 3], labels in [0, 1000)) built from tfds MNIST."""
    from gan_jax.data import tfds_images

    images, labels, _ = tfds_images.load_tfds_arrays("mnist", split, data_dir=data_config.data_dir,
                                                     manual_dir=data_config.manual_dir)
    # The test split is drawn from another stream than the training set.
    stream = seed if split == "train" else seed + 1_000_003
    return stack_digits(images, labels, data_config.num_train, seed=stream)


def stack_digits(images: np.ndarray, labels: np.ndarray, num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stacked MNIST: `num` images whose R, G, B channels are three independently drawn digits.

    Returns (uint8 [num, 28, 28, 3], mode labels 100 l_R + 10 l_G + l_B).
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    idx = np.random.default_rng(seed).integers(0, len(images), (num, 3))
    stacked = np.stack([images[idx[:, c]] for c in range(3)], axis=-1)
    labels = np.asarray(labels)
    return stacked, 100 * labels[idx[:, 0]] + 10 * labels[idx[:, 1]] + labels[idx[:, 2]]
