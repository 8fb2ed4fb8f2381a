"""`log`: the last dispatch's `train/*` metrics, steps/s and the share of training time spent waiting for
data, to every run's writers and the progress bar, every `log_every_steps`."""

from __future__ import annotations

import jax

from gan_jax.loop.actions.base import PeriodicAction, register_action


@register_action
class LogMetrics(PeriodicAction):
    name = "log"
    order = 20
    syncs = True

    def __init__(self, every_steps: int):
        super().__init__(every_steps=every_steps)
        self._mark = (0, 0.0, 0.0)  # the throughput meter: (step, training seconds, data-wait seconds) at the last log

    @classmethod
    def from_config(cls, config, blueprint, num_runs):
        return cls(config.log_every_steps)

    def reset(self, step):
        self._mark = (step, 0.0, 0.0)  # the loop's clocks start from zero at every (re)start

    def run(self, ctx):
        step0, secs0, wait0 = self._mark
        elapsed = max(ctx.train_secs - secs0, 1e-9)
        steps_per_sec = (ctx.tick.step - step0) / elapsed
        wait = (ctx.data_wait_secs - wait0) / elapsed
        self._mark = (ctx.tick.step, ctx.train_secs, ctx.data_wait_secs)
        metrics = jax.device_get(ctx.tick.metrics)
        for run, values in zip(ctx.runs, ctx.run_metrics(metrics)):
            run.last_train = {f"train/{name}": float(v) for name, v in values.items()}
            run.last_train["train/steps_per_sec"] = steps_per_sec
            run.last_train["train/data_wait_frac"] = wait
            run.writer.write_scalars(ctx.tick.step, run.last_train)
        first = ctx.runs[0].last_train
        shown = {"d_loss": first["train/d_loss"], "g_loss": first["train/g_loss"], "steps/s": steps_per_sec}
        if len(ctx.runs) > 1:
            shown["run-steps/s"] = steps_per_sec * len(ctx.runs)
        ctx.bar.update(ctx.tick.step, {**shown, **ctx.runs[0].last_eval})
