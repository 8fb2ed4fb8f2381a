"""The ways to run a step: `none` (one device), `pmap`, `jit` over a sharded mesh, and a stack of
runs under `vmap` (`StackedRunner`), its runs sharded over a mesh of the devices.

All of them wrap the same pure `train_step`; a runner moves the state and the host batches
([k, n_critic, B, ...] numpy arrays; [R, k, n_critic, B, ...] for a stack of R runs) to where its
compiled step wants them, and splits what comes back into one part per run (`unstack`,
`run_metrics`), so the training loop drives a single run and a stack alike.

With several hosts (`jax.process_count() > 1`, after `jax.distributed.initialize`), every
host runs the same program on its own rows of the global batch ([k, n_critic, B / hosts, ...],
see `ArrayIterator`): `pmap` and `jit` then span all hosts' devices, and `get_state` and the
metrics come back as this host's copy of the replicated values. A stack spans them too: each
host holds its runs' shards, and `get_state` gathers every run to every host.
"""

from __future__ import annotations

import collections
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.core.step import fuse_steps
from gan_jax.errors import ConfigError

AXIS_NAME = "batch"  # pmap's axis
MESH_AXIS = "data"  # jit's mesh axis

StepBuilder = Callable[[str | None, int], Callable]  # (axis_name, num_devices) -> train_step


class DispatchWindow:
    """At most `size` dispatches waiting on the devices: adding one more first waits for the oldest.

    Two keep the devices busy while the host prepares the next one. The bound matters on
    XLA:CPU: with more than 32 computations queued on a device, the launches of multi-device
    programs can take that device's slots out of order and deadlock; the collective's
    rendezvous then aborts the process after 40 s ("Fatal Python error: Aborted"). A loop that
    dispatches many steps between host syncs, on a machine whose devices are slower than its
    host, queues that many.
    """

    def __init__(self, size: int = 2):
        self.size = size
        self._outputs: collections.deque = collections.deque()

    def add(self, outputs) -> None:
        """Records a dispatch by its outputs; waits for the oldest one when more than `size` are out."""
        self._outputs.append(outputs)
        while len(self._outputs) > self.size:
            jax.block_until_ready(self._outputs.popleft())


class Runner:
    """A compiled k-step function for one parallel mode, with its state and batch placement."""

    def __init__(self, mode: str, build_step: StepBuilder, devices=None):
        self.mode = mode
        devices = list(devices if devices is not None else jax.devices())
        self.multihost = jax.process_count() > 1
        if mode == "none":
            if self.multihost:
                raise ValueError(f"parallel='none' runs on one device, but this job has {jax.process_count()} "
                                 "hosts; use --config.parallel=pmap or jit.")
            devices = devices[:1]
        self.devices = devices
        self.num_devices = len(devices)
        self.local_devices = [d for d in devices if d.process_index == jax.process_index()]
        if mode == "none":
            self._step = jax.jit(fuse_steps(build_step(None, 1)), donate_argnums=0)
        elif mode == "pmap":
            self._stacked = NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS_NAME,)), P(AXIS_NAME))
            self._first = jax.jit(lambda tree: jax.tree.map(lambda x: x[0], tree))
            # Every leaf's per-device copies in one program (one per leaf would queue dozens at once).
            self._copies = jax.jit(lambda tree, n: jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), tree),
                                   static_argnums=1)
            self._step = jax.pmap(fuse_steps(build_step(AXIS_NAME, self.num_devices)), axis_name=AXIS_NAME,
                                  devices=devices, donate_argnums=0)
        elif mode == "jit":
            self.mesh = jax.sharding.Mesh(np.array(devices), (MESH_AXIS,))
            self._replicated = NamedSharding(self.mesh, P())
            self._data = NamedSharding(self.mesh, P(None, None, MESH_AXIS))
            self._step = jax.jit(fuse_steps(build_step(None, 1)), in_shardings=(self._replicated, self._data),
                                 out_shardings=(self._replicated, self._replicated), donate_argnums=0)
        else:
            raise ValueError(f"Unknown parallel mode {mode!r}; use none, pmap or jit.")

    def put_state(self, state):
        """Places a host or single-device state for this mode (replicated for pmap and jit)."""
        if self.mode == "none":
            return jax.device_put(state, self.devices[0])
        if self.mode == "pmap":
            if self.multihost:  # this host's copies; pmap places them on its local devices
                return self._copies(state, len(self.local_devices))
            return jax.device_put(self._copies(state, self.num_devices), self._stacked)
        if self.multihost:  # every host holds the same value
            return jax.tree.map(lambda x: _global_from_host(x, self._replicated), state)
        return jax.device_put(state, self._replicated)

    def _one_copy(self, tree):
        """This host's copy of replicated outputs, as arrays on one of its devices.

        Slices local shards, all leaves in one single-device program, rather than indexing the
        global arrays: `x[0]` on a pmap output compiles an all-device gather, and one program per
        leaf puts dozens of computations in flight at once (see `DispatchWindow`).
        """
        if self.mode == "pmap":  # [devices, ...]: the first local device's copy
            return self._first(jax.tree.map(lambda x: x.addressable_data(0), tree))
        return jax.tree.map(lambda x: x.addressable_data(0), tree) if self.multihost else tree

    def get_state(self, state):
        """The state as one copy (for checkpoints and evaluation)."""
        return self._one_copy(state)

    def put_batch(self, batch: dict[str, np.ndarray]):
        """Places this host's [k, c, B / hosts, ...] rows (all of [k, c, B, ...] with one host)."""
        if self.mode == "none":
            return jax.device_put(batch, self.devices[0])
        if self.mode == "pmap":
            n = len(self.local_devices)

            def split(x):  # [k, c, B, ...] -> [devices, k, c, B / devices, ...]
                x = x.reshape(x.shape[:2] + (n, x.shape[2] // n) + x.shape[3:])
                return np.moveaxis(x, 2, 0)

            if self.multihost:
                return {k: split(v) for k, v in batch.items()}
            return jax.device_put({k: split(v) for k, v in batch.items()}, self._stacked)
        if self.multihost:
            hosts = jax.process_count()
            return {k: jax.make_array_from_process_local_data(
                self._data, v, v.shape[:2] + (v.shape[2] * hosts,) + v.shape[3:]) for k, v in batch.items()}
        return jax.device_put(batch, self._data)

    def step(self, state, batch):
        """Runs k fused steps; returns (state, metrics averaged over the k steps)."""
        state, metrics = self._step(state, batch)
        return state, self._one_copy(metrics)

    def compile(self, state, batch):
        """Compiles the step now for these placed arguments and keeps the program; returns it (its
        `memory_analysis()`, ...)."""
        self._step = self._step.lower(state, batch).compile()
        return self._step

    num_runs = 1

    @staticmethod
    def stack(states: list):
        (state,) = states
        return state

    @staticmethod
    def unstack(host_state, i: int):
        return host_state

    @staticmethod
    def run_metrics(metrics: dict) -> list[dict]:
        return [metrics]


RUNS_AXIS = "runs"  # a stack's mesh axis over runs
RUN_DATA_AXIS = "data"  # and over each run's batch


def run_mesh(num_runs: int, devices=None, devices_per_run: int = 1) -> jax.sharding.Mesh:
    """The ("runs", "data") mesh a stack of `num_runs` runs is sharded over.

    Each run's batch is split over `devices_per_run` devices (the "data" axis). The runs axis
    takes the largest number of run groups that divides `num_runs` and fits the devices, so
    every device holds the same number of runs (8 runs on 4 devices: 2 each; 6 runs on 4
    devices: 2 each on 3 devices, one idle). With several processes every process gives the
    same number of its devices, so each holds the shards of its own runs.
    """
    devices = list(devices if devices is not None else jax.devices())
    if devices_per_run < 1 or len(devices) < devices_per_run:
        raise ConfigError(f"devices_per_run={devices_per_run} needs 1 to {len(devices)} devices.")
    processes = sorted({d.process_index for d in devices})
    by_process = {p: [d for d in devices if d.process_index == p] for p in processes}
    per_process = min(len(v) for v in by_process.values())
    for groups in range(min(num_runs, len(devices) // devices_per_run), 0, -1):
        size = groups * devices_per_run
        if num_runs % groups == 0 and size % len(processes) == 0 and size // len(processes) <= per_process:
            chosen = [d for p in processes for d in by_process[p][:size // len(processes)]]
            return jax.sharding.Mesh(np.array(chosen).reshape(groups, devices_per_run), (RUNS_AXIS, RUN_DATA_AXIS))
    raise ConfigError(f"{num_runs} stacked runs with {devices_per_run} device(s) each cannot be spread evenly over "
                     f"{len(processes)} processes ({per_process} devices each): every process must hold the same "
                     "number of runs; make the group's size a multiple of the number of processes.")


class StackedRunner:
    """R runs that differ only in values the state carries (seeds, hyperparameters), advanced by
    one `vmap`-ed program: states and batches have a leading runs axis, sharded over the devices.

    The runs axis is split over a ("runs", "data") mesh (`run_mesh`): each device holds R / G
    runs of G run groups, and with `devices_per_run` > 1 each run's batch is also split over
    that many devices. The mesh may span several processes; every process then places its own
    shards of the (whole, host-side) stacked states and batches, the metrics come back
    replicated, and `get_state` gathers every run's state to every process.
    """

    mode = "vmap"

    def __init__(self, build_step: StepBuilder, num_runs: int, devices=None, devices_per_run: int = 1):
        self.num_runs = num_runs
        self.mesh = run_mesh(num_runs, devices, devices_per_run)
        self.devices = list(self.mesh.devices.flat)
        self.num_devices = len(self.devices)
        self.devices_per_run = devices_per_run
        self.multihost = jax.process_count() > 1
        self._states = NamedSharding(self.mesh, P(RUNS_AXIS))
        self._batches = NamedSharding(self.mesh, P(RUNS_AXIS, None, None, RUN_DATA_AXIS))
        self._replicated = NamedSharding(self.mesh, P())
        self._step = jax.jit(jax.vmap(fuse_steps(build_step(None, 1))), in_shardings=(self._states, self._batches),
                             out_shardings=(self._states, self._replicated), donate_argnums=0)
        self._gather = jax.jit(lambda tree: tree, out_shardings=self._replicated)

    @staticmethod
    def stack(states: list):
        return jax.tree.map(lambda *xs: jnp.stack(xs), *states)  # jnp: typed PRNG keys stack too

    @staticmethod
    def unstack(host_state, i: int):
        return jax.tree.map(lambda x: x[i], host_state)

    @staticmethod
    def run_metrics(metrics: dict) -> list[dict]:
        return [{k: v[i] for k, v in metrics.items()} for i in range(len(next(iter(metrics.values()))))]

    def put_state(self, state):
        """Places a stacked state [R, ...] (that every process holds whole) as the runs' shards."""
        if self.multihost:
            return jax.tree.map(lambda x: _global_from_host(x, self._states), state)
        return jax.device_put(state, self._states)

    def get_state(self, state):
        """Every run's state, stacked, on this process (with several processes: gathered from all of them)."""
        if self.multihost:
            return jax.tree.map(lambda x: x.addressable_data(0), self._gather(state))
        return state

    def put_batch(self, batch: dict[str, np.ndarray]):
        """Places the runs' batches [R, k, c, B, ...] (every run's whole batch, on every process)."""
        if self.multihost:
            return {k: _global_from_host(v, self._batches) for k, v in batch.items()}
        return jax.device_put(batch, self._batches)

    def compile(self, state, batch):
        """Compiles the vmapped step now for these placed arguments and keeps the program; returns it."""
        self._step = self._step.lower(state, batch).compile()
        return self._step

    def step(self, state, batch):
        state, metrics = self._step(state, batch)
        if self.multihost:
            metrics = jax.tree.map(lambda x: x.addressable_data(0), metrics)
        return state, metrics


def _global_from_host(x, sharding: NamedSharding) -> jax.Array:
    """A global array from a value that every host holds whole (a replicated state leaf)."""
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _global_from_host(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

