"""Classifier metrics: training, Orbax round trip, label statistics and Stacked MNIST modes, by hand."""

import pathlib

import numpy as np
import pytest
import scipy.stats

from gan_jax.data import stacked as stacked_lib
from gan_jax.metrics import classifier, suite


def _toy_digits(num, seed=0):
    """10 'digit' classes: class k is a bright 7x7 block at one of 10 positions, plus noise (uint8)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, num)
    images = rng.integers(0, 60, (num, 28, 28, 1))
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 4)
        images[i, 7 * r:7 * r + 7, 7 * c:7 * c + 7, 0] = 255
    return images.astype(np.uint8), labels


@pytest.fixture(scope="module")
def trained():
    x, y = _toy_digits(2000)
    params = classifier.train_classifier(x, y, num_steps=100, batch_size=64, seed=0)
    return classifier.MNISTClassifier(params, {"name": "toy_cnn", "test_accuracy": 1.0})


@pytest.mark.slow
def test_trains_and_round_trips_through_orbax(trained, tmp_path):
    x, y = _toy_digits(300, seed=1)
    assert trained.accuracy(x, y) > 0.97
    trained.save(tmp_path / "clf")
    loaded = classifier.MNISTClassifier.load(tmp_path / "clf")
    np.testing.assert_array_equal(loaded.predict(x), trained.predict(x))
    np.testing.assert_allclose(loaded.features(x), trained.features(x), rtol=1e-6)
    assert loaded.meta["name"] == "toy_cnn" and loaded.features(x).shape == (300, 128)
    with pytest.raises(FileNotFoundError, match="gan-jax train-classifier"):
        classifier.MNISTClassifier.load(tmp_path / "nothing")


def test_stacked_modes_read_each_channel(trained):
    x, y = _toy_digits(500, seed=2)
    stacked, modes = stacked_lib.stack_digits(x, y, 200, seed=3)
    assert stacked.shape == (200, 28, 28, 3) and stacked.dtype == np.uint8
    # Each channel is one of the source digits, and the mode is 100 l_R + 10 l_G + l_B.
    for c in range(3):
        matches = [np.flatnonzero((x[:, :, :, 0] == stacked[i, :, :, c]).all(axis=(1, 2))) for i in range(5)]
        assert all(len(m) >= 1 for m in matches)
    assert modes.min() >= 0 and modes.max() < 1000
    predicted = trained.predict_stacked(stacked.astype(np.float32) / 127.5 - 1.0)
    assert np.mean(predicted == modes) > 0.9


def test_stacked_mnist_modes_and_kl_by_hand():
    # 4 modes hit, with shares 1/2, 1/4, 1/8, 1/8: KL(p || U_1000) = sum p log(1000 p).
    modes = np.array([7] * 4 + [42] * 2 + [999] + [0])
    p = np.array([0.5, 0.25, 0.125, 0.125])
    result = classifier.stacked_mnist_modes(modes)
    assert result["modes"] == 4
    np.testing.assert_allclose(result["kl"], np.sum(p * np.log(1000 * p)))
    everything = classifier.stacked_mnist_modes(np.arange(1000).repeat(26))
    assert everything == {"modes": 1000.0, "kl": pytest.approx(0.0, abs=1e-12),
                          "kl_digits": pytest.approx(0.0, abs=1e-12), "kl_dependence": pytest.approx(0.0, abs=1e-12)}


def test_stacked_mnist_kl_splits_into_digits_and_dependence_by_hand():
    # Red only 0 or 1, green and blue uniform and independent: 200 modes equally often. Each channel's
    # KL to uniform over 10 is log(10 / 2) for red and 0 for the others; the channels are independent.
    r, g, b = np.meshgrid(np.arange(2), np.arange(10), np.arange(10), indexing="ij")
    independent = classifier.stacked_mnist_modes((100 * r + 10 * g + b).ravel())
    np.testing.assert_allclose([independent["kl"], independent["kl_digits"], independent["kl_dependence"]],
                               [np.log(5), np.log(5), 0.0], atol=1e-12)
    # The same digit in all three channels (000, 111, ..., 999): every channel is uniform, yet only 10 of
    # the 1000 modes occur; the KL, log(1000 / 10), is all dependence: 3 H(digit) - H(mode) = 2 log 10.
    same = classifier.stacked_mnist_modes(111 * np.arange(10).repeat(3))
    np.testing.assert_allclose([same["kl"], same["kl_digits"], same["kl_dependence"]],
                               [np.log(100), 0.0, 2 * np.log(10)], atol=1e-12)
    # Any distribution: scipy's entropies give the same split.
    modes = np.random.default_rng(0).choice(1000, size=5000, p=np.random.default_rng(1).dirichlet(np.ones(1000)))
    result = classifier.stacked_mnist_modes(modes)
    entropy = lambda x, k: scipy.stats.entropy(np.bincount(x, minlength=k))
    digits = (modes // 100, modes // 10 % 10, modes % 10)
    np.testing.assert_allclose(result["kl"], np.log(1000) - entropy(modes, 1000), atol=1e-10)
    np.testing.assert_allclose(result["kl_digits"], sum(np.log(10) - entropy(d, 10) for d in digits), atol=1e-10)
    np.testing.assert_allclose(result["kl_dependence"], sum(entropy(d, 10) for d in digits) - entropy(modes, 1000),
                               atol=1e-10)


def test_stacked_mnist_kl_of_a_uniform_generator_is_the_plug_in_bias():
    # The docstring's floor: N uniform draws over 1000 modes score about (1000 - 1) / (2 N), not 0.
    rng = np.random.default_rng(0)
    kls = [classifier.stacked_mnist_modes(rng.integers(0, 1000, 26_000))["kl"] for _ in range(20)]
    np.testing.assert_allclose(np.mean(kls), 999 / (2 * 26_000), rtol=0.05)


def test_label_statistics_by_hand():
    balanced = classifier.label_statistics(np.arange(10).repeat(5))
    np.testing.assert_allclose(balanced["entropy"], np.log(10))
    np.testing.assert_allclose(balanced["kl_uniform"], 0.0, atol=1e-12)
    assert balanced["classes_hit"] == 10 and balanced["max_class_fraction"] == 0.1
    collapsed = classifier.label_statistics(np.array([3, 3, 3, 8]))
    np.testing.assert_allclose(collapsed["entropy"], -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    assert collapsed["classes_hit"] == 2 and collapsed["max_class_fraction"] == 0.75


def test_confidence_statistics_by_hand():
    probabilities = np.array([[0.95, 0.05], [0.5, 0.5], [0.1, 0.9], [0.2, 0.8]])
    result = classifier.confidence_statistics(probabilities)
    assert result["confident"] == 0.5  # 0.95 and 0.9 reach the 0.9 threshold; 0.5 and 0.8 do not
    np.testing.assert_allclose(result["mean_top_probability"], (0.95 + 0.5 + 0.9 + 0.8) / 4)


def test_probabilities_are_the_softmax_of_the_logits(trained):
    x, _ = _toy_digits(20, seed=5)
    logits = trained._run(x)[1]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(trained.probabilities(x), expected, rtol=1e-9)
    np.testing.assert_array_equal(np.argmax(trained.probabilities(x), axis=1), trained.predict(x))


def test_classifier_records_fid_mnist_and_labels(trained, tmp_path):
    x, y = _toy_digits(400, seed=4)
    real = x.astype(np.float32) / 127.5 - 1.0
    from gan_jax.metrics import fid

    # Samples of only class 0: label entropy 0; FID-MNIST far from the balanced real set.
    only_zero = real[y == 0][:40]
    records = suite.compute(["fid_mnist", "labels"], suite.MetricInputs(only_zero, real, 200, "toy", "test",
                                                                        classifier=trained, cache_dir=tmp_path))
    by_name = {r["metric"]: r for r in records}
    assert by_name["labels/classes_hit"]["value"] == 1 and by_name["labels/entropy"]["value"] == 0
    top = trained.probabilities(only_zero).max(axis=1)
    assert by_name["labels/confident"]["value"] == np.mean(top >= 0.9)
    from gan_jax.metrics import reference

    expected = fid.fid_from_features(trained.features(real[reference.select(400, 200)]), trained.features(only_zero))
    np.testing.assert_allclose(by_name["fid_mnist"]["value"], expected, rtol=1e-9)
    assert by_name["fid_mnist"]["protocol"] == {"num_samples": 40, "num_real": 200, "dataset": "toy",
                                                "split": "test", "network": trained.name}
    with pytest.raises(suite.MetricError, match="3-channel"):
        suite.compute(["stacked_mnist"], suite.MetricInputs(only_zero, real, 200, "toy", "test", classifier=trained))


def test_parse_metrics():
    assert suite.parse_metrics("fid, kid,pr") == ["fid", "kid", "pr"]
    with pytest.raises(suite.MetricError, match="fdi"):
        suite.parse_metrics("fdi")
    with pytest.raises(suite.MetricError, match="modes do.*not apply to image data"):
        suite.parse_metrics("fid,modes", kind="image")


def test_registry_declares_kinds_needs_and_records():
    assert set(suite.names_for("image")) >= {"fid", "kid", "is", "pr", "dc", "fid_mnist", "labels", "stacked_mnist"}
    assert "modes" in suite.names_for("points", needs=("reference",)) and "fid" not in suite.names_for("points")
    assert suite.needed(["fid", "labels"]) == {"inception", "reference", "classifier"}
    assert suite.METRICS.get("pr").writes("recall") and not suite.METRICS.get("pr").writes("pr")
    assert suite.METRICS.get("labels").writes("labels/entropy")
    assert "fid " in suite.describe() and "Frechet distance" in suite.describe()


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
def test_stacked_mnist_source_and_experiment():
    import tensorflow_datasets as tfds

    from gan_jax import config as config_lib
    from gan_jax.data import get_dataset

    config = config_lib.load_config(str(pathlib.Path(__file__).resolve().parent.parent / "experiments" / "stacked_mnist_dcgan.py") + ":data.num_train=50")
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        iterator, spec = get_dataset(config.data, batch_size=10, seed=0)
        batch = next(iterator)
    assert spec.shape == (28, 28, 3) and spec.num_classes == 1000 and spec.num_examples == 50
    assert batch["x"].shape == (10, 28, 28, 3) and batch["x"].min() >= -1 and batch["x"].max() <= 1
    assert batch["label"].min() >= 0 and batch["label"].max() < 1000


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
def test_train_classifier_is_a_gan_jax_subcommand(tmp_path, capsys):
    """An installed gan-jax has no scripts/: the CNN the metrics need trains from the command itself."""
    import tensorflow_datasets as tfds

    from gan_jax.metrics.classifier import MNISTClassifier
    from gan_jax.tools.cli import main

    with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
        assert main(["train-classifier", "--steps", "3", "--out", str(tmp_path / "cnn")]) == 0
    assert "MNIST test accuracy" in capsys.readouterr().out
    model = MNISTClassifier.load(tmp_path / "cnn")
    assert model.meta["train_steps"] == 3 and model.probabilities(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_classes_confident_counts_only_recognised_digits():
    from gan_jax.metrics.classifier import confidence_statistics, label_statistics

    # Noise-like outputs: every sample's argmax somewhere, none sure: all 10 classes "hit", none recognised.
    noise = np.full((20, 10), 0.05)
    noise[np.arange(20), np.arange(20) % 10] = 0.55
    assert label_statistics(np.argmax(noise, axis=1))["classes_hit"] == 10
    assert confidence_statistics(noise) == {"confident": 0.0, "mean_top_probability": pytest.approx(0.55),
                                            "classes_confident": 0.0}
    # Two digits recognised (p 0.95), the rest unsure.
    mixed = noise.copy()
    mixed[0] = mixed[1] = np.eye(10)[3] * 0.95 + 0.05 / 9 * (1 - np.eye(10)[3])
    mixed[2] = np.eye(10)[7] * 0.95 + 0.05 / 9 * (1 - np.eye(10)[7])
    stats = confidence_statistics(mixed)
    assert stats["classes_confident"] == 2 and stats["confident"] == pytest.approx(3 / 20)
