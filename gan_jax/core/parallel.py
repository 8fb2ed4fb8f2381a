"""The ways to run a step: `none` (one device), `pmap`, `jit` over a sharded mesh, and a stack of
runs under `vmap` (`StackedRunner`).

All of them wrap the same pure `train_step`; a runner moves the state and the host batches
([k, n_critic, B, ...] numpy arrays; [R, k, n_critic, B, ...] for a stack of R runs) to where its
compiled step wants them, and splits what comes back into one part per run (`unstack`,
`run_metrics`), so the training loop drives a single run and a stack alike.

With several hosts (`jax.process_count() > 1`, after `jax.distributed.initialize`), every
host runs the same program on its own rows of the global batch ([k, n_critic, B / hosts, ...],
see `ArrayIterator`): `pmap` and `jit` then span all hosts' devices, and `get_state` and the
metrics come back as this host's copy of the replicated values.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.core.step import fuse_steps

AXIS_NAME = "batch"  # pmap's axis
MESH_AXIS = "data"  # jit's mesh axis

StepBuilder = Callable[[str | None, int], Callable]  # (axis_name, num_devices) -> train_step


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
                n = len(self.local_devices)
                return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), state)
            stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.num_devices,) + x.shape), state)
            return jax.device_put(stacked, self._stacked)
        if self.multihost:  # every host holds the same value
            return jax.tree.map(lambda x: _global_from_host(x, self._replicated), state)
        return jax.device_put(state, self._replicated)

    def _one_copy(self, x: jax.Array) -> jax.Array:
        """This host's copy of a replicated output, as an array on one of its devices.

        Slices a local shard rather than indexing the global array: `x[0]` on a pmap output would
        compile an SPMD gather over all devices with its own all-reduce; dispatched for every
        state leaf while steps are in flight, those collectives can miss XLA:CPU's rendezvous
        deadline (a process abort after 40 s) on a loaded machine.
        """
        if self.mode == "pmap":
            return x.addressable_data(0)[0]  # [devices, ...]: the first local device's copy
        return x.addressable_data(0) if self.multihost else x

    def get_state(self, state):
        """The state as one copy (for checkpoints and evaluation)."""
        return jax.tree.map(self._one_copy, state)

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
        return state, jax.tree.map(self._one_copy, metrics)

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


class StackedRunner:
    """R runs that differ only in values the state carries (seeds, hyperparameters), advanced by
    one `vmap`-ed program: states and batches have a leading runs axis."""

    mode = "vmap"

    def __init__(self, build_step: StepBuilder, num_runs: int, devices=None):
        self.num_runs = num_runs
        self.devices = list(devices if devices is not None else jax.devices())[:1]
        self.num_devices = 1
        self._step = jax.jit(jax.vmap(fuse_steps(build_step(None, 1))), donate_argnums=0)

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
        return jax.device_put(state, self.devices[0])

    def get_state(self, state):
        return state

    def put_batch(self, batch: dict[str, np.ndarray]):
        return jax.device_put(batch, self.devices[0])

    def step(self, state, batch):
        return self._step(state, batch)


def _global_from_host(x, sharding: NamedSharding) -> jax.Array:
    """A global array from a value that every host holds whole (a replicated state leaf)."""
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _global_from_host(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

