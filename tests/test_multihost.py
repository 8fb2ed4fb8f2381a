"""Two hosts (processes joined by jax.distributed, two CPU devices each) give one host's numbers.

The data is split per host (each reads its own rows of every global batch); the step, its
gradient all-reduce and batch-norm statistics span both hosts. The reference is the same job
as one process with four devices.
"""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("multihost_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _run(num_processes: int, devices: int, mode: str, tmp: pathlib.Path) -> list[dict]:
    port = str(_free_port())
    outs = [tmp / f"{mode}_{num_processes}_{i}.npz" for i in range(num_processes)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(i), str(num_processes), port, mode, str(out)],
                              env=_env(devices), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, out in enumerate(outs)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return [dict(np.load(out)) for out in outs]


@pytest.mark.parametrize("mode", ["pmap", "jit"])
def test_two_hosts_match_one_host(mode, tmp_path):
    (ref,) = _run(1, 4, mode, tmp_path)
    hosts = _run(2, 2, mode, tmp_path)
    # Each host read its own half of the global batch.
    assert np.array_equal(np.concatenate([h["rows_seen"] for h in hosts]), ref["rows_seen"])
    for host in hosts:
        assert int(host["step"]) == 6
        assert set(host) == set(ref)
        for key in ref:
            if key != "rows_seen":
                np.testing.assert_allclose(host[key], ref[key], rtol=1e-5, atol=1e-5, err_msg=key)
