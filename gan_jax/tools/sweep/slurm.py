"""`--mode slurm`: a job-array script whose task i trains run i of sweep.json."""

from __future__ import annotations

import pathlib
import shlex
import sys


def write_slurm(workdir: pathlib.Path, record: dict, extra: str = "") -> pathlib.Path:
    """A job-array script: task i trains run i of sweep.json (resumes if resubmitted)."""
    lines = ["#!/bin/bash", f"#SBATCH --array=0-{len(record['runs']) - 1}", "#SBATCH --job-name=gan_jax_sweep",
             f"#SBATCH --output={workdir}/runs/slurm-%A_%a.out"] + ([extra] if extra else []) + [
        "set -euo pipefail",
        f"exec {shlex.quote(sys.executable)} -m gan_jax sweep run-one --workdir {shlex.quote(str(workdir))} "
        "--index \"$SLURM_ARRAY_TASK_ID\""]
    path = workdir / "sweep.sbatch"
    path.write_text("\n".join(lines) + "\n")
    return path
