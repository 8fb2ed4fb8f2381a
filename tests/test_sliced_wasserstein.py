"""The sliced W1 metric against scipy's 1-D Wasserstein distance, and its place in a 2-D run's evaluation."""

import numpy as np
import pytest
import scipy.stats

from gan_jax.data import synthetic
from gan_jax.metrics import base, sliced_wasserstein


def test_matches_scipy_per_direction():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2)), rng.normal(1.0, 2.0, size=(300, 2))
    directions = sliced_wasserstein.projections(16)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0)
    expected = np.mean([scipy.stats.wasserstein_distance(a @ d, b @ d) for d in directions])
    assert sliced_wasserstein.sliced_w1(a, b, directions) == pytest.approx(expected, rel=1e-12)


def test_shift_is_measured_in_data_units():
    # Every projection of a shift by (dx, 0) moves by dx cos(angle): the mean of |cos| over a half turn, 2 / pi.
    a = np.random.default_rng(1).normal(size=(500, 2))
    directions = sliced_wasserstein.projections(4096)
    assert sliced_wasserstein.sliced_w1(a, a + [3.0, 0.0], directions) == pytest.approx(3.0 * 2 / np.pi, rel=1e-3)


def test_registered_for_2d_runs_and_separates_a_collapsed_generator_from_the_mixture():
    assert "sliced_w1" in base.names_for("points", needs=("reference",))
    means, std = synthetic.mixture("grid25")
    own = [base.compute(["sliced_w1"], base.MetricInputs(synthetic.sample_mixture("grid25", 2500, seed),
                                                         source="synthetic:grid25"))[0] for seed in range(3)]
    assert own[0]["protocol"] == {"num_samples": 2500}
    assert max(r["value"] for r in own) < 0.15  # the mixture against itself: its sampling floor
    # Five modes of the 25 (the middle row), each as tight as the data's: every other mode's mass is missing.
    rng = np.random.default_rng(3)
    row = means[np.abs(means[:, 1]) < 1e-9]
    collapsed = row[np.arange(2500) % 5] + std * rng.normal(size=(2500, 2))
    (bad,) = base.compute(["sliced_w1"], base.MetricInputs(collapsed, source="synthetic:grid25"))
    assert bad["value"] > 5 * max(r["value"] for r in own)  # 0.99 against a floor of 0.11
    (diverged,) = base.compute(["sliced_w1"], base.MetricInputs(np.full((10, 2), np.nan), source="synthetic:grid25"))
    assert diverged["value"] == float("inf")
