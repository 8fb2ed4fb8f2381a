"""Preemption and kills, with the real launcher in a subprocess: SIGTERM / SIGINT stop cleanly,
SIGKILL at any moment (even inside a checkpoint write) loses only the steps since the last
checkpoint, and every resumed run ends bitwise where an uninterrupted one does."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest
import reliability_helpers as rh

from gan_jax.loop import runguard
from gan_jax.loop.trainer import train_and_evaluate

# Startup (imports, compilation) dominates a tiny run; give it room on a busy 2-core machine.
STARTUP_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "jax_cache"
    with rh.compilation_cache(path):
        yield path


def _wait_for(predicate, proc, what):
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not predicate():
        if proc.poll() is not None and not predicate():
            raise AssertionError(f"the run exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _progress(workdir) -> int:
    """The last logged step (0 before any); tolerates a line the run is still writing."""
    try:
        return max(rh.logged_steps(workdir), default=0)
    except (OSError, ValueError):
        return 0


def _start(cmd, log: pathlib.Path, cache_dir):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=rh.subprocess_env(cache_dir),
                            cwd=rh.ROOT)


def _finish(workdir, cfg, **kwargs):
    return train_and_evaluate(cfg, workdir, progress=False, **kwargs)


@pytest.mark.slow
def test_sigterm_and_sigint_stop_cleanly_and_the_same_command_resumes(tmp_path, cache_dir):
    workdir = tmp_path / "run"
    # Never finishes by itself; checkpoints only when asked to stop (and at the end).
    endless = dict(num_steps=10**6, ckpt_every_steps=10**6, eval_every_steps=10**6)
    cmd = rh.command(workdir, **endless)

    first = _start(cmd, tmp_path / "first.log", cache_dir)
    _wait_for(lambda: _progress(workdir) > 0, first, "training")
    with pytest.raises(runguard.WorkdirLockedError, match=f"pid {first.pid}"):
        runguard.WorkdirLock(workdir).acquire()  # a second run on the same workdir is refused
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 0
    log = (tmp_path / "first.log").read_text()
    stopped = [line for line in log.splitlines() if "Stopped by SIGTERM" in line]
    assert len(stopped) == 1, log
    s1 = int(stopped[0].split(" at step ")[1].split()[0])
    assert f"checkpoint saved in {workdir / 'checkpoints' / str(s1)}" in stopped[0]
    assert "Run the same command to resume" in stopped[0]
    assert rh.checkpoint_steps(workdir) == [s1] and not (workdir / "lock").exists()
    assert max(rh.logged_steps(workdir)) <= s1

    second = _start(cmd, tmp_path / "second.log", cache_dir)
    _wait_for(lambda: _progress(workdir) > s1, second, "training past the first stop")
    second.send_signal(signal.SIGINT)
    assert second.wait(60) == 0
    log = (tmp_path / "second.log").read_text()
    assert f"Resuming from step {s1} in " in log
    stopped = [line for line in log.splitlines() if "Stopped by SIGINT" in line]
    assert len(stopped) == 1, log
    s2 = int(stopped[0].split(" at step ")[1].split()[0])
    assert s2 > s1 and rh.checkpoint_steps(workdir) == [s1, s2]

    # Finish a few steps later, and compare with an uninterrupted run of that length.
    total = s2 + 6
    final = rh.config(**{**endless, "num_steps": total})
    _finish(workdir, final, allow_config_change=["num_steps"])
    _finish(tmp_path / "straight", final)
    rh.assert_states_equal(rh.restore(workdir, final)[0], rh.restore(tmp_path / "straight", final)[0])
    expected = sorted(set(range(4, total + 1, 4)) | {total})
    assert rh.logged_steps(workdir) == rh.logged_steps(tmp_path / "straight") == expected


KILL_IN_FINALIZE = """
import os, signal, sys
from orbax.checkpoint._src.path import atomicity

real = atomicity.AtomicRenameTemporaryPath.finalize
calls = [0]

async def finalize(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT_FINALIZE"]):
        os.kill(os.getpid(), signal.SIGKILL)  # written, not yet renamed into place
    return await real(self, *args, **kwargs)

atomicity.AtomicRenameTemporaryPath.finalize = finalize
from gan_jax.tools.cli import train_main
sys.exit(train_main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_anywhere_loses_only_steps_since_the_last_checkpoint(tmp_path, cache_dir):
    workdir = tmp_path / "run"
    settings = dict(num_steps=40, ckpt_every_steps=2, eval_every_steps=10**6)
    cfg = rh.config(**settings)

    # 1. Killed inside a checkpoint write, after the data and before the rename.
    script = tmp_path / "kill_in_finalize.py"
    script.write_text(KILL_IN_FINALIZE)
    env = {**rh.subprocess_env(cache_dir), "KILL_AT_FINALIZE": "5"}
    proc = subprocess.run([sys.executable, str(script)] + rh.argv(workdir, **settings), env=env, cwd=rh.ROOT,
                          capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = list((workdir / "checkpoints").glob("*orbax-checkpoint-tmp*"))
    assert leftovers, "the kill did not land inside a checkpoint write"
    assert (workdir / "lock").exists()  # a dead run's lock file stays behind ...

    # 2. Killed at a random moment of the resumed run (seeded, so a failure can be replayed).
    moment = random.Random(7).uniform(0.0, 1.5)
    last_complete = max(rh.checkpoint_steps(workdir))
    proc = _start(rh.command(workdir, **settings), tmp_path / "resumed.log", cache_dir)
    _wait_for(lambda: f"Resuming from step {last_complete} in " in (tmp_path / "resumed.log").read_text(), proc,
              "the resume from the last complete checkpoint")
    time.sleep(moment)
    proc.kill()
    assert proc.wait(60) == -signal.SIGKILL  # killed mid-run (20 checkpoint writes take well over 0.5 s)

    # 3. Finish ... and the lock left by two killed runs does not block.
    summary = _finish(workdir, cfg)
    assert summary["step"] == 40
    assert not list((workdir / "checkpoints").glob("*orbax-checkpoint-tmp*"))
    _finish(tmp_path / "straight", cfg)
    rh.assert_states_equal(rh.restore(workdir, cfg)[0], rh.restore(tmp_path / "straight", cfg)[0])
    assert rh.logged_steps(workdir) == list(range(4, 41, 4))
    assert rh.logged_steps(workdir, "eval/modes") == [40]


@pytest.mark.slow
def test_ctrl_c_with_the_output_pipe_closed_still_checkpoints(tmp_path):
    """`gan-jax train ... 2>&1 | tee log` and Ctrl-C: the terminal sends SIGINT to the whole foreground process
    group, so tee ends with the trainer and every later write meets a closed pipe; the run must still save its
    checkpoint and exit cleanly."""
    import shlex

    workdir, log = tmp_path / "run", tmp_path / "log"
    command = [a for a in rh.command(workdir, num_steps=100000, ckpt_every_steps=100000, log_every_steps=2)
               if a != "--quiet"]  # the progress bar writes after every dispatch
    pipeline = f"{shlex.join(command)} 2>&1 | tee {shlex.quote(str(log))} > /dev/null"
    # A process group of its own, as a terminal's foreground job: bash, the trainer and tee.
    group = subprocess.Popen(["bash", "-c", pipeline], start_new_session=True, env=rh.subprocess_env(tmp_path / "c"))
    deadline = time.time() + 300
    while "First" not in (log.read_text() if log.exists() else ""):  # training has started
        assert time.time() < deadline and group.poll() is None, log.read_text() if log.exists() else "no log"
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(group.pid, signal.SIGINT)  # Ctrl-C
    group.wait(120)
    deadline = time.time() + 120
    while (workdir / "lock").exists() and time.time() < deadline:  # the trainer may outlive bash and tee
        time.sleep(0.2)
    steps = rh.checkpoint_steps(workdir)
    assert len(steps) == 1 and steps[0] > 0 and not (workdir / "lock").exists(), log.read_text()[-3000:]
    assert max(rh.logged_steps(workdir)) <= steps[0]
