"""`--mode local`: every unfinished run as its own `gan-jax train` process, N at a time."""

from __future__ import annotations

import pathlib
import subprocess
import time
from typing import Any

from gan_jax.tools.sweep.spec import finished, train_command


def run_local(record: dict, processes: int, log=print) -> list[str]:
    """Trains every unfinished run, `processes` at a time; returns the names of failed runs."""
    todo = [e for e in record["runs"] if not finished(e)]
    done = len(record["runs"]) - len(todo)
    log(f"sweep: {len(record['runs'])} runs, {done} already finished, {len(todo)} to run, {processes} at a time")
    running: list[tuple[dict, subprocess.Popen, Any]] = []
    failed = []
    start = time.time()
    while todo or running:
        while todo and len(running) < processes:
            entry = todo.pop(0)
            pathlib.Path(entry["workdir"]).mkdir(parents=True, exist_ok=True)
            out = open(pathlib.Path(entry["workdir"]) / "train.log", "a")
            running.append((entry, subprocess.Popen(train_command(record["config"], entry), stdout=out,
                                                    stderr=subprocess.STDOUT), out))
        time.sleep(0.2)
        for item in list(running):
            entry, proc, out = item
            if proc.poll() is None:
                continue
            out.close()
            running.remove(item)
            done += 1
            if proc.returncode != 0:
                failed.append(entry["name"])
            log(_done_line(entry, proc.returncode, done, len(record["runs"]), start))
    return failed


def _done_line(entry: dict, code: int, done: int, total: int, start: float) -> str:
    """The progress line of a finished run (local and Ray modes)."""
    status = "ok" if code == 0 else f"FAILED (exit {code}, see {entry['workdir']}/train.log)"
    return f"[{done}/{total}] {entry['name']}: {status}  ({time.time() - start:.0f} s)"
