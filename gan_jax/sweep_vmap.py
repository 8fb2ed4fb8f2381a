"""`gan-jax sweep --mode vmap`: runs that differ only in values the state carries, as one vmapped program.

Runs whose overrides touch only VMAPPABLE keys (the seed and the hyperparameters held in the
state: learning rates, betas, loss/regularizer weights, EMA decay) share one compiled step:
their states are stacked on a leading axis and `jax.vmap(train_step)` advances all of them
at once. Runs that change shapes or code paths (a loss, a model width, a regularizer switched
on or off) form separate groups, each compiled once. Every run still gets its own workdir
with config.json, metrics.jsonl, samples, Orbax checkpoints and summary.json, as a single run
would write them, and its own data stream (its seed); a stack resumes from its runs'
checkpoints.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import config as config_lib
from gan_jax import evaluate, optim, writers
from gan_jax.checkpoint import Checkpointer
from gan_jax.data import get_dataset
from gan_jax.models import build_models
from gan_jax.state import create_state
from gan_jax.step import fuse_steps, make_train_step, r1_programs

VMAPPABLE = ("seed", "optim.g_lr", "optim.d_lr", "optim.b1", "optim.b2", "reg.gp_weight", "reg.r1_weight",
             "ema.decay")


def run_config(config_spec: str, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
    config = config_lib.load_config(config_spec)
    return config_lib.apply_overrides(config, {k: str(v) for k, v in overrides.items()})


def group_runs(config_spec: str, entries: list[dict]) -> list[list[dict]]:
    """Entries grouped so that each group differs only in VMAPPABLE values (and shares code paths)."""
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        c = run_config(config_spec, entry["overrides"])
        fixed = tuple(sorted((k, str(v)) for k, v in entry["overrides"].items() if k not in VMAPPABLE))
        switches = (c.reg.gp_weight > 0, c.reg.r1_weight > 0, c.ema.decay > 0)  # these change the program
        groups.setdefault((fixed, switches), []).append(entry)
    return list(groups.values())


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)  # jnp: typed PRNG keys stack too


def _unstack(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def run_group(config_spec: str, entries: list[dict], log: Callable[[str], None] = print) -> None:
    """Trains (or resumes) one group of runs as a vmapped stack."""
    from gan_jax.train import _write_config, versions

    start_time = time.time()
    configs = [run_config(config_spec, e["overrides"]) for e in entries]
    base = configs[0]
    if base.parallel != "none":
        raise config_lib.ConfigError("--mode vmap stacks runs on one device; use parallel=none for the runs.")
    for c in configs:
        config_lib.validate(c, 1)
    data = [get_dataset(c.data, c.batch_size, c.seed) for c in configs]
    spec = data[0][1]
    if spec.kind == "text":
        raise config_lib.ConfigError("--mode vmap does not support text runs yet; use --mode local.")
    num_classes = spec.num_classes or 0
    g_model, d_model = build_models(base.model, spec.shape, num_classes=num_classes)

    # Each run's state from its own config: its seed, and its hyperparameters inside the optimizer
    # states (inject_hyperparams) and hparams; the transformations themselves are shared.
    states = [create_state(c, g_model, d_model, spec.shape, *optim.make_optimizers(c), num_classes) for c in configs]
    g_tx, d_tx = optim.make_optimizers(base)
    workdirs = [pathlib.Path(e["workdir"]) for e in entries]
    checkpointers = []
    for wd, c in zip(workdirs, configs):
        wd.mkdir(parents=True, exist_ok=True)
        _write_config(wd, c)
        (wd / "samples").mkdir(exist_ok=True)
        checkpointers.append(Checkpointer(wd / "checkpoints", c.keep_checkpoints))
    latest = [ck.latest_step() for ck in checkpointers]
    step = 0
    if any(s is not None for s in latest):
        if len(set(latest)) != 1:
            raise config_lib.ConfigError(f"the runs of this vmap group stopped at different steps ({latest}); "
                                         "finish them with --mode local.")
        step = latest[0]
        for i, ck in enumerate(checkpointers):
            states[i], meta = ck.restore(step, states[i])
            data[i][0].seek(meta["data_position"])
        log(f"vmap group of {len(entries)} runs: resuming at step {step}")
    for wd in workdirs:
        writers.truncate_metrics(wd / "metrics.jsonl", step)
    metric_writers = [writers.MetricWriter(wd) for wd in workdirs]

    def compile_step(r1_due):
        return jax.jit(jax.vmap(fuse_steps(make_train_step(base, g_model, d_model, g_tx, d_tx,
                                                           num_classes=num_classes, r1_due=r1_due))),
                       donate_argnums=0)

    step_fn_at = r1_programs(base, compile_step)  # lazy R1 one step a dispatch: two programs
    stacked = _stack(states)
    del states
    k, per_batch = base.steps_per_dispatch, base.n_critic
    last_train: list[dict] = [{} for _ in entries]
    last_eval: list[dict] = [{} for _ in entries]
    timer_step, timer = step, time.time()

    def run_eval(host, at_step):
        for i, c in enumerate(configs):
            last_eval[i] = evaluate.evaluate_and_save(g_model, _unstack(host, i), spec, c, workdirs[i], at_step,
                                                      metric_writers[i])
            metric_writers[i].write_scalars(at_step, last_eval[i])

    from gan_jax.train import crossed

    try:
        while step < base.num_steps:
            chunk = min(k - step % k, base.num_steps - step)
            batches = []
            for it, _ in data:
                b = it.next_batches(chunk * per_batch)
                batches.append({name: v.reshape((chunk, per_batch) + v.shape[1:]) for name, v in b.items()})
            stacked, metrics = step_fn_at(step)(stacked, {n: np.stack([b[n] for b in batches]) for n in batches[0]})
            before, step = step, step + chunk
            final = step == base.num_steps
            if crossed(before, step, base.log_every_steps) or final:
                metrics = jax.device_get(metrics)
                now = time.time()
                per_sec = (step - timer_step) / max(now - timer, 1e-9)
                timer_step, timer = step, now
                for i in range(len(entries)):
                    last_train[i] = {f"train/{name}": float(v[i]) for name, v in metrics.items()}
                    last_train[i]["train/steps_per_sec"] = per_sec
                    metric_writers[i].write_scalars(step, last_train[i])
                bad = [entries[i]["name"] for i in range(len(entries))
                       if not all(np.isfinite(v) for v in last_train[i].values())]
                if bad:
                    raise FloatingPointError(f"non-finite metrics at step {step} in run(s) {', '.join(bad)}; the "
                                             "last checkpoints are kept.")
                log(f"vmap group of {len(entries)} runs: step {step}/{base.num_steps}, {per_sec:.1f} steps/s "
                    f"({per_sec * len(entries):.1f} run-steps/s)")
            host = None
            if crossed(before, step, base.eval_every_steps) or final:
                host = jax.device_get(stacked)
                run_eval(host, step)
                timer_step, timer = step, time.time()
            if crossed(before, step, base.ckpt_every_steps) or final:
                host = host if host is not None else jax.device_get(stacked)
                for i, ck in enumerate(checkpointers):
                    ck.save(step, _unstack(host, i), {"data_position": data[i][0].position, "step": step})
                timer_step, timer = step, time.time()
    finally:
        for w in metric_writers:
            w.close()
        for ck in checkpointers:
            ck.close()
    wall = time.time() - start_time
    for i, wd in enumerate(workdirs):
        summary = {"step": step, "metrics": {**last_train[i], **last_eval[i]}, "wall_time_sec": wall,
                   "train_steps_per_sec": last_train[i].get("train/steps_per_sec"), "versions": versions(),
                   "vmap_group_size": len(entries)}
        (wd / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def run_vmap(record: dict, log: Callable[[str], None] = print) -> None:
    """Every unfinished run of a sweep, group by group."""
    from gan_jax.sweep import finished

    todo = [e for e in record["runs"] if not finished(e)]
    groups = group_runs(record["config"], todo)
    log(f"sweep --mode vmap: {len(record['runs'])} runs, {len(todo)} to run in {len(groups)} compiled group(s)")
    for n, group in enumerate(groups, 1):
        log(f"group {n}/{len(groups)}: {', '.join(e['name'] for e in group)}")
        run_group(record["config"], group, log)
