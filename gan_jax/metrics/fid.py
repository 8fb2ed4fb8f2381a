"""Sample-quality metrics on feature vectors: FID, KID, Inception Score, precision/recall, density/coverage.

Everything here is numpy on features that a feature network (`inception.py`,
`classifier.py`) produced, in float64. The definitions:

- FID (Heusel et al. 2017): |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).
- KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3,
  averaged over random subsets (mean and std over subsets).
- IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) on softmax(logits), mean and std
  over 10 splits.
- Improved precision/recall (Kynkaanniemi et al. 2019), k = 3: a sample is inside a set's
  manifold if it lies within the k-th nearest-neighbour radius of some point of the set.
- Density/coverage (Naeem et al. 2020), k = 3 on the real set's radii.
"""

from __future__ import annotations

import numpy as np


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [d], covariance [d, d]) in float64, covariance with the N - 1 normalisation."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be [N >= 2, d], got shape {features.shape}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def sqrtm_psd_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD sigma1, sigma2, stably in float64.

    (S1 S2)^(1/2) is similar to (S1^(1/2) S2 S1^(1/2))^(1/2), a symmetric PSD matrix, so the
    trace is the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2): two
    symmetric eigendecompositions, no complex arithmetic, no iteration that can fail on a
    singular covariance (N < d), where scipy.linalg.sqrtm returns spurious imaginary parts.
    """
    sigma1 = np.asarray(sigma1, np.float64)
    sigma2 = np.asarray(sigma2, np.float64)
    w1, v1 = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    middle = root1 @ sigma2 @ root1
    w = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sum(np.sqrt(np.clip(w, 0, None))))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different dimensions: {mu1.shape} vs {mu2.shape}.")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * sqrtm_psd_product(sigma1, sigma2)
    return float(max(value, 0.0))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    return frechet_distance(*statistics(features1), *statistics(features2))


def kid(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) over subsets of the unbiased polynomial-kernel MMD^2 between two feature sets."""
    x = np.asarray(features1, np.float64)
    y = np.asarray(features2, np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set.")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        kxx = (xs @ xs.T / d + 1) ** 3
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        values[i] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                     - 2 * kxy.mean())
    return float(values.mean()), float(values.std())


def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """(mean, std) over `num_splits` equal splits of exp(E KL(p(y|x) || p(y)))."""
    logits = np.asarray(logits, np.float64)
    if len(logits) < num_splits:
        raise ValueError(f"Inception Score needs at least {num_splits} samples, got {len(logits)}.")
    log_p = logits - _logsumexp(logits, axis=1, keepdims=True)
    scores = []
    for part in np.array_split(log_p, num_splits):
        log_marginal = _logsumexp(part, axis=0) - np.log(len(part))
        kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _logsumexp(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2 * a @ b.T
    return np.maximum(d2, 0.0)


def _knn_radii(x: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """Squared distance of each row of x to its k-th nearest other row."""
    radii = np.empty(len(x))
    for start in range(0, len(x), block):
        d2 = _squared_distances(x[start:start + block], x)
        # Column k of the sorted row: column 0 is the point itself (distance 0).
        radii[start:start + block] = np.partition(d2, k, axis=1)[:, k]
    return radii


def _within(queries: np.ndarray, points: np.ndarray, radii: np.ndarray, block: int = 2048) -> np.ndarray:
    """[len(queries), len(points)] counts are too big at 10k x 10k x float64; count per block."""
    counts = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), block):
        d2 = _squared_distances(queries[start:start + block], points)
        counts[start:start + block] = np.sum(d2 <= radii[None, :], axis=1)
    return counts


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (k-NN manifolds) of `fake` against `real`."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples in each set.")
    precision = np.mean(_within(fake, real, _knn_radii(real, k)) > 0)
    recall = np.mean(_within(real, fake, _knn_radii(fake, k)) > 0)
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Density (can exceed 1) and coverage in [0, 1] of `fake` against `real`, k-NN balls of real."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    radii = _knn_radii(real, k)
    density = _within(fake, real, radii).sum() / (k * len(fake))
    # Coverage: real points whose ball holds at least one fake sample.
    covered = np.zeros(len(real), bool)
    for start in range(0, len(fake), 2048):
        d2 = _squared_distances(fake[start:start + 2048], real)
        covered |= np.any(d2 <= radii[None, :], axis=0)
    return {"density": float(density), "coverage": float(covered.mean())}
