"""The one training loop: `train_and_evaluate(config, workdir)` for a run, `train_stack` for a vmap group.

Both build everything first (`blueprint.setup_run`: any mistake in the config or the data stops
here, before a file is written), take the workdir locks, write `config.json`, resume from the
newest intact checkpoint, and then hand the same `Trainer` a runner and their runs. The trainer
dispatches chunks of `steps_per_dispatch` steps, loading the next chunk of batches on a
background thread, and after each chunk calls the actions (`loop.actions`: divergence guard,
log, evaluate, checkpoint, progress). SIGTERM / SIGINT stop it after the current chunk with a
checkpoint of every run; `summary.json` is written (atomically) only when a run finishes.

Under `jax.distributed` (several processes, see `loop.distributed`) every process runs this same
loop on its own rows of the global batch. Process 0 alone takes the workdir lock, writes
config.json, metrics, TensorBoard, samples and summary.json; the others wait for it and stop with
the same error when it cannot. Checkpoints go through Orbax's multi-process path (every process
takes part; the replicated state is written once, by process 0, and renamed into place when
complete). A stop signal on any process stops all of them after the same dispatch, and the
divergence guard's decision is agreed, so a rollback restores the same checkpoint everywhere.
The checkpoint holds one copy of the replicated state, so a run resumes under any number of
processes and devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import platform
import signal
import time
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from gan_jax.core.parallel import DispatchWindow
from gan_jax.core.state import count_params
from gan_jax.core.step import LastApplied
from gan_jax.data.prefetch import Prefetcher
from gan_jax.errors import ConfigError
from gan_jax.loop import actions as actions_lib
from gan_jax.loop import distributed, resume, rundir, runguard, writers
from gan_jax.loop.actions import evaluate as evaluate_action
from gan_jax.loop.blueprint import Blueprint, setup_run
from gan_jax.loop.checkpoint import Checkpointer
from gan_jax.loop.modalities import modality

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


_IMPORT_TIME = time.time()


def process_age_sec() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere since gan_jax was imported)."""
    try:
        start_ticks = int(pathlib.Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(pathlib.Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time() - _IMPORT_TIME


@dataclasses.dataclass
class Run:
    """One run the loop trains: its config, its workdir and what writes into it."""

    name: str
    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    writer: writers.MetricWriter
    checkpointer: Checkpointer
    lr_scale: float = 1.0  # product of the rollbacks' learning-rate factors
    last_train: dict = dataclasses.field(default_factory=dict)
    last_eval: dict = dataclasses.field(default_factory=dict)

    def reopen_writer(self, step: int) -> None:
        """Drops metrics after `step` (a rollback) and opens the writers again."""
        self.writer.close()
        self.writer = _open_writer(self.config, self.workdir, step)


def _open_writer(config: ml_collections.ConfigDict, workdir: pathlib.Path, step: int) -> writers.MetricWriter:
    """The run's writers, metrics.jsonl cut back to `step`; on processes other than 0, a writer of nothing."""
    if not distributed.is_primary():
        return writers.MetricWriter()
    writers.truncate_metrics(workdir / "metrics.jsonl", step)
    return writers.make_writer(config, workdir)


class StackedData:
    """The iterators of a stack of runs, advanced together: batches [R, count, B, ...], one position."""

    def __init__(self, iterators: Sequence):
        self.iterators = list(iterators)

    @property
    def position(self) -> int:
        return self.iterators[0].position

    @position.setter
    def position(self, value: int) -> None:
        for it in self.iterators:
            it.position = value

    def seek(self, position: int) -> None:
        self.position = position

    def batches_at(self, position: int, count: int) -> dict[str, np.ndarray]:
        parts = [it.batches_at(position, count) for it in self.iterators]
        return {k: np.stack([p[k] for p in parts]) for k in parts[0]}


class Trainer:
    """Advances a (single or stacked) device state over chunks of steps and runs the actions.

    At most `MAX_IN_FLIGHT` dispatches wait on the devices (`core.parallel.DispatchWindow`): the
    devices stay busy, and the host never queues the dozens of multi-device computations that
    deadlock XLA:CPU.
    """

    MAX_IN_FLIGHT = 2

    def __init__(self, runner_at, runs: list[Run], data, state, blueprint: Blueprint,
                 actions: list[actions_lib.PeriodicAction], bar: writers.Progress):
        config = blueprint.config
        self.blueprint = blueprint
        self.runner_at = runner_at
        self.runner = runner_at(0)  # every runner of a run places states and batches alike
        self.runs = runs
        self.data = data
        self.actions = actions
        self.bar = bar
        self.primary = distributed.is_primary()  # the process that writes the runs' files
        # With several processes a stop signal is agreed at dispatch boundaries (one dispatch late).
        self.stop_vote = distributed.StopVote() if jax.process_count() > 1 else None
        self.state = self.runner.put_state(state)
        self.first_step_sec: float | None = None
        runs_axis = 1 if self.stacked else 0
        n_critic = config.n_critic

        def place(batch):  # host rows [..., chunk * n_critic, B, ...] -> [..., chunk, n_critic, B, ...] on the devices
            return self.runner.put_batch({key: v.reshape(v.shape[:runs_axis] + (-1, n_critic)
                                                         + v.shape[runs_axis + 1:]) for key, v in batch.items()})

        self.prefetcher = Prefetcher(data, place, enabled=config.data.prefetch)
        self.train_secs = self.wait_base = 0.0  # training time and the data wait before it, since the (re)start
        self.dispatches = 0
        self.window = DispatchWindow(self.MAX_IN_FLIGHT)
        self.last_applied = LastApplied()  # lazy terms' metrics: their last computed values
        self._host: tuple[int, list] | None = None

    @property
    def stacked(self) -> bool:
        return self.runner.mode == "vmap"

    def host_states(self) -> list:
        """Each run's state as one host-side copy (cached until the next dispatch).

        Every process calls it at the same points (a stack spread over processes gathers here),
        also where only process 0 goes on to use the states."""
        if self._host is None or self._host[0] != self.dispatches:
            if self.stacked:
                stacked = jax.device_get(self.runner.get_state(self.state))
                states = [self.runner.unstack(stacked, i) for i in range(len(self.runs))]
            else:
                states = [self.runner.get_state(self.state)]
            self._host = (self.dispatches, states)
        return self._host[1]

    def restore(self, scale: dict[int, float] | None = None) -> int:
        """Every run back to its newest checkpoint (the learning rates of run i times `scale[i]`); the step."""
        states, steps, position = [], set(), None
        for i, (run, like) in enumerate(zip(self.runs, self.host_states())):
            state, meta, step = run.checkpointer.restore_latest(like)
            factor = (scale or {}).get(i)
            if factor is not None:  # the same factors on every process: the guard's decision is agreed
                run.lr_scale *= factor
                state = state.replace(
                    g=state.g.replace(opt_state=runguard.scale_learning_rates(state.g.opt_state, factor)),
                    d=state.d.replace(opt_state=runguard.scale_learning_rates(state.d.opt_state, factor)))
            states.append(state)
            steps.add(step)
            position = meta["data_position"]
            run.reopen_writer(step)
        (step,) = steps
        self.state = self.runner.put_state(self.runner.stack(states))
        self.dispatches += 1
        self.data.seek(position)
        self.bar.update(step)
        return step

    def _restart(self, step: int) -> None:
        """The loop (re)starts at `step`: its clocks from zero, every action told."""
        self.train_secs, self.wait_base = 0.0, self.prefetcher.wait_sec
        for action in self.actions:
            action.reset(step)

    def run(self, step: int, stop: runguard.StopRequest) -> tuple[int, str | None]:
        """Trains from `step` to `num_steps`; returns (the step reached, the stop signal's name or None)."""
        self._restart(step)
        config = self.blueprint.config
        k, n_critic, num_steps = config.steps_per_dispatch, config.n_critic, config.num_steps
        try:
            while step < num_steps:
                started = time.perf_counter()
                # Chunks end on multiples of k so a resumed run dispatches exactly the same programs.
                chunk = min(k - step % k, num_steps - step)
                upcoming = min(k, num_steps - step - chunk)  # the chunk after this one
                batch = self.prefetcher.next(chunk * n_critic, upcoming * n_critic)
                self.state, metrics = self.runner_at(step).step(self.state, batch)
                metrics = self.last_applied(metrics)
                self.dispatches += 1
                self.window.add(metrics)
                if self.first_step_sec is None:  # start-up time, process start to first step done (one sync, once)
                    jax.block_until_ready(metrics)
                    self.first_step_sec = process_age_sec()
                    if self.primary:  # through the bar, so the message gets a line of its own
                        self.bar.write(f"First {chunk} step(s) done {self.first_step_sec:.2f} s after process start")
                before, step = step, step + chunk
                final = step == num_steps
                signum = stop.signum or 0
                if self.stop_vote is not None:  # every process stops after the same dispatch
                    signum = self.stop_vote(signum)
                tick = actions_lib.Tick(before, step, metrics, final, bool(signum) and not final)
                syncing = any(a.syncs and a.is_due(tick) for a in self.actions)
                if syncing:  # the actions would wait for the devices anyway: that wait is training time
                    jax.block_until_ready(metrics)
                self.train_secs += time.perf_counter() - started
                context = self._context(tick, syncing)
                try:
                    for action in self.actions:
                        action(context)
                except actions_lib.Rollback as rollback:  # continue from the restored step
                    step = self.restore(rollback.scale)
                    if self.primary:
                        self.bar.write(f"gan_jax: {rollback.message}")
                    self._restart(step)
                    continue
                if tick.stopping:
                    return step, signal.Signals(signum).name
            return step, None
        finally:
            self.prefetcher.close()

    def _context(self, tick: actions_lib.Tick, syncing: bool) -> actions_lib.Context:
        return actions_lib.Context(tick, self.runs, self.host_states, self.runner.run_metrics, self.data.position,
                                   self.blueprint, self.bar, self.primary, self.train_secs,
                                   self.prefetcher.wait_sec - self.wait_base, syncing)


def _open_run(name: str, config: ml_collections.ConfigDict, workdir: pathlib.Path, state, iterator, spec,
              allow_config_change: Sequence[str], allow_fresh_start: bool) -> tuple[Run, Any, int]:
    """The run's config written, its newest checkpoint restored (with the per-run values the config changed
    written into it, `loop.resume`), its writers opened: (run, state, step).

    Process 0 writes; every process restores (the same checkpoint) and opens its checkpointer."""

    def prepare():
        found = rundir.write_config(workdir, config, allow_config_change, data_shape=spec.shape,
                                    num_classes=spec.num_classes or 0)
        (workdir / "samples").mkdir(exist_ok=True)
        return json.dumps([dataclasses.asdict(c) for c in found])

    found = distributed.on_primary(prepare, "open_run")
    if jax.process_count() > 1:
        found = distributed.broadcast_text(found or "", "config_changes")
    found = [resume.Change(**c) for c in json.loads(found)]
    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
    step, lr_scale = 0, 1.0
    restored = checkpointer.restore_latest(state, allow_fresh_start)
    if restored is not None:
        state, meta, step = restored
        iterator.seek(meta["data_position"])
        lr_scale = meta.get("lr_scale", 1.0)
        state, applied = resume.apply_changes(state, config, found, lr_scale)
        if distributed.is_primary():
            log.info("Resuming from step %d in %s", step, workdir)
            if applied:
                log.warning("Per-run values changed on resume, written into the restored state: %s.",
                            ", ".join(map(str, applied)))
            rest = [c for c in found if c not in applied]
            if rest:
                log.warning("Changed config keys, taken from the new config: %s.", ", ".join(map(str, rest)))
    writer = distributed.on_primary(lambda: _open_writer(config, workdir, step), "writers")
    run = Run(name, config, workdir, writer or writers.MetricWriter(), checkpointer, lr_scale)
    return run, state, step


@contextlib.contextmanager
def _locked(workdir: pathlib.Path):
    """The workdir's lock, held by process 0; every process stops when it cannot be had."""
    lock = runguard.WorkdirLock(workdir)

    def take():
        workdir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        if lock.stale_owner:
            log.info("Took over the lock of an earlier run that is gone (pid %s on %s).",
                     lock.stale_owner.get("pid"), lock.stale_owner.get("host"))

    distributed.on_primary(take, "lock")
    try:
        yield lock
    finally:
        lock.release()


def _summary(run: Run, step: int, start_time: float, first_step_sec, data_kind: str, **extra) -> dict:
    summary = {"step": step, "data_kind": data_kind, "metrics": {**run.last_train, **run.last_eval},
               "wall_time_sec": time.time() - start_time,
               "train_steps_per_sec": run.last_train.get("train/steps_per_sec"), "first_step_sec": first_step_sec,
               "versions": versions(), **extra}
    if run.lr_scale != 1.0:
        summary["lr_scale"] = run.lr_scale
    return summary


def _train(blueprint: Blueprint, iterators: list, runs: list[Run], states: list, step: int, stacked: bool,
           progress: bool, start_time: float, devices=None, devices_per_run: int = 1, **summary_extra) -> dict[str, Any]:
    """The loop over one run or a stack; returns the first run's summary (with "stopped_by" when stopped),
    the same on every process."""
    config = blueprint.config
    primary = distributed.is_primary()
    runner_at = blueprint.runners(devices, num_runs=len(runs) if stacked else None, devices_per_run=devices_per_run)
    data = StackedData(iterators) if stacked else iterators[0]
    bar = writers.Progress(config.num_steps, step, enabled=progress and primary)
    trainer = Trainer(runner_at, runs, data, runner_at(0).stack(states) if stacked else states[0],
                      blueprint, actions_lib.build_actions(config, blueprint, len(runs)), bar)
    if step == 0 and primary:
        what = f"{len(runs)} stacked runs" if stacked else f"parallel={trainer.runner.mode}"
        hosts = f" of {jax.process_count()} processes" if jax.process_count() > 1 else ""
        bar.write(f"gan_jax: {config.data.source}, G {config.model.generator} "
                  f"({count_params(states[0].g.params):,} params), D {config.model.discriminator} "
                  f"({count_params(states[0].d.params):,} params), {blueprint.objective}, {config.num_steps} steps, "
                  f"{what} on {trainer.runner.num_devices} {jax.default_backend()} device(s){hosts} -> "
                  f"{runs[0].workdir if len(runs) == 1 else runs[0].workdir.parent}")
    try:
        with runguard.StopRequest() as stop:
            step, stopped_by = trainer.run(step, stop)
        if stopped_by:
            bar.close()
            where = runs[0].checkpointer.directory / str(step) if len(runs) == 1 else "each run's checkpoints/"
            message = (f"Stopped by {stopped_by} at step {step} of {config.num_steps}; checkpoint saved in {where}. "
                       "Run the same command to resume.")
            return {"step": step, "stopped_by": stopped_by, "message": message,
                    "metrics": {**runs[0].last_train, **runs[0].last_eval}, "wall_time_sec": time.time() - start_time}
        for run, state in zip(runs, trainer.host_states()):
            if not run.last_eval and primary:  # resumed a finished run: report its final numbers again
                run.last_eval = evaluate_action.evaluate(blueprint, run, state, step)
    finally:
        bar.close()
        for run in runs:
            run.writer.close()
            run.checkpointer.close()
    summaries = [_summary(run, step, start_time, trainer.first_step_sec, blueprint.spec.kind, **summary_extra)
                 for run in runs]

    def write_summaries():
        for run, summary in zip(runs, summaries):
            rundir.write_atomic(run.workdir / "summary.json", json.dumps(summary, indent=2) + "\n")

    distributed.on_primary(write_summaries, "summaries")
    if jax.process_count() == 1:
        return summaries[0]
    return json.loads(distributed.broadcast_text(json.dumps(summaries[0]), "summary"))  # process 0's numbers


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
                       progress: bool = True, *, allow_config_change: Sequence[str] = (),
                       allow_fresh_start: bool = False) -> dict[str, Any]:
    """Trains (or resumes) the run in `workdir`; returns the final summary.

    Everything that can be checked (config, data, models) is checked before anything is
    written. SIGTERM / SIGINT stop the run after the current dispatch with a checkpoint; the
    summary then has `"stopped_by"` set and is not written to summary.json. A non-finite loss
    or gradient raises `DivergenceError`, or with `guard.on_divergence="rollback"` restores the newest
    checkpoint and continues with the learning rates times `guard.rollback_lr_factor` (at most
    `guard.max_rollbacks` times).

    In a job of several processes (`jax.distributed`), every process calls this with the same
    arguments and trains on its rows of each global batch, over all processes' devices
    (`parallel=jit` or `pmap`); see the module docstring for who writes what.
    """
    start_time = time.time()
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir {workdir} is a file, not a folder; give a folder for the run (a new one, or "
                          "the run's own to resume).")
    devices = jax.devices()
    processes = jax.process_count()
    if processes > 1 and config.parallel == "none":
        raise ConfigError(f"parallel='none' trains on one device, but this job has {processes} processes; use "
                          "--config.parallel=jit (or pmap) to train on the devices of all of them.")
    actions_lib.check_config(config)
    blueprint, iterator = setup_run(config, len(devices), jax.process_index(), processes)
    spec = blueprint.spec
    with _locked(workdir):
        run, state, step = _open_run(workdir.name, config, workdir, blueprint.init_state(), iterator, spec,
                                     allow_config_change, allow_fresh_start)
        state = modality(spec.kind).before_training(blueprint, state, iterator, workdir,
                                                    step == 0 and run.checkpointer.latest_step() is None,
                                                    run.writer, distributed.is_primary())
        return _train(blueprint, [iterator], [run], [state], step, False, progress, start_time, devices)


def train_stack(configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | pathlib.Path],
                names: Sequence[str] | None = None, progress: bool = True, *, devices: Sequence | None = None,
                devices_per_run: int = 1) -> list[dict[str, Any]]:
    """Trains (or resumes) runs that differ only in per-run values (seed, hyperparameters in the state)
    as one vmapped program, through the same loop as a single run; each run writes its own workdir
    exactly as `train_and_evaluate` would. Returns the runs' summaries.

    The runs are sharded over `devices` (default: every device of the job; see
    `core.parallel.run_mesh` for how a group that does not divide evenly is placed), each run's
    batch over `devices_per_run` of them. With several processes every process calls this with
    the same arguments and loads every run's batches; each places its own runs' shards, and
    process 0 writes every run's workdir (the states are gathered for its checkpoints and
    evaluations)."""
    start_time = time.time()
    if len(configs) != len(workdirs):
        raise ValueError("train_stack needs one workdir per config.")
    actions_lib.check_config(configs[0])
    if configs[0].parallel != "none":
        raise ConfigError("--mode vmap places the stacked runs over the devices itself; use parallel=none for the "
                          "runs.")
    if configs[0].batch_size % devices_per_run:
        raise ConfigError(f"batch_size {configs[0].batch_size} is not divisible by the {devices_per_run} devices "
                          "of each run; use a multiple of them.")
    # Every process loads every run's whole batches. The runs share one program: the first run's blueprint
    # builds it, and each run's own blueprint its initial state.
    setups = [setup_run(c, devices_per_run) for c in configs]
    if not modality(setups[0][0].spec.kind).stackable:
        raise ConfigError(f"--mode vmap does not support {setups[0][0].spec.kind} runs yet; use --mode local.")
    workdirs = [pathlib.Path(w) for w in workdirs]
    names = list(names or [w.name for w in workdirs])
    with contextlib.ExitStack() as locks:
        opened = []
        for name, (blueprint, iterator), wd in zip(names, setups, workdirs):
            locks.enter_context(_locked(wd))
            opened.append(_open_run(name, blueprint.config, wd, blueprint.init_state(), iterator, blueprint.spec, (),
                                    False))
        steps = [s for _, _, s in opened]
        if len(set(steps)) != 1:
            raise ConfigError(f"the runs of this vmap group stopped at different steps ({steps}); finish them with "
                              "--mode local.")
        runs, states = [r for r, _, _ in opened], [s for _, s, _ in opened]
        summary = _train(setups[0][0], [it for _, it in setups], runs, states, steps[0], True, progress, start_time,
                         devices, devices_per_run, vmap_group_size=len(runs))
    if summary.get("stopped_by"):
        return [summary]
    return [json.loads((wd / "summary.json").read_text()) for wd in workdirs]  # written before _train returned
