"""Several devices in one process: the dispatch window that keeps XLA:CPU from deadlocking, and a vmap
sweep whose stacked runs are spread over the 4 forced devices."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax.core.parallel import run_mesh
from gan_jax.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]

# One pmap program with an all-reduce, dispatched N times back to back; the host keeps WINDOW of them
# (all of them when WINDOW is 0) waiting on the devices. The rendezvous deadline is cut to 10 s so that
# a deadlock shows in seconds, as the abort it becomes after 40 s by default.
CHAIN = """
import sys
import jax, jax.numpy as jnp, numpy as np
from gan_jax.core.parallel import DispatchWindow

dispatches, window = int(sys.argv[1]), int(sys.argv[2])
step = jax.pmap(lambda x: x + 1e-3 * jax.lax.psum(jnp.tanh(x @ x.T), "i") @ x, axis_name="i")
x = np.random.default_rng(0).normal(size=(4, 16, 16)).astype(np.float32) * 0.01
outstanding = DispatchWindow(window) if window else None
for _ in range(dispatches):
    x = step(x)
    if outstanding is not None:
        outstanding.add(x)
print(float(np.abs(np.asarray(x)).sum()))
"""


def _chain(dispatches: int, window: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4 "
               "--xla_cpu_collective_call_warn_stuck_timeout_seconds=5 "
               "--xla_cpu_collective_call_terminate_timeout_seconds=10")
    return subprocess.run([sys.executable, "-c", CHAIN, str(dispatches), str(window)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_a_bounded_dispatch_window_keeps_xla_cpu_collectives_from_deadlocking():
    """The cause of the suite's `Fatal Python error: Aborted`: XLA:CPU admits 32 computations per
    device; past that, the launches of a multi-device program can take a device's slots out of
    order, one participant of its all-reduce never starts, and the rendezvous deadline aborts the
    process. 400 back-to-back dispatches do that (100 lost the race in only 4 of 6 chains); the same
    400 through the loop's window of 2 finish."""
    unbounded = _chain(400, 0)
    assert unbounded.returncode != 0 and "Termination timeout" in unbounded.stderr, unbounded.stderr[-2000:]
    bounded = _chain(400, 2)
    assert bounded.returncode == 0, bounded.stderr[-2000:]
    assert "may be stuck" not in bounded.stderr


def test_run_mesh_spreads_runs_evenly_over_the_devices():
    devices = jax.devices()[:4]
    assert run_mesh(8, devices).devices.shape == (4, 1)  # 2 runs per device
    assert run_mesh(4, devices).devices.shape == (4, 1)
    assert run_mesh(6, devices).devices.shape == (3, 1)  # 2 each on 3 devices: 6 does not split 4 ways
    assert run_mesh(3, devices).devices.shape == (3, 1)
    assert run_mesh(1, devices).devices.shape == (1, 1)
    assert run_mesh(4, devices, devices_per_run=2).devices.shape == (2, 2)  # each run's batch over 2
    assert run_mesh(1, devices, devices_per_run=4).devices.shape == (1, 4)
    assert list(run_mesh(8, devices).devices.flat) == devices
    with pytest.raises(ConfigError, match="devices_per_run"):
        run_mesh(2, devices, devices_per_run=8)


def _tiny_sweep(tmp_path) -> str:
    """grid25 for 20 SGD steps on raw coordinates (not chaotic, see test_sweep.py), 8 runs: 4 seeds x 2
    learning rates, all per-run values, so one compiled group."""
    exp = tmp_path / "tiny.py"
    exp.write_text(
        "from gan_jax.config import load_module, lock, parse_arg, product, seeds\n"
        f"_g = load_module({str(ROOT / 'experiments' / 'grid25.py')!r})\n"
        "def get_config(arg=None):\n"
        "    c = _g.get_config(); c.unlock()\n"
        "    c.num_steps = 20; c.steps_per_dispatch = 5; c.eval.num_samples = 200; c.batch_size = 40\n"
        "    c.optim.name = 'sgd'; c.optim.g_lr = c.optim.d_lr = 0.01; c.optim.schedule = 'constant'\n"
        "    c.model.d_fourier_features = 0; c.model.g_fourier_features = 0\n"
        "    c.model.g_width = 32; c.model.d_width = 16\n"
        "    c.log_every_steps = c.eval_every_steps = 10; c.ckpt_every_steps = 20\n"
        "    parse_arg(c, arg); return lock(c)\n"
        "def get_sweep(arg=None):\n"
        "    return product(seeds(4), **{'optim.g_lr': [0.01, 0.02]})\n")
    return str(exp)


def _leaves(workdir, config, step):
    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.loop.checkpoint import Checkpointer
    from gan_jax.models import build_models

    g, d = build_models(config.model, (2,))
    like = create_state(config, g, d, (2,), *optim.make_optimizers(config))
    state, meta = Checkpointer(pathlib.Path(workdir) / "checkpoints", 2, read_only=True).restore(step, like)
    return jax.tree.leaves((state.g.params, state.d.params, state.g_ema)), meta


@pytest.mark.slow
def test_vmap_sweep_of_8_runs_on_4_devices_gives_each_run_its_one_device_numbers(tmp_path):
    with rh.compilation_cache(tmp_path / "jax_cache"):  # the 8 single runs compile one program
        _vmap_sweep_matches_single_runs(tmp_path)


def _vmap_sweep_matches_single_runs(tmp_path):
    from gan_jax.loop.blueprint import setup_run
    from gan_jax.loop.trainer import train_and_evaluate
    from gan_jax.tools import sweep
    from gan_jax.tools.sweep.vmap import group_runs, run_config, run_vmap

    assert jax.device_count() >= 4
    spec = _tiny_sweep(tmp_path)
    record = sweep.write_sweep(tmp_path / "v", spec, None, sweep.expand(spec))
    assert len(record["runs"]) == 8 and len(group_runs(spec, record["runs"])) == 1
    configs = [run_config(spec, e["overrides"]) for e in record["runs"]]

    # The group's runner puts runs 2d and 2d + 1 on device d, each run's state whole.
    blueprints = [setup_run(c, 1)[0] for c in configs]
    runner = blueprints[0].runners(jax.devices()[:4], num_runs=8)(0)
    assert runner.num_devices == 4
    placed = runner.put_state(runner.stack([b.init_state() for b in blueprints]))
    leaf = jax.tree.leaves(placed.g.params)[0]
    for shard in leaf.addressable_shards:
        d = runner.devices.index(shard.device)
        for j in range(2):
            np.testing.assert_array_equal(np.asarray(shard.data)[j],
                                          np.asarray(jax.tree.leaves(blueprints[2 * d + j].init_state().g.params)[0]))

    run_vmap(record, log=lambda s: None, progress=False)
    for entry, config in zip(record["runs"], configs):
        single = tmp_path / "single" / entry["name"]
        assert config.parallel == "none"
        train_and_evaluate(config, single, progress=False)  # on one device
        stacked, meta_s = _leaves(entry["workdir"], config, 20)
        alone, meta_a = _leaves(single, config, 20)
        assert meta_s["data_position"] == meta_a["data_position"]
        for x, y in zip(stacked, alone, strict=True):
            # Rounding level (the programs sum in other orders); a mixed-up seed, learning rate or data
            # stream moves these O(0.1) weights by orders of magnitude more.
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        logged = [[json.loads(line) for line in open(pathlib.Path(w) / "metrics.jsonl")]
                  for w in (entry["workdir"], single)]
        assert [r["step"] for r in logged[0]] == [r["step"] for r in logged[1]] == [10, 10, 20, 20]
        for a, b in zip(*logged):
            for key in a:
                # Logits near 0 (d_real, d_fake) carry the rounding-level weight differences at 1e-4 after
                # 20 steps at lr 0.02; a wrong run's losses differ at order 1.
                if key.startswith("train/") and key not in ("train/steps_per_sec", "train/data_wait_frac"):
                    assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-3), key
        vm = json.loads((pathlib.Path(entry["workdir"]) / "summary.json").read_text())["metrics"]
        sg = json.loads((single / "summary.json").read_text())["metrics"]
        for key in ("eval/modes", "eval/high_quality", "eval/reverse_kl"):
            assert vm[key] == pytest.approx(sg[key], abs=1e-3), key
