"""Mode-collapse metrics for 2-D Gaussian mixtures, as PacGAN (Lin et al. 2018) defines them.

On generated samples: a sample is *high quality* if its Mahalanobis distance to the
nearest mean is below 3 (isotropic std, so |x - mu| / std < 3); a mode is *captured* if
at least one high-quality sample is nearest to it; *reverse KL* is KL(p || uniform) where
p is the histogram of nearest means over all samples.
"""

from __future__ import annotations

import numpy as np


def nearest_mode(samples: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest mean [N], distance to it [N])."""
    d2 = np.sum((samples[:, None, :].astype(np.float64) - means[None, :, :]) ** 2, axis=-1)
    idx = np.argmin(d2, axis=1)
    return idx, np.sqrt(d2[np.arange(len(samples)), idx])


def mode_metrics(samples: np.ndarray, means: np.ndarray, std: float) -> dict[str, float]:
    """{"modes": captured count, "high_quality": fraction in [0, 1], "reverse_kl": nats}."""
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(f"samples must be [N, {means.shape[1]}], got {samples.shape}.")
    finite = np.all(np.isfinite(samples), axis=1)
    idx, dist = nearest_mode(np.where(finite[:, None], samples, 0.0), means)
    high_quality = finite & (dist < 3.0 * std)
    k = len(means)
    captured = np.unique(idx[high_quality]).size
    p = np.bincount(idx[finite], minlength=k) / max(int(finite.sum()), 1)
    nonzero = p > 0
    reverse_kl = float(np.sum(p[nonzero] * np.log(p[nonzero] * k)))
    return {"modes": float(captured), "high_quality": float(high_quality.mean()), "reverse_kl": reverse_kl}


# PacGAN (Lin et al. 2018), Table 1: mean ± std. error over 10 trials, 2,500 samples each.
PACGAN_TABLE1 = {
    "ring8": {
        "GAN": ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
        "ALI": ((6.6, 0.3), (97.6, 0.4), (0.36, 0.04)),
        "PacGAN2": ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
        "PacGAN4": ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02)),
    },
    "grid25": {
        "GAN": ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
        "ALI": ((24.1, 0.4), (95.7, 0.6), (0.14, 0.03)),
        "PacGAN2": ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
        "PacGAN4": ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
    },
}


def format_table(mixture: str, metrics: dict[str, float], num_samples: int) -> str:
    """This run's modes / high-quality % / reverse KL beside PacGAN's Table 1 rows."""
    rows = [f"{mixture}: {num_samples} samples     modes   high-quality %   reverse KL"]
    rows.append(f"  this run               {metrics['eval/modes']:5.1f}   {100 * metrics['eval/high_quality']:14.1f}"
                f"   {metrics['eval/reverse_kl']:10.3f}")
    for name, (m, hq, kl) in PACGAN_TABLE1.get(mixture, {}).items():
        rows.append(f"  PacGAN Table 1 {name:<8} {m[0]:4.1f}±{m[1]:.1f}   {hq[0]:9.1f}±{hq[1]:.1f}"
                    f"   {kl[0]:6.2f}±{kl[1]:.2f}")
    return "\n".join(rows)


# ---- as a metric plugin (metrics.base): the training-time evaluation of 2-D runs -----------------------------

from gan_jax.metrics.base import register_metric  # noqa: E402


@register_metric("modes", kinds=("points",), needs=("reference",), records=("modes", "high_quality", "reverse_kl"),
                 protocol="PacGAN's mode metrics of N samples against the mixture's means: modes captured by a "
                          "sample within 3 std, share within 3 std, KL(nearest-mode histogram || uniform)")
def _modes(inputs):
    from gan_jax.data import synthetic

    means, std = synthetic.mixture(inputs.source.split(":", 1)[1])
    return [{"metric": k, "value": v} for k, v in mode_metrics(inputs.samples, means, std).items()]
