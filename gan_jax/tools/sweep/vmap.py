"""`gan-jax sweep --mode vmap`: runs that differ only in values the state carries, as one vmapped program.

Two runs share a compiled program when their configs agree on everything but per-run values:
the seed, the optimizer's injected hyperparameters (`core.optim.injected_keys`) and the values
the step reads from `state.hparams` (`core.state.hparam_keys`: every active term's declared
hyperparameters, the EMA decay), and when they switch on the same terms, augmentation and EMA.
Both lists come from the registries, so a new term's weight stacks without an edit here. Each
group trains through the one training loop (`loop.trainer.train_stack`): prefetch, the workdir
locks, SIGTERM-safe stops with a checkpoint of every run, divergence rollback, atomic
summaries. Every run gets its own workdir with config.json, metrics.jsonl, samples, Orbax
checkpoints and summary.json, as a single run would write them, and its own data stream.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import ml_collections

from gan_jax import config as config_lib
from gan_jax import objectives
from gan_jax.core import optim
from gan_jax.core.state import ema_enabled, hparam_keys
from gan_jax.tools.sweep.spec import finished


def run_config(config_spec: str, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
    config = config_lib.load_config(config_spec)
    return config_lib.apply_overrides(config, {k: str(v) for k, v in overrides.items()})


def per_run_keys(config: ml_collections.ConfigDict) -> set[str]:
    """The config keys whose values live in the state, not in the compiled program."""
    return {"seed", *optim.injected_keys(config), *hparam_keys(config)}


def program_signature(config: ml_collections.ConfigDict) -> str:
    """What the compiled step depends on: the config without its per-run values, and which terms, augmentation
    and EMA are on. Runs with equal signatures stack."""
    flat = _flatten(config_lib.to_dict(config))
    for key in per_run_keys(config):
        flat.pop(key, None)
    switches = {"terms": sorted(t.name for t in objectives.active_terms(config)),
                "augment": getattr(objectives.active_augment(config), "name", None),
                "ema": (ema_enabled(config), config.ema.decay > 0)}
    return json.dumps({"config": flat, "switches": switches}, sort_keys=True, default=str)


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def group_runs(config_spec: str, entries: list[dict]) -> list[list[dict]]:
    """Entries grouped so that each group compiles one program (equal `program_signature`)."""
    groups: dict[str, list[dict]] = {}
    for entry in entries:
        groups.setdefault(program_signature(run_config(config_spec, entry["overrides"])), []).append(entry)
    return list(groups.values())


def run_vmap(record: dict, log: Callable[[str], None] = print, progress: bool = True) -> str | None:
    """Every unfinished run of a sweep, group by group; returns the stop message if a signal stopped it."""
    from gan_jax.loop.trainer import train_stack

    todo = [e for e in record["runs"] if not finished(e)]
    groups = group_runs(record["config"], todo)
    log(f"sweep --mode vmap: {len(record['runs'])} runs, {len(todo)} to run in {len(groups)} compiled group(s)")
    for n, group in enumerate(groups, 1):
        log(f"group {n}/{len(groups)}: {', '.join(e['name'] for e in group)}")
        configs = [run_config(record["config"], e["overrides"]) for e in group]
        summaries = train_stack(configs, [e["workdir"] for e in group], [e["name"] for e in group], progress)
        if summaries[0].get("stopped_by"):
            return summaries[0]["message"]
    return None
