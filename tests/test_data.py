"""The batch iterator: deterministic by seed, resumable by position, every example once per epoch."""

import numpy as np
import pytest

from gan_jax.config import default_config
from gan_jax.data import ArrayIterator, DataError, get_dataset
from gan_jax.data.prefetch import Prefetcher


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


@pytest.mark.parametrize("hosts", [2, 4])
def test_hosts_split_every_global_batch(hosts):
    """Host i reads rows [i B/P, (i+1) B/P) of each global batch; together, exactly one host's stream."""
    arrays = {"x": np.arange(30) * 10, "label": np.arange(30)}
    one = ArrayIterator(arrays, batch_size=8, seed=5)
    parts = [ArrayIterator(arrays, batch_size=8, seed=5, process_index=i, process_count=hosts) for i in range(hosts)]
    expected = one.next_batches(7)  # crosses epoch boundaries
    got = [p.next_batches(7) for p in parts]
    assert got[0]["x"].shape == (7, 8 // hosts)
    np.testing.assert_array_equal(np.concatenate([g["x"] for g in got], axis=1), expected["x"])
    np.testing.assert_array_equal(np.concatenate([g["label"] for g in got], axis=1) * 10, expected["x"])
    assert all(p.position == one.position == 7 for p in parts)


def test_batch_not_divisible_by_hosts():
    with pytest.raises(DataError, match="not divisible by the 3 hosts"):
        ArrayIterator({"x": np.arange(30)}, batch_size=8, seed=0, process_index=0, process_count=3)


@pytest.mark.parametrize("enabled", [True, False])
def test_prefetcher_gives_the_iterators_batches(enabled):
    """Whatever it guessed (right, wrong, or across a seek), the prefetcher returns batches_at(position)."""
    arrays = {"x": np.arange(40)}
    it = ArrayIterator(arrays, batch_size=4, seed=7)
    ref = ArrayIterator(arrays, batch_size=4, seed=7)
    placed = []
    prefetcher = Prefetcher(it, lambda b: placed.append(b) or {k: v + 1000 for k, v in b.items()}, enabled)
    plan = [(3, 3), (3, 3), (2, 2), (2, 0)]  # (count, guess of the next count); the second guess is wrong
    for count, upcoming in plan:
        position = it.position
        batch = prefetcher.next(count, upcoming)
        np.testing.assert_array_equal(batch["x"], ref.batches_at(position, count)["x"] + 1000)
    assert it.position == 10
    it.seek(4)  # a rollback: the pending load (if any) is for another position
    batch = prefetcher.next(2, 2)
    np.testing.assert_array_equal(batch["x"], ref.batches_at(4, 2)["x"] + 1000)
    assert it.position == 6
    prefetcher.close()
    assert (prefetcher.hits, prefetcher.misses) == ((2, 3) if enabled else (0, 5))


def _data(source, num_train=1000):
    c = default_config().data
    c.source, c.num_train = source, num_train
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
    from gan_jax.loop.actions import crossed

    assert crossed(0, 50, 50) and not crossed(0, 49, 50) and crossed(49, 51, 50) and not crossed(50, 99, 50)
    assert not crossed(0, 100, 0)  # a period of 0: never
