"""What keeps a run safe to stop, kill, resume and share: signals, the workdir lock, divergence.

- `StopRequest`: SIGTERM / SIGINT ask the loop to finish its dispatch, save and exit cleanly.
- `WorkdirLock`: one run per workdir; the lock of a killed run does not block the next one.
- `DivergenceWatch`: finds non-finite metrics, read only when the loop syncs anyway.
- `scale_learning_rates`: the learning rates live in the optimizer state, so a rollback can lower them.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import pathlib
import signal
import socket
import threading
import time

import jax
import jax.numpy as jnp

from gan_jax.core import optim
from gan_jax.errors import DivergenceError, WorkdirLockedError  # noqa: E402,F401  (raised here)


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag that the loop reads after each dispatch.

    A second signal restores the previous handlers and re-delivers itself, so an impatient
    user (or a scheduler's follow-up SIGKILL) still stops the process at once.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum, frame):
        del frame
        if self.signum is not None:
            self.restore()
            signal.raise_signal(signum)
            return
        self.signum = signum
        # os.write, not logging: a handler may interrupt code that holds the logging lock. A reader that is gone
        # (`| tee` ends with the same Ctrl-C) must not turn the message into an exception before the save.
        try:
            os.write(2, f"\ngan_jax: {signal.Signals(signum).name} received: finishing the current dispatch and "
                        "saving a checkpoint (send it again to stop at once).\n".encode())
        except OSError:
            pass

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def __exit__(self, *exc) -> None:
        self.restore()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkdirLock:
    """An exclusive lock on `WORKDIR/lock`, holding the owner's pid and host.

    The lock is an `flock` on the file, which the kernel drops when its process dies, so a
    killed run never blocks the next one. Where the filesystem has no `flock`, a lock whose
    pid is no longer running on this host counts as stale and is taken over.
    """

    def __init__(self, workdir: str | pathlib.Path):
        self.path = pathlib.Path(workdir) / "lock"
        self._fd: int | None = None
        self.stale_owner: dict | None = None  # what a dead previous owner left, if anything

    @staticmethod
    def _read(fd: int) -> dict:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            return json.loads(os.read(fd, 4096).decode() or "{}")
        except ValueError:
            return {}

    def _refuse(self, owner: dict) -> WorkdirLockedError:
        who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, since {owner.get('started', '?')}"
        return WorkdirLockedError(
            f"{self.path.parent} is in use by another gan_jax run or sweep ({who}). Wait for it to finish, stop "
            "it (SIGTERM saves a checkpoint), or use another --workdir.")

    def acquire(self) -> "WorkdirLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._read(fd)
                os.close(fd)
                raise self._refuse(owner) from None
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
                owner = self._read(fd)  # no flock here: judge by the recorded pid
                if owner.get("host") == socket.gethostname() and _pid_alive(int(owner.get("pid", -1))) \
                        and int(owner.get("pid", -1)) != os.getpid():
                    os.close(fd)
                    raise self._refuse(owner) from None
            # A finishing run unlinks the file; if it did so between our open and flock, retry.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        owner = self._read(fd)
        if owner:
            self.stale_owner = owner
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _finite_per_run(metrics: dict, num_runs: int) -> jax.Array:
    """[metrics, runs] booleans: every value of each metric finite, per run (a single run: 1)."""
    return jnp.stack([jnp.all(jnp.isfinite(metrics[k].reshape(num_runs, -1)), axis=1) for k in sorted(metrics)])


@functools.partial(jax.jit, static_argnums=1)
def _watch_start(metrics: dict, num_runs: int) -> tuple[jax.Array, jax.Array]:
    # Computed from the metrics (times zero) so that it lives on their devices: one, or a mesh.
    zeros = jnp.zeros_like(_finite_per_run(metrics, num_runs), jnp.int32)
    return zeros - 1, zeros[0, 0]


@functools.partial(jax.jit, static_argnums=3)
def _watch_update(first: jax.Array, count: jax.Array, metrics: dict, num_runs: int) -> tuple[jax.Array, jax.Array]:
    finite = _finite_per_run(metrics, num_runs)
    return jnp.where((first < 0) & ~finite, count, first), count + 1


class DivergenceWatch:
    """Finds the first dispatch in which each metric was non-finite, per run, without a host sync.

    A dispatch's metrics are means over its steps, so one non-finite step makes them
    non-finite. `observe` queues one tiny device op per dispatch (it records the index of
    the first bad dispatch per metric and run); `pull` fetches that array, and is called only
    where the loop syncs anyway (logging, evaluation, checkpoints). A stack of runs (metrics
    with a leading runs axis) is watched run by run.
    """

    def __init__(self, num_runs: int = 1):
        self.num_runs = num_runs
        self.reset()

    def observe(self, metrics: dict, end_step: int) -> None:
        if self._first is None:
            self._names = sorted(metrics)
            self._first, self._count = _watch_start(metrics, self.num_runs)
        self._first, self._count = _watch_update(self._first, self._count, metrics, self.num_runs)
        self._end_steps.append(end_step)

    def pull(self) -> list[dict[str, int]]:
        """Per run, {metric: end step of the first dispatch where it was non-finite}, for those that were."""
        if self._first is None:
            return [{} for _ in range(self.num_runs)]
        first = jax.device_get(self._first)
        bad = [{name: self._end_steps[int(first[m, r])] for m, name in enumerate(self._names) if first[m, r] >= 0}
               for r in range(self.num_runs)]
        if not any(bad):
            self.reset()  # all clear so far: start a new record, keeping the step list short
        return bad

    def reset(self) -> None:
        self._first = self._count = None
        self._names: list[str] = []
        self._end_steps: list[int] = []


def describe_divergence(bad: dict[str, int], steps_per_dispatch: int) -> tuple[int, str]:
    """(first bad step, "non-finite train/g_loss, train/g_grad_norm at step(s) ...")."""
    end = min(bad.values())
    names = sorted(f"train/{k}" for k, v in bad.items() if v == end)
    start = ((end - 1) // steps_per_dispatch) * steps_per_dispatch + 1
    where = f"step {end}" if start == end else f"steps {start}-{end} (one dispatch of {steps_per_dispatch} steps)"
    return end, f"non-finite {', '.join(names)} at {where}"


def scale_learning_rates(opt_state, factor: float):
    """The optimizer state with every injected `learning_rate` multiplied by `factor`."""
    return optim.map_hyperparam(opt_state, "learning_rate", lambda lr: lr * factor)


def learning_rates(opt_state) -> list[float]:
    """Every injected `learning_rate` in an optimizer state (for messages and tests)."""
    return optim.hyperparam_values(opt_state, "learning_rate")
