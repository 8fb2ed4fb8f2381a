"""The periodic work of the training loop, as small actions with one "is it time" rule.

After every dispatch of k steps the trainer hands each action a `Tick` (the steps before and
after it, the dispatch's metrics still on the device, whether it was the last one or a stop
was asked for). An action with a period acts when a multiple of its period lies in the steps
just run (`crossed`), so k-step jumps never skip one, and on the last step. The order is the
order of the list: the divergence guard first (it syncs only when another action is about to),
then logging, evaluation, the checkpoint and the progress bar.

An action works on the trainer's runs (`trainer.runs`): one for `train`, R for a stacked vmap
group, each with its own config, workdir, writer and checkpointer.

With several processes every process runs every action at the same ticks (their device work
and collectives stay in step); the writers of processes other than 0 write nothing, evaluation
runs on process 0 alone (on its copy of the replicated state), checkpoints are written by all
of them together, and the divergence guard's decision is the same everywhere.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax

from gan_jax.errors import DivergenceError
from gan_jax.loop import distributed, runguard


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: is it time to log / eval / save."""
    return after // every > before // every


@dataclasses.dataclass(frozen=True)
class Tick:
    before: int  # steps done before the dispatch
    step: int  # steps done after it
    metrics: dict  # the dispatch's metrics (on the device; a leading runs axis for a stack)
    final: bool  # the run's last step
    stopping: bool  # a stop signal arrived: save and stop after this dispatch

    def due(self, every: int) -> bool:
        return crossed(self.before, self.step, every) or self.final


class Action:
    """`__call__(trainer, tick)`; returns True when it moved the loop elsewhere (a rollback)."""

    syncs = False  # it pulls values off the device when it acts (the guard checks before it does)

    def is_due(self, tick: Tick) -> bool:
        return False

    def __call__(self, trainer, tick: Tick) -> bool | None:
        raise NotImplementedError


class LogMetrics(Action):
    """`train/*` metrics of the last dispatch, steps/s since the last log and the share of that time the
    loop waited for data, to every run's writers and the progress bar."""

    syncs = True

    def __init__(self, every: int):
        self.every = every

    def is_due(self, tick):
        return tick.due(self.every)

    def __call__(self, trainer, tick):
        if not self.is_due(tick):
            return
        metrics = jax.device_get(tick.metrics)
        now = time.time()
        steps_per_sec = (tick.step - trainer.timer_step) / max(now - trainer.timer, 1e-9)
        wait = (trainer.prefetcher.wait_sec - trainer.wait_mark) / max(now - trainer.timer_wall, 1e-9)
        trainer.wait_mark, trainer.timer_wall = trainer.prefetcher.wait_sec, now
        trainer.reset_timer(tick.step)
        for run, values in zip(trainer.runs, trainer.runner.run_metrics(metrics)):
            run.last_train = {f"train/{name}": float(v) for name, v in values.items()}
            run.last_train["train/steps_per_sec"] = steps_per_sec
            run.last_train["train/data_wait_frac"] = wait
            run.writer.write_scalars(tick.step, run.last_train)
        first = trainer.runs[0].last_train
        shown = {"d_loss": first["train/d_loss"], "g_loss": first["train/g_loss"], "steps/s": steps_per_sec}
        if len(trainer.runs) > 1:
            shown["run-steps/s"] = steps_per_sec * len(trainer.runs)
        trainer.bar.update(tick.step, {**shown, **trainer.runs[0].last_eval})


class Evaluate(Action):
    """Each run's periodic evaluation (`evaluate(run, host_state, step) -> {"eval/...": value}`), on process 0."""

    syncs = True

    def __init__(self, every: int, evaluate: Callable[[Any, Any, int], dict]):
        self.every = every
        self.evaluate = evaluate

    def is_due(self, tick):
        return tick.due(self.every)

    def __call__(self, trainer, tick):
        if not self.is_due(tick):
            return
        states = trainer.host_states()  # on every process: a stack spread over processes gathers here
        if trainer.primary:
            for run, state in zip(trainer.runs, states):
                run.last_eval = self.evaluate(run, state, tick.step)
                run.writer.write_scalars(tick.step, run.last_eval)
        trainer.bar.update(tick.step, dict(trainer.runs[0].last_eval))
        trainer.reset_timer(tick.step)


class Checkpoint(Action):
    """Every run's state and data position, at its period, on the last step and when stopping."""

    syncs = True

    def __init__(self, every: int):
        self.every = every

    def is_due(self, tick):
        return tick.due(self.every) or tick.stopping

    def __call__(self, trainer, tick):
        if not self.is_due(tick):
            return
        for run, state in zip(trainer.runs, trainer.host_states()):
            run.checkpointer.save(tick.step, state, {"data_position": trainer.data.position, "step": tick.step,
                                                     "lr_scale": run.lr_scale})
        trainer.reset_timer(tick.step)


class Progress(Action):
    """Moves the progress bar (no device sync)."""

    def __call__(self, trainer, tick):
        trainer.bar.update(tick.step)


class DivergenceGuard(Action):
    """Non-finite losses or gradient norms, recorded on the device each dispatch and read where the loop
    syncs anyway, so a diverged state is never logged as good or saved. `on_divergence="stop"` raises
    `DivergenceError`; "rollback" restores every run's newest checkpoint, multiplies the learning
    rates of the runs that diverged by `lr_factor` (they live in the optimizer state) and goes on, at
    most `max_rollbacks` times."""

    def __init__(self, num_runs: int, steps_per_dispatch: int, on_divergence: str = "stop", lr_factor: float = 0.5,
                 max_rollbacks: int = 3):
        self.watch = runguard.DivergenceWatch(num_runs)
        self.k = steps_per_dispatch
        self.on_divergence = on_divergence
        self.lr_factor = lr_factor
        self.max_rollbacks = max_rollbacks
        self.rollbacks = 0

    def __call__(self, trainer, tick):
        self.watch.observe(tick.metrics, tick.step)
        if not any(a.syncs and a.is_due(tick) for a in trainer.actions):
            return
        bad = self.watch.pull()
        # The metrics are replicated, so every process finds the same; agreeing makes it certain.
        agreed = distributed.agree_max([bool(b) for b in bad])
        if not agreed.any():
            return
        diverged = [i for i, b in enumerate(agreed) if b]
        described = [runguard.describe_divergence(bad[i], self.k)[1] if bad[i] else
                     "non-finite metrics on another process" for i in diverged]
        what = "; ".join(f"{trainer.runs[i].name}: {d}" if len(trainer.runs) > 1 else d
                         for i, d in zip(diverged, described))
        good = trainer.runs[0].checkpointer.latest_step()
        if self.on_divergence != "rollback" or good is None or self.rollbacks >= self.max_rollbacks:
            reason = ("no checkpoint to roll back to" if good is None else
                      f"{self.rollbacks} rollback(s) already tried") if self.on_divergence == "rollback" else ""
            where = trainer.runs[0].checkpointer.directory if len(trainer.runs) == 1 else "each run's checkpoints/"
            raise DivergenceError(
                f"{what}{f' ({reason})' if reason else ''}. The last good checkpoint is "
                f"{f'step {good}' if good is not None else 'none'} in {where}. Lower the learning rates or add a "
                "regularizer, or rerun with --on_divergence=rollback.")
        self.rollbacks += 1
        step = trainer.restore(scale={i: self.lr_factor for i in diverged})
        self.watch.reset()
        if trainer.primary:
            trainer.bar.write(f"gan_jax: {what}; rolled back to step {step} and continuing with the learning rates "
                              f"x{self.lr_factor:g} (rollback {self.rollbacks} of at most {self.max_rollbacks}).")
        return True


def default_actions(config, num_runs: int, evaluate, on_divergence: str = "stop", lr_factor: float = 0.5,
                    max_rollbacks: int = 3) -> list[Action]:
    """The loop's actions for a config: guard, log, evaluate, checkpoint, progress."""
    return [DivergenceGuard(num_runs, config.steps_per_dispatch, on_divergence, lr_factor, max_rollbacks),
            LogMetrics(config.log_every_steps), Evaluate(config.eval_every_steps, evaluate),
            Checkpoint(config.ckpt_every_steps), Progress()]

