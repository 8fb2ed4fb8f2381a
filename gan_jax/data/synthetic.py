"""The 2-D Gaussian mixtures of the mode-collapse literature (PacGAN, VEEGAN definitions)."""

from __future__ import annotations

import numpy as np


def ring8_means(radius: float = 1.0) -> np.ndarray:
    """8 means on a circle: (cos 2pi k/8, sin 2pi k/8) * radius, k = 0..7."""
    angles = 2 * np.pi * np.arange(8) / 8
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_means() -> np.ndarray:
    """25 means on the grid {-4, -2, 0, 2, 4}^2."""
    axis = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


MIXTURES = {
    "ring8": (ring8_means, 0.01),
    "grid25": (grid25_means, 0.05),
}


def mixture(name: str) -> tuple[np.ndarray, float]:
    """(means [K, 2], std) of a named mixture."""
    if name not in MIXTURES:
        raise ValueError(f"Unknown synthetic mixture {name!r}; known: {', '.join(MIXTURES)}.")
    means_fn, std = MIXTURES[name]
    return means_fn().astype(np.float64), std


def sample_mixture(name: str, n: int, seed: int) -> np.ndarray:
    """n points, each from a uniformly chosen component; deterministic in (name, n, seed)."""
    means, std = mixture(name)
    rng = np.random.default_rng(seed)
    component = rng.integers(0, len(means), size=n)
    return (means[component] + std * rng.standard_normal((n, 2))).astype(np.float32)
