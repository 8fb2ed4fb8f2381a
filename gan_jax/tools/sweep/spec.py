"""A sweep's definition and its record: expand an experiment's `get_sweep(arg)` into named runs, write
and check `sweep.json`, and tell which runs have finished.

An experiment file may define `get_sweep(arg=None)` returning a list of override dicts
(`{"loss": "hinge", "seed": 3}`), built with `gan_jax.config.product`, `zip_` and `seeds`:

    def get_sweep(arg=None):
        return product(zip_(loss=["hinge", "wasserstein"], **{"reg.gp.weight": [0.0, 10.0]}), seeds(10))
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from typing import Any

from gan_jax import config as config_lib
from gan_jax.errors import ConfigError

Overrides = dict[str, Any]


def run_name(overrides: Overrides) -> str:
    """A readable, filesystem-safe name: 'loss=hinge,seed=3'."""
    text = ",".join(f"{k}={v}" for k, v in overrides.items()) or "default"
    return re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", text)


def expand(config_spec: str, sweep_arg: str | None = None) -> list[Overrides]:
    """The override dicts of `PATH[:ARG]`'s get_sweep(sweep_arg), each checked against the config."""
    path, _, arg = config_spec.partition(":")
    module = config_lib.load_module(path)
    if not hasattr(module, "get_sweep"):
        raise ConfigError(f"{path} defines no get_sweep(arg); add one that returns a list of "
                                     "override dicts (see gan_jax/sweep.py).")
    runs = [dict(r) for r in module.get_sweep(sweep_arg)]
    if not runs:
        raise ConfigError(f"{path}: get_sweep({sweep_arg!r}) returned no runs.")
    names = [run_name(r) for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: get_sweep returned duplicate runs.")
    for r in runs:  # a misspelt key fails here, before any run starts
        config_lib.apply_overrides(config_lib.load_config(config_spec), {k: str(v) for k, v in r.items()})
    return runs


def write_sweep(workdir: pathlib.Path, config_spec: str, sweep_arg: str | None, runs: list[Overrides]) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    entries = [{"name": run_name(r), "overrides": r, "workdir": str(workdir / "runs" / run_name(r))} for r in runs]
    record = {"config": config_spec, "sweep_arg": sweep_arg, "runs": entries}
    path = workdir / "sweep.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous.get("config") != config_spec or [e["name"] for e in previous["runs"]] != [e["name"] for e in entries]:
            raise ConfigError(f"{workdir} holds a different sweep ({previous.get('config')}, {len(previous['runs'])} "
                             "runs); use another --workdir or the same sweep to resume it.")
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def train_command(config_spec: str, entry: dict) -> list[str]:
    cmd = [sys.executable, "-m", "gan_jax", "train", "--config", config_spec, "--workdir", entry["workdir"],
           "--quiet"]
    return cmd + [f"--config.{k}={v}" for k, v in entry["overrides"].items()]


def finished(entry: dict) -> bool:
    return (pathlib.Path(entry["workdir"]) / "summary.json").is_file()
