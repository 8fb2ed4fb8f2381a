"""Several processes as one job: `jax.distributed` set up from flags or the environment, and the few
things the training loop's processes must agree on.

Every process of a job runs the same program on its own rows of the global batch (see
`ArrayIterator`); process 0 alone writes a run's files. What the processes agree on goes through
the coordination service that `jax.distributed.initialize` starts, not through device programs
(which must not pile up beside the steps, see `core.parallel.DispatchWindow`); only
`agree_max`, read where the loop syncs anyway, is a tiny device collective.

- `initialize(mode, coordinator_address, num_processes, process_id)`: joins the job, when there is one.
- `is_primary()`: whether this process writes (process 0).
- `on_primary(fn)`: `fn` on process 0; an error it raises is raised on every process.
- `broadcast_text`, `barrier`, `agree_max`: process 0's text, a barrier, a maximum over processes.
- `StopVote`: a stop signal on any process, agreed at dispatch boundaries one dispatch late, so every
  process stops after the same dispatch without waiting for the devices.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Callable, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import errors
from gan_jax.errors import ConfigError, GanJaxError

log = logging.getLogger("gan_jax")

T = TypeVar("T")

# Environment variables read when the flags are not given (JAX itself reads JAX_COORDINATOR_ADDRESS).
ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"
# Agreements wait this long for process 0 (an evaluation with FID can take minutes).
TIMEOUT_S = 4 * 3600


def _int_env(env, name: str) -> int | None:
    value = env.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"${name} is {value!r}; it must be an integer.") from None


def detect(coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None,
           env=None) -> str | None:
    """What makes this process part of a multi-process job, or None for a job of one process.

    Flags first, then $JAX_COORDINATOR_ADDRESS / $JAX_NUM_PROCESSES / $JAX_PROCESS_ID, then a
    SLURM step (srun) or an Open MPI launch of more than one task, which `jax.distributed`
    detects by itself. A Cloud TPU slice is not guessed: pass `--distributed=on` there.
    """
    env = os.environ if env is None else env
    if coordinator_address or num_processes is not None or process_id is not None:
        return "flags"
    if env.get(ENV_COORDINATOR) or env.get(ENV_NUM_PROCESSES) or env.get(ENV_PROCESS_ID):
        return "environment"
    slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
    if all(k in env for k in slurm) and (_int_env(env, "SLURM_STEP_NUM_TASKS") or _int_env(env, "SLURM_NTASKS")
                                         or 1) > 1:
        return "SLURM"
    if "OMPI_MCA_orte_hnp_uri" in env and (_int_env(env, "OMPI_COMM_WORLD_SIZE") or 1) > 1:
        return "Open MPI"
    return None


def initialize(mode: str = "auto", coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, env=None) -> bool:
    """Joins this process to its job with `jax.distributed.initialize`; returns whether it did.

    `mode` "auto" joins when `detect` finds a job, "on" always (on a Cloud TPU slice, JAX finds
    the rest by itself), "off" never. Values not given by flags come from the environment or
    from JAX's own cluster detection (SLURM, Open MPI, Cloud TPU). Must run before anything
    touches a JAX device.
    """
    env = os.environ if env is None else env
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"--distributed is {mode!r}; use auto, on or off.")
    how = detect(coordinator_address, num_processes, process_id, env)
    if mode == "off" or (mode == "auto" and how is None):
        return False
    if num_processes is None:
        num_processes = _int_env(env, ENV_NUM_PROCESSES)
    if process_id is None:
        process_id = _int_env(env, ENV_PROCESS_ID)
    coordinator_address = coordinator_address or env.get(ENV_COORDINATOR) or None
    # The loop turns SIGTERM into a checkpoint and a clean stop on every process; JAX's preemption
    # service would install its own SIGTERM handler, which swallows the signal outside the loop.
    jax.config.update("jax_enable_preemption_service", False)
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"Could not join the multi-process job ({how or 'forced with --distributed=on'}): {e}. Give "
            "--coordinator_address HOST:PORT (process 0's address), --num_processes and --process_id, or set "
            f"${ENV_COORDINATOR}, ${ENV_NUM_PROCESSES} and ${ENV_PROCESS_ID}.") from e
    log.info("Process %d of %d (%s), %d local device(s) of %d.", jax.process_index(), jax.process_count(),
             how or "--distributed=on", jax.local_device_count(), jax.device_count())
    return True


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0)."""
    return jax.process_index() == 0


def _client():
    from jax._src import distributed as jax_distributed  # the coordination service's client

    return jax_distributed.global_state.client


_serial = itertools.count()


def _key(name: str) -> str:
    # Every process makes the same calls in the same order, so the counter names the same agreement everywhere.
    return f"gan_jax/{name}/{next(_serial)}"


def broadcast_text(text: str, name: str = "text") -> str:
    """Process 0's `text`, on every process (the argument is ignored elsewhere)."""
    if jax.process_count() == 1:
        return text
    key = _key(name)
    client = _client()
    if client is not None:
        if is_primary():
            client.key_value_set(key, text)
            return text
        return client.blocking_key_value_get(key, TIMEOUT_S * 1000)
    from jax.experimental import multihost_utils  # no coordination service (a TPU job that did not initialize)

    data = np.frombuffer(text.encode(), np.uint8) if is_primary() else np.zeros(0, np.uint8)
    size = int(multihost_utils.broadcast_one_to_all(np.int32(len(data))))
    padded = np.zeros(size, np.uint8)
    padded[:len(data)] = data[:size]
    return bytes(multihost_utils.broadcast_one_to_all(padded)).decode()


def barrier(name: str) -> None:
    """Waits until every process gets here."""
    if jax.process_count() == 1:
        return
    client = _client()
    if client is not None:
        client.wait_at_barrier(_key(name), TIMEOUT_S * 1000)
    else:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(_key(name))


def _error_class(name: str) -> type[GanJaxError]:
    found = getattr(errors, name, None)
    return found if isinstance(found, type) and issubclass(found, GanJaxError) else GanJaxError


def on_primary(fn: Callable[[], T], name: str = "primary") -> T | None:
    """`fn()` on process 0 (its result there, None elsewhere); the other processes wait for it.

    A `GanJaxError` it raises is raised on every process (same class and message), so a refused
    workdir or config stops the whole job at the same point instead of leaving the others waiting.
    Any other exception stops every process too.
    """
    if jax.process_count() == 1:
        return fn()
    result, failure, raised = None, "", None
    if is_primary():
        try:
            result = fn()
        except GanJaxError as e:
            failure, raised = json.dumps([type(e).__name__, str(e)]), e
        except Exception as e:
            failure, raised = json.dumps(["GanJaxError", f"process 0 failed: {type(e).__name__}: {e}"]), e
    failure = broadcast_text(failure, name)
    if raised is not None:
        raise raised
    if failure:
        kind, message = json.loads(failure)
        raise _error_class(kind)(message)
    return result


def agree_max(values) -> np.ndarray:
    """The element-wise maximum of `values` (an int array of one shape everywhere) over the processes.

    Blocks until every process has given its values; for decisions read where the loop syncs anyway.
    """
    values = np.asarray(values, np.int32)
    if jax.process_count() == 1:
        return values
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(values)).max(axis=0)


class StopVote:
    """A stop signal on any process, agreed by all of them at the same dispatch boundary.

    At each boundary every process posts its vote (the signal number it received, 0 for none) to
    the coordination service and reads every process's vote of the previous boundary, which they
    all posted a dispatch ago. All processes read the same votes at the same boundaries, so they
    stop after the same dispatch (one dispatch after the signal); no device work is added, and
    the host waits only for a process that is a whole dispatch behind.
    """

    def __init__(self):
        self._client = _client()
        self._prefix = _key("stop")
        self._round = 0
        if self._client is None:  # no coordination service: a tiny all-device maximum instead
            mesh = Mesh(np.array(jax.devices()), ("processes",))
            self._votes = NamedSharding(mesh, P("processes"))
            self._max = jax.jit(jnp.max, out_shardings=NamedSharding(mesh, P()))
            self._pending = None

    def __call__(self, signum: int) -> int:
        """Casts this process's vote and returns the agreed vote of the previous boundary (0 at the first)."""
        if self._client is None:
            vote = np.full((1,), signum, np.int32)
            votes = jax.make_array_from_callback((jax.device_count(),), self._votes, lambda index: vote)
            previous, self._pending = self._pending, self._max(votes)
            return 0 if previous is None else int(previous.addressable_data(0))
        me, processes, now = jax.process_index(), jax.process_count(), self._round
        self._round += 1
        self._client.key_value_set(f"{self._prefix}/{now}/{me}", str(int(signum)))
        if now == 0:
            return 0
        votes = dict(self._client.key_value_dir_get(f"{self._prefix}/{now - 1}/"))
        agreed = 0
        for p in range(processes):
            key = f"{self._prefix}/{now - 1}/{p}"
            agreed = max(agreed, int(votes[key] if key in votes else
                                     self._client.blocking_key_value_get(key, TIMEOUT_S * 1000)))
        if now >= 3:  # every process has read the votes of three boundaries ago: drop this one's
            self._client.key_value_delete(f"{self._prefix}/{now - 3}/{me}")
        return agreed
