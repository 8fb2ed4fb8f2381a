"""`evaluate`: each run's periodic evaluation (samples, pictures and the data kind's metrics, see
`loop.evaluation`) every `eval_every_steps` and at the end, on process 0."""

from __future__ import annotations

from gan_jax.loop import evaluation
from gan_jax.loop.actions.base import PeriodicAction, register_action


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
                run.last_eval = evaluate(ctx.blueprint, run, state, ctx.tick.step)
                run.writer.write_scalars(ctx.tick.step, run.last_eval)
        ctx.bar.update(ctx.tick.step, dict(ctx.runs[0].last_eval))


def evaluate(blueprint, run, state, step: int) -> dict:
    """One run's evaluation at `step`: {"eval/NAME": value}, pictures under its samples/."""
    return evaluation.evaluate_and_save(blueprint.g_model, state, blueprint.spec, run.config, run.workdir, step, run.writer)
