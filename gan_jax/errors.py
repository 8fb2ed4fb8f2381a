"""One base class for every error a user can fix by changing a command, a config or a file.

`gan-jax` prints the message of any `GanJaxError` and exits with code 2; each subclass's
message names what is wrong and what to do. A diverged run is not a user error: it raises
`DivergenceError` (a `FloatingPointError`), exit code 1.
"""

from __future__ import annotations


class GanJaxError(Exception):
    """A problem with the request (config, data, workdir, checkpoint), not a bug; the message says the fix."""


class ConfigError(GanJaxError, ValueError):
    """A config that cannot be run, with a message that says which key and how to fix it."""


class DataError(GanJaxError, ValueError):
    """A data source that cannot be used, with a message that names the source and the fix."""


class CheckpointError(GanJaxError, RuntimeError):
    """No checkpoint of a workdir that has some can be restored."""


class WorkdirLockedError(GanJaxError, RuntimeError):
    """Another live run holds the workdir (or sweep directory)."""


class DivergenceError(FloatingPointError):
    """A loss or gradient became non-finite; the message names the step and the quantity."""
