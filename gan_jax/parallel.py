"""The ways to run a step: `none` (one device), `pmap`, and `jit` over a sharded mesh.

All of them wrap the same pure `train_step`; a `Runner` moves the state and the host
batches ([k, n_critic, B, ...] numpy arrays) to where its compiled step wants them.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gan_jax.step import fuse_steps

AXIS_NAME = "batch"  # pmap's axis
MESH_AXIS = "data"  # jit's mesh axis

StepBuilder = Callable[[str | None, int], Callable]  # (axis_name, num_devices) -> train_step


class Runner:
    """A compiled k-step function for one parallel mode, with its state and batch placement."""

    def __init__(self, mode: str, build_step: StepBuilder, devices=None):
        self.mode = mode
        devices = list(devices if devices is not None else jax.devices())
        if mode == "none":
            devices = devices[:1]
        self.devices = devices
        self.num_devices = len(devices)
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
            stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.num_devices,) + x.shape), state)
            return jax.device_put(stacked, self._stacked)
        return jax.device_put(state, self._replicated)

    def get_state(self, state):
        """The state as one copy (for checkpoints and evaluation)."""
        if self.mode == "pmap":
            return jax.tree.map(lambda x: x[0], state)
        return state

    def put_batch(self, batch: dict[str, np.ndarray]):
        if self.mode == "none":
            return jax.device_put(batch, self.devices[0])
        if self.mode == "pmap":
            n = self.num_devices

            def split(x):  # [k, c, B, ...] -> [devices, k, c, B / devices, ...]
                x = x.reshape(x.shape[:2] + (n, x.shape[2] // n) + x.shape[3:])
                return np.moveaxis(x, 2, 0)

            return jax.device_put({k: split(v) for k, v in batch.items()}, self._stacked)
        return jax.device_put(batch, self._data)

    def step(self, state, batch):
        """Runs k fused steps; returns (state, metrics averaged over the k steps)."""
        state, metrics = self._step(state, batch)
        if self.mode == "pmap":
            metrics = jax.tree.map(lambda x: x[0], metrics)
        return state, metrics
