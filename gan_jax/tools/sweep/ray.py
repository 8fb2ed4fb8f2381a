"""`--mode ray`: every unfinished run as a Ray task (a local instance, or a running cluster)."""

from __future__ import annotations

import pathlib
import subprocess
import time

from gan_jax.errors import ConfigError
from gan_jax.tools.sweep.local import _done_line
from gan_jax.tools.sweep.spec import finished, train_command


def _train_task(config_spec: str, entry: dict) -> tuple[str, int]:
    """One run as a subprocess, its output appended to RUN/train.log: the body of a Ray task."""
    workdir = pathlib.Path(entry["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "train.log", "a") as out:
        code = subprocess.call(train_command(config_spec, entry), stdout=out, stderr=subprocess.STDOUT)
    return entry["name"], code


def run_ray(record: dict, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
            log=print) -> list[str]:
    """Trains every unfinished run as a Ray task; returns the names of failed runs.

    `address=None` starts a local Ray instance; "auto" or "HOST:PORT" joins a running cluster,
    whose nodes must all see the sweep directory (a shared filesystem) and have gan_jax installed.
    Each task trains its run in a fresh process, exactly as `--mode local` does, so a run can be
    interrupted and resumed by rerunning the sweep.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--mode ray needs Ray: pip install 'gan-jax[ray]' (or pip install ray).") from None
    todo = [e for e in record["runs"] if not finished(e)]
    done = len(record["runs"]) - len(todo)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    log(f"sweep: {len(record['runs'])} runs, {done} already finished, {len(todo)} to run as Ray tasks "
        f"({cpus_per_run:g} CPU{f', {gpus_per_run:g} GPU' if gpus_per_run else ''} each; cluster: "
        f"{ray.cluster_resources().get('CPU', 0):g} CPUs)")
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_train_task)
    pending = [task.remote(record["config"], e) for e in todo]
    by_name = {e["name"]: e for e in todo}
    failed, start = [], time.time()
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            name, code = ray.get(ready[0])
            done += 1
            if code != 0:
                failed.append(name)
            log(_done_line(by_name[name], code, done, len(record["runs"]), start))
    finally:
        if started_here:
            ray.shutdown()
    return failed
