"""train_and_evaluate(config, workdir): the training loop, and only the loop."""

from __future__ import annotations

import functools
import json
import logging
import os
import pathlib
import platform
import time
from typing import Any, Sequence

import jax
import ml_collections

from gan_jax import config as config_lib
from gan_jax import evaluate, optim, runguard, startup, text_run, writers
from gan_jax.checkpoint import Checkpointer
from gan_jax.data import checks as data_checks
from gan_jax.data import get_dataset
from gan_jax.data.prefetch import Prefetcher
from gan_jax.models import build_models, sample_latent
from gan_jax.parallel import Runner
from gan_jax.state import count_params, create_state
from gan_jax.step import make_train_step, r1_programs

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


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Writes via a temporary file and a rename, so a kill never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _lookup(tree: dict, key: str):
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return "<absent>"
        tree = tree[part]
    return tree


def _write_config(workdir: pathlib.Path, config: ml_collections.ConfigDict,
                  allow_change: Sequence[str] = ()) -> None:
    path = workdir / "config.json"
    resolved = config_lib.to_dict(config)
    if path.exists():
        previous = json.loads(path.read_text())
        changed = config_lib.diff(previous, resolved)
        refused = [k for k in changed if k not in allow_change]
        if refused:
            details = "; ".join(f"{k}: {_lookup(previous, k)!r} -> {_lookup(resolved, k)!r}" for k in refused)
            raise config_lib.ConfigError(
                f"{workdir} holds a run with a different config ({details}). Use another --workdir, the same "
                f"config to resume, or --allow_config_change {','.join(refused)} to resume with the new values.")
        if changed:
            log.warning("Resuming with changed config keys: %s.", ", ".join(
                f"{k} {_lookup(previous, k)!r} -> {_lookup(resolved, k)!r}" for k in changed))
        else:
            return
    write_atomic(path, json.dumps(resolved, indent=2, sort_keys=True) + "\n")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
                       progress: bool = True, *, allow_config_change: Sequence[str] = (),
                       allow_fresh_start: bool = False, on_divergence: str = "stop",
                       rollback_lr_factor: float = 0.5, max_rollbacks: int = 3) -> dict[str, Any]:
    """Trains (or resumes) the run in `workdir`; returns the final summary.

    Everything that can be checked (config, data, models) is checked before anything is
    written. SIGTERM / SIGINT stop the run after the current dispatch with a checkpoint; the
    summary then has `"stopped_by"` set and is not written to summary.json. A non-finite loss
    or gradient raises `runguard.DivergenceError`, or with `on_divergence="rollback"` restores
    the newest checkpoint and continues with the learning rates times `rollback_lr_factor`
    (at most `max_rollbacks` times).
    """
    start_time = time.time()
    workdir = pathlib.Path(workdir)
    devices = jax.devices()
    config_lib.validate(config, len(devices))
    if jax.process_count() > 1:  # the data and the step are per-host; the writers are not yet
        raise config_lib.ConfigError(
            f"This job has {jax.process_count()} processes, but the run loop writes its workdir (lock, config, "
            "metrics, checkpoints) from one process. Run train on one host; multi-host data and steps are "
            "available through gan_jax.data.get_dataset(..., process_index, process_count) and gan_jax.parallel.Runner.")
    if on_divergence not in ("stop", "rollback"):
        raise config_lib.ConfigError(f"on_divergence is {on_divergence!r}; use 'stop' or 'rollback'.")
    if not 0 < rollback_lr_factor < 1:
        raise config_lib.ConfigError(f"rollback_lr_factor must be in (0, 1), got {rollback_lr_factor}.")
    iterator, spec = get_dataset(config.data, config.batch_size, config.seed)

    data_checks.check_labels(spec, evaluate.is_conditional(config.model),
                             f"model.conditioning={config.model.conditioning!r} needs labels")
    num_classes = spec.num_classes or 0
    try:
        g_model, d_model = build_models(config.model, spec.shape, num_classes=num_classes)
    except ValueError as e:  # a model that does not fit the data or the config
        raise config_lib.ConfigError(str(e)) from None
    g_tx, d_tx = optim.make_optimizers(config)
    state = create_state(config, g_model, d_model, spec.shape, g_tx, d_tx, num_classes)
    if spec.kind in ("image", "points"):
        z_shape = jax.eval_shape(lambda: sample_latent(jax.random.key(0), 2, config.model)).shape
        data_checks.check_generator_matches_data(g_model, state.g.params, state.g.model_state, z_shape, spec,
                                                 config.model)

    workdir.mkdir(parents=True, exist_ok=True)
    lock = runguard.WorkdirLock(workdir).acquire()
    try:
        if lock.stale_owner:
            log.info("Took over the lock of an earlier run that is gone (pid %s on %s).",
                     lock.stale_owner.get("pid"), lock.stale_owner.get("host"))
        _write_config(workdir, config, allow_config_change)
        with runguard.StopRequest() as stop:
            return _run(config, workdir, progress, state, iterator, spec, g_model, d_model, g_tx, d_tx, devices,
                        stop, start_time, allow_fresh_start, on_divergence, rollback_lr_factor, max_rollbacks)
    finally:
        lock.release()


def _run(config, workdir, progress, state, iterator, spec, g_model, d_model, g_tx, d_tx, devices, stop,
         start_time, allow_fresh_start, on_divergence, rollback_lr_factor, max_rollbacks) -> dict[str, Any]:
    (workdir / "samples").mkdir(exist_ok=True)

    def build_step(axis_name, num_devices, r1_due=None):
        g, d = (build_models(config.model, spec.shape, axis_name, spec.num_classes or 0) if axis_name
                else (g_model, d_model))
        return make_train_step(config, g, d, g_tx, d_tx, axis_name, num_devices, spec.num_classes or 0, r1_due)

    # Lazy R1 one step a dispatch: a Runner with the R1 step and one without, picked per step.
    runner_at = r1_programs(config, lambda due: Runner(config.parallel, functools.partial(build_step, r1_due=due),
                                                       devices))
    runner = runner_at(0)  # every Runner places states and batches alike
    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
    step = 0
    lr_scale = 1.0
    restored = checkpointer.restore_latest(state, allow_fresh_start)
    if restored is not None:
        state, meta, step = restored
        iterator.seek(meta["data_position"])
        lr_scale = meta.get("lr_scale", 1.0)
        log.info("Resuming from step %d in %s", step, workdir)
    writers.truncate_metrics(workdir / "metrics.jsonl", step)
    writer = writers.MetricWriter(workdir)
    bar = writers.Progress(config.num_steps, step, enabled=progress)
    if spec.kind == "text":
        text_run.save_tokenizer(workdir, spec)
        if restored is None:  # MLE pretraining phase, before adversarial step 0
            state = text_run.pretrain(config, g_model, state, iterator.arrays["x"], writer, bar.write)
    if step == 0:
        bar.write(f"gan_jax: {config.data.source}, G {config.model.generator} "
                  f"({count_params(state.g.params):,} params), D {config.model.discriminator} "
                  f"({count_params(state.d.params):,} params), {config.num_steps} steps, parallel={runner.mode} "
                  f"on {runner.num_devices} {jax.default_backend()} device(s) -> {workdir}")

    def run_eval(host_state, at_step):
        return evaluate.evaluate_and_save(g_model, host_state, spec, config, workdir, at_step, writer)

    def save(at_step):
        checkpointer.save(at_step, runner.get_state(device_state), {"data_position": iterator.position,
                                                                    "step": at_step, "lr_scale": lr_scale})

    device_state = runner.put_state(state)
    del state

    def place(batch):  # [chunk * n_critic, B, ...] host rows -> [chunk, n_critic, B, ...] on the devices
        return runner.put_batch({key: v.reshape((-1, config.n_critic) + v.shape[1:]) for key, v in batch.items()})

    prefetcher = Prefetcher(iterator, place, enabled=config.data.prefetch)
    watch = runguard.DivergenceWatch()
    rollbacks = 0
    k = config.steps_per_dispatch
    per_batch = config.n_critic
    last_train: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    timer_step, timer = step, time.time()
    wait_mark, timer_wall = 0.0, timer  # data-wait accounting over all wall time between logs
    first_step_sec = None
    try:
        while step < config.num_steps:
            # Chunks end on multiples of k so a resumed run dispatches exactly the same programs.
            chunk = min(k - step % k, config.num_steps - step)
            upcoming = min(k, config.num_steps - step - chunk)  # the chunk after this one
            batch = prefetcher.next(chunk * per_batch, upcoming * per_batch)
            device_state, metrics = runner_at(step).step(device_state, batch)
            if first_step_sec is None:  # start-up time, process start to first step done (one sync, once)
                jax.block_until_ready(metrics)
                first_step_sec = startup.process_age_sec()
                log.info("First %d step(s) done %.2f s after process start", chunk, first_step_sec)
            before, step = step, step + chunk
            watch.observe(metrics, step)
            final = step == config.num_steps
            stopping = stop.requested and not final  # read once: a signal may arrive during this iteration
            do_log = crossed(before, step, config.log_every_steps) or final
            do_eval = crossed(before, step, config.eval_every_steps) or final
            do_save = crossed(before, step, config.ckpt_every_steps) or final or stopping
            if do_log or do_eval or do_save:
                bad = watch.pull()  # the loop syncs here anyway; a diverged state is never saved
                if bad:
                    at, what = runguard.describe_divergence(bad, k)
                    good = checkpointer.latest_step()
                    if on_divergence != "rollback" or good is None or rollbacks >= max_rollbacks:
                        reason = ("no checkpoint to roll back to" if good is None else
                                  f"{rollbacks} rollback(s) already tried") if on_divergence == "rollback" else ""
                        raise runguard.DivergenceError(
                            f"{what}{f' ({reason})' if reason else ''}. The last good checkpoint is "
                            f"{f'step {good}' if good is not None else 'none'} in {checkpointer.directory}. Lower "
                            "the learning rates or add a regularizer, or rerun with --on_divergence=rollback.")
                    rollbacks += 1
                    lr_scale *= rollback_lr_factor
                    host, meta, step = checkpointer.restore_latest(runner.get_state(device_state))
                    host = host.replace(g=host.g.replace(opt_state=runguard.scale_learning_rates(
                        host.g.opt_state, rollback_lr_factor)), d=host.d.replace(
                        opt_state=runguard.scale_learning_rates(host.d.opt_state, rollback_lr_factor)))
                    device_state = runner.put_state(host)
                    del host
                    iterator.seek(meta["data_position"])
                    writer.close()
                    writers.truncate_metrics(workdir / "metrics.jsonl", step)
                    writer = writers.MetricWriter(workdir)
                    watch.reset()
                    bar.write(f"gan_jax: {what}; rolled back to step {step} and continuing with the learning "
                              f"rates x{lr_scale:g} (rollback {rollbacks} of at most {max_rollbacks}).")
                    bar.update(step)
                    timer_step, timer = step, time.time()
                    continue
            if do_log:
                metrics = jax.device_get(metrics)
                now = time.time()
                steps_per_sec = (step - timer_step) / max(now - timer, 1e-9)
                timer_step, timer = step, now
                last_train = {f"train/{name}": float(v) for name, v in metrics.items()}
                last_train["train/steps_per_sec"] = steps_per_sec
                # Share of the wall time since the last log that the loop waited for input data.
                last_train["train/data_wait_frac"] = (prefetcher.wait_sec - wait_mark) / max(now - timer_wall, 1e-9)
                wait_mark, timer_wall = prefetcher.wait_sec, now
                writer.write_scalars(step, last_train)
                bar.update(step, {"d_loss": last_train["train/d_loss"], "g_loss": last_train["train/g_loss"],
                                  "steps/s": steps_per_sec, **last_eval})
            if do_eval:
                last_eval = run_eval(runner.get_state(device_state), step)
                writer.write_scalars(step, last_eval)
                bar.update(step, {**last_eval})
                timer_step, timer = step, time.time()
            if do_save:
                save(step)
                timer_step, timer = step, time.time()
            if stopping:
                bar.close()
                message = (f"Stopped by {stop.name} at step {step} of {config.num_steps}; checkpoint saved in "
                           f"{checkpointer.directory / str(step)}. Run the same command to resume.")
                return {"step": step, "stopped_by": stop.name, "message": message,
                        "metrics": {**last_train, **last_eval}, "wall_time_sec": time.time() - start_time}
        if not last_eval:  # resumed a finished run: report its final numbers again
            last_eval = run_eval(runner.get_state(device_state), step)
    finally:
        prefetcher.close()
        bar.close()
        writer.close()
        checkpointer.close()
    summary = {
        "step": step,
        "metrics": {**last_train, **last_eval},
        "wall_time_sec": time.time() - start_time,
        "train_steps_per_sec": last_train.get("train/steps_per_sec"),
        "first_step_sec": first_step_sec,
        "versions": versions(),
    }
    if rollbacks or lr_scale != 1.0:
        summary["lr_scale"] = lr_scale
    write_atomic(workdir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
