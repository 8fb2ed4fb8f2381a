"""Prepares the next chunk of batches (gather, transform, device placement) while the current one trains.

`Prefetcher.next(count, next_count)` returns the batches at the iterator's position, moves it on,
and starts loading the `next_count` batches after them on a background thread. The batch at
a position is a pure function of the position, so a guess that turns out wrong (the last,
shorter chunk; a rollback that seeks the iterator) only costs a synchronous load, never a
different batch.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Prefetcher:
    """One chunk ahead of the train loop; `place` moves a host chunk to the devices."""

    def __init__(self, iterator, place: Callable[[dict], Any], enabled: bool = True):
        self.iterator = iterator
        self.place = place
        self.enabled = enabled
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gan_jax-prefetch") if enabled else None
        self._pending: tuple[int, int, Future] | None = None
        self.hits = self.misses = 0
        self.wait_sec = 0.0  # time `next` spent loading or waiting for a load (the loop stalled on data)

    def _load(self, position: int, count: int):
        return self.place(self.iterator.batches_at(position, count))

    def _take_pending(self, position: int, count: int):
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        at, n, future = pending
        batch = future.result()  # also waits out a wrong guess, so loads never overlap
        return batch if (at, n) == (position, count) else None

    def next(self, count: int, next_count: int = 0):
        """The `count` batches at the iterator's position; starts loading `next_count` more."""
        position = self.iterator.position
        start = time.perf_counter()
        batch = self._take_pending(position, count)
        if batch is None:
            self.misses += 1
            batch = self._load(position, count)
        else:
            self.hits += 1
        self.wait_sec += time.perf_counter() - start
        self.iterator.position = position + count
        if self.enabled and next_count > 0:
            self._pending = (position + count, next_count,
                             self._pool.submit(self._load, position + count, next_count))
        return batch

    def close(self) -> None:
        if self._pending is not None:
            self._pending[2].cancel()
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
