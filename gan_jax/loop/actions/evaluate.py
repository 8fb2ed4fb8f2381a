"""`evaluate`: each run's periodic evaluation (pictures and metrics, as its modality defines them, see
`loop.modalities`) every `eval_every_steps` and at the end, on process 0."""

from __future__ import annotations

import time

from gan_jax.loop.actions.base import PeriodicAction, register_action
from gan_jax.loop.modalities import modality


@register_action
class Evaluate(PeriodicAction):
    name = "evaluate"
    order = 30
    syncs = True

    def __init__(self, every_steps: int):
        super().__init__(every_steps=every_steps)

    @classmethod
    def from_config(cls, config, blueprint, num_runs):
        return cls(config.eval_every_steps)

    def run(self, ctx):
        states = ctx.states()  # on every process: a stack spread over processes gathers here
        if ctx.primary:
            for run, state in zip(ctx.runs, states):
                started = time.perf_counter()
                run.last_eval = evaluate(ctx.blueprint, run, state, ctx.tick.step)
                # What an evaluation costs (written, not shown): to predict a long run's time from a short one.
                run.writer.write_scalars(ctx.tick.step, {**run.last_eval,
                                                         "eval/seconds": time.perf_counter() - started})
        ctx.bar.update(ctx.tick.step, dict(ctx.runs[0].last_eval))


def evaluate(blueprint, run, state, step: int) -> dict:
    """One run's evaluation at `step`: {"eval/NAME": value}, pictures under its samples/."""
    return modality(blueprint.spec.kind).evaluate(blueprint, state, run.config, run.workdir, step, run.writer)
