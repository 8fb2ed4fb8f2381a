"""train_and_evaluate(config, workdir): the training loop, and only the loop."""

from __future__ import annotations

import json
import logging
import pathlib
import platform
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from gan_jax import config as config_lib
from gan_jax import evaluate, optim, writers
from gan_jax.checkpoint import Checkpointer
from gan_jax.data import get_dataset
from gan_jax.models import build_models
from gan_jax.parallel import AXIS_NAME, Runner
from gan_jax.state import count_params, create_state
from gan_jax.step import make_train_step

log = logging.getLogger("gan_jax")


def versions() -> dict[str, str]:
    """Library versions and the backend, for summary.json."""
    from importlib import metadata

    out = {}
    for name in ("gan-jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out.update(python=platform.python_version(), backend=jax.default_backend(), devices=str(jax.devices()))
    return out


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: is it time to log / eval / save."""
    return after // every > before // every


def _write_config(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
    path = workdir / "config.json"
    resolved = config_lib.to_dict(config)
    if path.exists():
        previous = json.loads(path.read_text())
        changed = config_lib.diff(previous, resolved)
        if changed:
            raise config_lib.ConfigError(
                f"{workdir} holds a run with a different config (keys: {', '.join(changed)}). "
                "Use another --workdir, or the same config to resume.")
        return
    path.write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
                       progress: bool = True) -> dict[str, Any]:
    """Trains (or resumes) the run in `workdir`; returns the final summary."""
    start_time = time.time()
    workdir = pathlib.Path(workdir)
    devices = jax.devices()
    config_lib.validate(config, len(devices))
    iterator, spec = get_dataset(config.data, config.batch_size, config.seed)
    workdir.mkdir(parents=True, exist_ok=True)
    _write_config(workdir, config)
    (workdir / "samples").mkdir(exist_ok=True)

    g_model, d_model = build_models(config.model, spec.shape)
    g_tx = optim.make_optimizer(config, config.optim.g_lr, 1)
    d_tx = optim.make_optimizer(config, config.optim.d_lr, config.n_critic)
    state = create_state(config, g_model, d_model, spec.shape, g_tx, d_tx)

    def build_step(axis_name, num_devices):
        g, d = build_models(config.model, spec.shape, axis_name) if axis_name else (g_model, d_model)
        return make_train_step(config, g, d, g_tx, d_tx, axis_name, num_devices)

    runner = Runner(config.parallel, build_step, devices)
    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
    step = 0
    latest = checkpointer.latest_step()
    if latest is not None:
        state, meta = checkpointer.restore(latest, state)
        iterator.seek(meta["data_position"])
        step = int(state.step)
        log.info("Resuming from step %d in %s", step, workdir)
    writers.truncate_metrics(workdir / "metrics.jsonl", step)
    writer = writers.MetricWriter(workdir)
    bar = writers.Progress(config.num_steps, step, enabled=progress)
    if step == 0:
        bar.write(f"gan_jax: {config.data.source}, G {config.model.generator} "
                  f"({count_params(state.g.params):,} params), D {config.model.discriminator} "
                  f"({count_params(state.d.params):,} params), {config.num_steps} steps, parallel={runner.mode} "
                  f"on {runner.num_devices} {jax.default_backend()} device(s) -> {workdir}")

    def run_eval(host_state, at_step):
        samples = evaluate.generate(g_model, host_state, config.eval.num_samples, config.model,
                                    config.eval.use_ema)
        metrics = evaluate.evaluate_samples(spec, samples)
        picture = workdir / "samples" / f"step_{at_step:08d}.png"
        evaluate.save_samples_picture(picture, spec, samples, at_step, metrics)
        writer.write_image(at_step, "samples", picture)
        return {f"eval/{k}": v for k, v in metrics.items()}

    device_state = runner.put_state(state)
    del state
    k = config.steps_per_dispatch
    per_batch = config.n_critic
    last_train: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    timer_step, timer = step, time.time()
    while step < config.num_steps:
        # Chunks end on multiples of k so a resumed run dispatches exactly the same programs.
        chunk = min(k - step % k, config.num_steps - step)
        batch = iterator.next_batches(chunk * per_batch)
        batch = {key: v.reshape((chunk, per_batch) + v.shape[1:]) for key, v in batch.items()}
        device_state, metrics = runner.step(device_state, runner.put_batch(batch))
        before, step = step, step + chunk
        final = step == config.num_steps
        if crossed(before, step, config.log_every_steps) or final:
            metrics = jax.device_get(metrics)
            now = time.time()
            steps_per_sec = (step - timer_step) / max(now - timer, 1e-9)
            timer_step, timer = step, now
            last_train = {f"train/{name}": float(v) for name, v in metrics.items()}
            last_train["train/steps_per_sec"] = steps_per_sec
            bad = [name for name, v in last_train.items() if not np.isfinite(v)]
            writer.write_scalars(step, last_train)
            if bad:
                checkpointer.close()
                writer.close()
                bar.close()
                raise FloatingPointError(f"Non-finite {', '.join(bad)} at step {step}; the last good checkpoint "
                                         f"is step {checkpointer.latest_step()}. Lower the learning rates or "
                                         "add a regularizer.")
            bar.update(step, {"d_loss": last_train["train/d_loss"], "g_loss": last_train["train/g_loss"],
                              "steps/s": steps_per_sec, **last_eval})
        if crossed(before, step, config.eval_every_steps) or final:
            last_eval = run_eval(runner.get_state(device_state), step)
            writer.write_scalars(step, last_eval)
            bar.update(step, {**last_eval})
            timer_step, timer = step, time.time()
        if crossed(before, step, config.ckpt_every_steps) or final:
            checkpointer.save(step, runner.get_state(device_state), {"data_position": iterator.position,
                                                                     "step": step})
            timer_step, timer = step, time.time()
    if not last_eval:  # resumed a finished run: report its final numbers again
        last_eval = run_eval(runner.get_state(device_state), step)
    bar.close()
    writer.close()
    checkpointer.close()
    summary = {
        "step": step,
        "metrics": {**last_train, **last_eval},
        "wall_time_sec": time.time() - start_time,
        "train_steps_per_sec": last_train.get("train/steps_per_sec"),
        "versions": versions(),
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
