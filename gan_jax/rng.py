"""Named random streams: `stream(key, "bcr", "fake")` instead of magic `fold_in` integers.

A stream's key is `fold_in` of its parent by a stable 31-bit hash of each name (or by the
integer itself, for indexed streams such as the i-th critic update), so adding a stream
never changes the numbers any other stream draws.
"""

from __future__ import annotations

import zlib

import jax


def stream_id(name: str) -> int:
    """The integer folded in for the stream `name`."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def stream(key: jax.Array, *names) -> jax.Array:
    """The key of the sub-stream `names[0] / names[1] / ...` of `key`; a name is a string, or an
    integer (a Python int or an integer array, folded in as it is) for indexed streams."""
    for name in names:
        key = jax.random.fold_in(key, stream_id(name) if isinstance(name, str) else name)
    return key
