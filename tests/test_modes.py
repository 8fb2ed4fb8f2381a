"""Mode metrics on hand-built sample sets."""

import numpy as np

from gan_jax.data import synthetic
from gan_jax.metrics import modes


def test_mixture_definitions():
    means, std = synthetic.mixture("ring8")
    assert std == 0.01 and means.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 1.0)
    np.testing.assert_allclose(means[2], [0.0, 1.0], atol=1e-12)
    means, std = synthetic.mixture("grid25")
    assert std == 0.05 and means.shape == (25, 2)
    assert sorted(set(means[:, 0])) == [-4, -2, 0, 2, 4]
    assert len({tuple(m) for m in means}) == 25


def test_samples_exactly_on_every_mean():
    means, std = synthetic.mixture("grid25")
    m = modes.mode_metrics(np.repeat(means, 4, axis=0), means, std)
    assert m == {"modes": 25.0, "high_quality": 1.0, "reverse_kl": 0.0}


def test_half_the_modes_and_a_far_outlier():
    means, std = synthetic.mixture("ring8")
    # 2 samples on each of modes 0..3, 2 samples 5 std from mode 4 (nearest, but not high quality).
    samples = np.concatenate([np.repeat(means[:4], 2, axis=0), means[4] + np.array([[5 * std, 0.0]] * 2)])
    m = modes.mode_metrics(samples, means, std)
    assert m["modes"] == 4
    np.testing.assert_allclose(m["high_quality"], 8 / 10)
    # p = [.2, .2, .2, .2, .2, 0, 0, 0]; KL(p || 1/8) = sum .2 log(.2 * 8) = log 1.6
    np.testing.assert_allclose(m["reverse_kl"], np.log(1.6))


def test_mahalanobis_threshold_is_three_std():
    means, std = synthetic.mixture("grid25")
    inside = means[:1] + [[2.99 * std, 0.0]]
    outside = means[:1] + [[3.01 * std, 0.0]]
    assert modes.mode_metrics(inside, means, std)["high_quality"] == 1.0
    assert modes.mode_metrics(outside, means, std)["high_quality"] == 0.0


def test_non_finite_samples_count_as_low_quality():
    means, std = synthetic.mixture("ring8")
    samples = np.concatenate([means, [[np.nan, 0.0]]])
    m = modes.mode_metrics(samples, means, std)
    assert m["modes"] == 8
    np.testing.assert_allclose(m["high_quality"], 8 / 9)


def test_sampled_mixture_statistics():
    x = synthetic.sample_mixture("grid25", 50_000, seed=3)
    means, std = synthetic.mixture("grid25")
    idx, dist = modes.nearest_mode(x, means)
    counts = np.bincount(idx, minlength=25)
    assert counts.min() > 1800 and counts.max() < 2200  # 2000 expected per mode
    np.testing.assert_allclose(np.std(x - means[idx]), std, rtol=0.02)
    np.testing.assert_array_equal(x, synthetic.sample_mixture("grid25", 50_000, seed=3))
