"""Two hosts (processes joined by jax.distributed, two CPU devices each) give one host's numbers.

The data is split per host (each reads its own rows of every global batch); the step, its
gradient all-reduce and batch-norm statistics span both hosts. The reference is the same job
as one process with four devices.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

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


@pytest.mark.slow
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


# ---- `gan-jax train` as two jax.distributed processes ------------------------------------------

EXPERIMENT = str(pathlib.Path(__file__).resolve().parents[1] / "experiments" / "grid25.py")
ROOT = pathlib.Path(__file__).resolve().parents[1]
# 20 SGD steps of a narrow grid25 on raw coordinates (no Fourier features): not chaotic, so runs
# that sum their gradients in another order (gloo across processes, XLA across local devices)
# stay within rounding of each other. Constant learning rate, so num_steps can change on resume.
TRAIN = {"num_steps": 20, "steps_per_dispatch": 5, "log_every_steps": 5, "eval_every_steps": 20,
         "ckpt_every_steps": 10, "keep_checkpoints": 5, "batch_size": 64, "optim.name": "sgd",
         "optim.g_lr": 0.01, "optim.d_lr": 0.01, "optim.schedule": "constant", "model.d_fourier_features": 0,
         "model.g_fourier_features": 0, "model.g_width": 32, "model.d_width": 16, "eval.num_samples": 200,
         "parallel": "jit"}
STARTUP_S = 900  # imports, compilation and the first steps of every process, on a busy 2-core machine


def _train_env(devices: int, cache_dir: pathlib.Path) -> dict:
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
    env.update(XLA_FLAGS=" ".join(flags + [f"--xla_force_host_platform_device_count={devices}"]),
               JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env.pop("GAN_JAX_COMPILATION_CACHE", None)
    return env


def _launch(workdir: pathlib.Path, processes: int, devices: int, cache_dir: pathlib.Path, **overrides):
    """`gan-jax train` as `processes` jax.distributed processes of `devices` CPU devices each; (procs, logs)."""
    flags = {**TRAIN, **overrides}
    port = _free_port()
    procs, logs = [], []
    for i in range(processes):
        cmd = [sys.executable, "-m", "gan_jax", "train", "--config", EXPERIMENT, "--workdir", str(workdir), "--quiet",
               "--allow_config_change", "num_steps"] + [f"--config.{k}={v}" for k, v in flags.items()]
        if processes > 1:
            cmd += ["--coordinator_address", f"localhost:{port}", "--num_processes", str(processes),
                    "--process_id", str(i)]
        log = workdir.parent / f"{workdir.name}.process{i}.log"
        logs.append(log)
        procs.append(subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT,
                                      env=_train_env(devices, cache_dir)))
    return procs, logs


def _finish(procs, logs) -> list[str]:
    for p in procs:
        try:
            p.wait(STARTUP_S)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a process did not finish:\n" + "\n".join(log.read_text()[-2000:] for log in logs))
    texts = [log.read_text() for log in logs]
    return [f"rc={p.returncode}\n{text}" for p, text in zip(procs, texts)]


def _train(workdir, processes, devices, cache_dir, **overrides) -> list[str]:
    outputs = _finish(*_launch(workdir, processes, devices, cache_dir, **overrides))
    for out in outputs:
        assert out.startswith("rc=0\n"), out[-3000:]
    return outputs


def _metrics(workdir) -> list[dict]:
    return [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]


def _files(workdir) -> list[str]:
    """The run's files by name (checkpoint internals and the TensorBoard file's host/time suffix aside)."""
    names = set()
    for p in pathlib.Path(workdir).rglob("*"):
        rel = p.relative_to(workdir)
        if p.is_file() and rel.parts[0] != "checkpoints":
            names.add("events.out.tfevents" if p.name.startswith("events.out.tfevents") else str(rel))
        elif rel.parts[0] == "checkpoints" and len(rel.parts) == 2:
            names.add(str(rel))
    return sorted(names)


def _state(workdir, step):
    import jax

    from gan_jax import config as config_lib
    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.loop.checkpoint import Checkpointer
    from gan_jax.models import build_models

    config = config_lib.load_config(EXPERIMENT)
    config_lib.apply_overrides(config, {k: str(v) for k, v in TRAIN.items()})
    g, d = build_models(config.model, (2,))
    like = create_state(config, g, d, (2,), *optim.make_optimizers(config))
    state, meta = Checkpointer(pathlib.Path(workdir) / "checkpoints", 5, read_only=True).restore(step, like)
    return [np.asarray(x) for x in jax.tree.leaves((state.step, state.g, state.d))], meta


def _assert_close_runs(a, b, tol=1e-4):
    ma, mb = _metrics(a), _metrics(b)
    assert [m["step"] for m in ma] == [m["step"] for m in mb]
    for x, y in zip(ma, mb):
        for key in x:
            if key not in ("train/steps_per_sec", "train/data_wait_frac", "eval/seconds"):  # clocks
                assert x[key] == pytest.approx(y[key], rel=tol, abs=tol), (x["step"], key)


@pytest.mark.slow
def test_two_processes_train_like_one_with_four_devices_and_one_process_resumes_them(tmp_path):
    cache = tmp_path / "jax_cache"
    one, two = tmp_path / "one", tmp_path / "two"
    procs, logs = _launch(one, 1, 4, cache)  # both jobs at once: the machine has two cores
    procs2, logs2 = _launch(two, 2, 2, cache)
    outputs = _finish(procs + procs2, logs + logs2)
    for out in outputs:
        assert out.startswith("rc=0\n"), out[-3000:]
    assert "4 cpu device(s) of 2 processes" in outputs[1]  # process 0 speaks; process 1 does not
    assert "gan_jax: synthetic:grid25" not in outputs[2]

    # The same losses at every logged step and the same final metrics.
    _assert_close_runs(two, one)
    assert [m["step"] for m in _metrics(two)] == [5, 10, 15, 20, 20]  # each step written once
    s1, s2 = (json.loads((w / "summary.json").read_text()) for w in (one, two))
    assert s2["step"] == 20
    for key in ("eval/modes", "eval/high_quality", "eval/reverse_kl", "train/g_loss", "train/d_loss"):
        assert s2["metrics"][key] == pytest.approx(s1["metrics"][key], rel=1e-4, abs=1e-4), key
    # One set of workdir files: what one process writes, once.
    assert _files(two) == _files(one)
    assert len(list(two.glob("events.out.tfevents*"))) == 1 and not (two / "lock").exists()
    assert _files(two) == ["checkpoints/10", "checkpoints/20", "config.json", "events.out.tfevents",
                           "metrics.jsonl", *[f"samples/frames/step_{s:08d}.png" for s in (5, 10, 15, 20)],
                           "samples/step_00000020.png", "samples/training.gif", "summary.json"]
    for step in (10, 20):
        a, meta_a = _state(two, step)
        b, meta_b = _state(one, step)
        assert meta_a["data_position"] == meta_b["data_position"] == step * 2  # 2 batches a step (n_critic)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)

    # One process (4 devices) resumes the two processes' checkpoint of step 10 and ends where both did.
    resumed = tmp_path / "resumed"
    shutil.copytree(two, resumed, ignore=shutil.ignore_patterns("20", "summary.json"))
    (out,) = _train(resumed, 1, 4, cache)
    assert f"Resuming from step 10 in {resumed}" in out
    _assert_close_runs(resumed, two)  # steps 15 and 20 from the restored state and data position
    for x, y in zip(_state(resumed, 20)[0], _state(two, 20)[0], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigterm_to_one_of_two_processes_stops_both_at_one_step_with_one_checkpoint(tmp_path):
    from gan_jax.loop import runguard

    cache = tmp_path / "jax_cache"
    run = tmp_path / "run"
    endless = dict(num_steps=10**6, ckpt_every_steps=10**6, eval_every_steps=10**6)

    # A workdir that another run holds: process 0 cannot lock it, and both processes stop.
    run.mkdir()
    holder = runguard.WorkdirLock(run).acquire()
    try:
        refused = _finish(*_launch(run, 2, 2, cache, **endless))
    finally:
        holder.release()
    for out in refused:
        assert out.startswith("rc=2\n") and "in use by another gan_jax run or sweep" in out, out[-3000:]

    procs, logs = _launch(run, 2, 2, cache, **endless)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + STARTUP_S
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert all(p.poll() is None for p in procs), "\n".join(log.read_text()[-2000:] for log in logs)
        assert time.monotonic() < deadline, "the run logged nothing"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGTERM)  # not the process that writes
    outputs = _finish(procs, logs)
    stopped_at = set()
    for out in outputs:
        assert out.startswith("rc=0\n"), out[-3000:]
        lines = [line for line in out.splitlines() if "Stopped by SIGTERM at step" in line]
        assert len(lines) == 1, out[-3000:]
        stopped_at.add(int(lines[0].split(" at step ")[1].split()[0]))
    (step,) = stopped_at  # both processes stopped after the same dispatch
    assert step > 0 and step % TRAIN["steps_per_dispatch"] == 0
    saved = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == [step]  # one checkpoint, written once
    assert not (run / "summary.json").exists() and not (run / "lock").exists()
    assert max(m["step"] for m in _metrics(run)) <= step

    # One process resumes it and finishes ten steps later, each step logged once.
    (out,) = _train(run, 1, 4, cache, **{**endless, "num_steps": step + 10})
    assert f"Resuming from step {step} in {run}" in out
    logged = [m["step"] for m in _metrics(run) if "train/d_loss" in m]
    assert logged == list(range(5, step + 11, 5))
    assert json.loads((run / "summary.json").read_text())["step"] == step + 10
