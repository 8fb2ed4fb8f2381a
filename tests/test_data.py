"""The batch iterator: deterministic by seed, resumable by position, every example once per epoch."""

import ml_collections
import numpy as np
import pytest

from gan_jax.data import ArrayIterator, DataError, get_dataset


def test_each_epoch_is_a_permutation():
    it = ArrayIterator({"x": np.arange(10)}, batch_size=5, seed=0)
    epoch = np.concatenate([next(it)["x"], next(it)["x"]])
    assert sorted(epoch) == list(range(10))


def test_batches_cross_epoch_boundaries_without_dropping():
    it = ArrayIterator({"x": np.arange(10)}, batch_size=4, seed=1)
    seen = np.concatenate([next(it)["x"] for _ in range(5)])  # 20 = two epochs
    assert sorted(seen) == sorted(list(range(10)) * 2)


def test_seek_reproduces_the_stream():
    a = ArrayIterator({"x": np.arange(100), "label": np.arange(100) % 7}, batch_size=8, seed=3)
    stream = [next(a) for _ in range(30)]
    b = ArrayIterator({"x": np.arange(100), "label": np.arange(100) % 7}, batch_size=8, seed=3)
    b.seek(17)
    for expected in stream[17:]:
        got = next(b)
        np.testing.assert_array_equal(got["x"], expected["x"])
        np.testing.assert_array_equal(got["label"], expected["x"] % 7)


def test_next_batches_stacks_consecutive_batches():
    a = ArrayIterator({"x": np.arange(50)}, batch_size=5, seed=2)
    b = ArrayIterator({"x": np.arange(50)}, batch_size=5, seed=2)
    stacked = a.next_batches(4)["x"]
    assert stacked.shape == (4, 5) and a.position == 4
    np.testing.assert_array_equal(stacked, np.stack([next(b)["x"] for _ in range(4)]))


def _data(source, num_train=1000):
    c = ml_collections.ConfigDict(dict(source=source, split="train", data_dir=None, manual_dir=None,
                                       num_train=num_train))
    return c


def test_synthetic_sources():
    it, spec = get_dataset(_data("synthetic:grid25"), batch_size=50, seed=0)
    assert spec.shape == (2,) and spec.kind == "points" and spec.num_examples == 1000
    assert next(it)["x"].shape == (50, 2) and next(it)["x"].dtype == np.float32


def test_unknown_source_names_the_fix():
    with pytest.raises(DataError, match="synthetic:grid25"):
        get_dataset(_data("synthetic:grid52"), batch_size=10, seed=0)
    with pytest.raises(DataError, match="data.source"):
        get_dataset(_data("imagenet"), batch_size=10, seed=0)


def test_batch_larger_than_dataset():
    with pytest.raises(DataError, match="batch_size 200 is larger than the 100 examples"):
        get_dataset(_data("synthetic:ring8", num_train=100), batch_size=200, seed=0)


def test_crossed():
    from gan_jax.train import crossed

    assert crossed(0, 50, 50) and not crossed(0, 49, 50) and crossed(49, 51, 50) and not crossed(50, 99, 50)
