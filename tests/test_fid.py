"""FID, KID, IS, precision/recall and density/coverage against scipy, brute force and hand values."""

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special
import scipy.stats

from gan_jax.metrics import fid


def _random_cov(rng, d, n):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    return np.cov(x, rowvar=False)


@pytest.mark.parametrize("seed", range(5))
def test_frechet_distance_matches_scipy_sqrtm(seed):
    rng = np.random.default_rng(seed)
    d = 16
    s1, s2 = _random_cov(rng, d, 200), _random_cov(rng, d, 200)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    np.testing.assert_allclose(fid.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-9)


def test_frechet_distance_singular_covariances_hand_value():
    # Diagonal (commuting) covariances with zeros on the diagonal: tr sqrt(S1 S2) = sum sqrt(a b).
    a = np.array([4.0, 0.0, 1.0, 0.0, 9.0])
    b = np.array([1.0, 3.0, 0.0, 0.0, 4.0])
    mu1, mu2 = np.zeros(5), np.arange(5.0)
    expected = np.sum(mu2**2) + np.sum(a + b - 2 * np.sqrt(a * b))
    np.testing.assert_allclose(fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-12)


def test_fid_of_one_dimensional_gaussians():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    np.testing.assert_allclose(fid.frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]), 9.0 + 1.0)


def test_fid_few_samples_is_finite_and_identical_sets_give_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 64))  # N < d: singular covariance
    assert fid.fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    value = fid.fid_from_features(x, rng.standard_normal((10, 64)) + 1.0)
    assert np.isfinite(value) and value > 0


def _mmd2_unbiased_loops(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_unbiased_mmd_by_loops():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((25, 6)), rng.standard_normal((25, 6)) * 1.5 + 0.3
    # One subset of the full size is a permutation of each set, which MMD does not see.
    mean, std = fid.kid(x, y, num_subsets=1, subset_size=25)
    np.testing.assert_allclose(mean, _mmd2_unbiased_loops(x, y), rtol=1e-10)
    assert std == 0.0


def test_kid_near_zero_for_the_same_distribution():
    rng = np.random.default_rng(2)
    same, _ = fid.kid(rng.standard_normal((500, 8)), rng.standard_normal((500, 8)), num_subsets=20, subset_size=200)
    shifted, _ = fid.kid(rng.standard_normal((500, 8)), rng.standard_normal((500, 8)) + 1, num_subsets=20,
                         subset_size=200)
    assert abs(same) < 0.01 < shifted


def test_inception_score_hand_values():
    # Confident, class-balanced predictions over 10 classes in each split: IS = 10.
    logits = 100.0 * np.eye(10)[np.arange(200) % 10]
    mean, std = fid.inception_score(logits, num_splits=10)
    np.testing.assert_allclose(mean, 10.0, rtol=1e-6)
    assert std < 1e-6
    # Identical predictions: KL(p(y|x) || p(y)) = 0, IS = 1.
    mean, _ = fid.inception_score(np.tile(np.random.default_rng(0).standard_normal(7), (50, 1)), num_splits=10)
    np.testing.assert_allclose(mean, 1.0, rtol=1e-12)


def test_inception_score_matches_scipy_entropy():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((100, 12)) * 3
    p = scipy.special.softmax(logits, axis=1)
    expected = []
    for part in np.array_split(p, 5):
        marginal = part.mean(axis=0)
        expected.append(np.exp(np.mean([scipy.stats.entropy(row, marginal) for row in part])))
    mean, std = fid.inception_score(logits, num_splits=5)
    np.testing.assert_allclose([mean, std], [np.mean(expected), np.std(expected)], rtol=1e-10)


def _brute_force_pr_dc(real, fake, k):
    dist = scipy.spatial.distance.cdist
    r_real = np.sort(dist(real, real), axis=1)[:, k]
    r_fake = np.sort(dist(fake, fake), axis=1)[:, k]
    d_fr = dist(fake, real)
    precision = np.mean([any(d_fr[i, j] <= r_real[j] for j in range(len(real))) for i in range(len(fake))])
    recall = np.mean([any(d_fr[i, j] <= r_fake[i] for i in range(len(fake))) for j in range(len(real))])
    density = sum((d_fr[i] <= r_real).sum() for i in range(len(fake))) / (k * len(fake))
    coverage = np.mean([(d_fr[:, j] <= r_real[j]).any() for j in range(len(real))])
    return precision, recall, density, coverage


def test_precision_recall_density_coverage_brute_force():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((60, 5))
    fake = rng.standard_normal((50, 5)) * 0.7 + 0.5
    p, r, d, c = _brute_force_pr_dc(real, fake, k=3)
    pr = fid.precision_recall(real, fake, k=3)
    dc = fid.density_coverage(real, fake, k=3)
    np.testing.assert_allclose([pr["precision"], pr["recall"], dc["density"], dc["coverage"]], [p, r, d, c],
                               rtol=1e-12)
    assert 0 < p < 1 and 0 < r < 1


def test_precision_recall_extremes():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((40, 3))
    same = fid.precision_recall(real, real.copy())
    assert same == {"precision": 1.0, "recall": 1.0}
    far = fid.precision_recall(real, real + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0}
    dc = fid.density_coverage(real, real.copy())
    assert dc["coverage"] == 1.0 and dc["density"] >= 1.0
