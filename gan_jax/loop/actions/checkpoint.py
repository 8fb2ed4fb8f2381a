"""`checkpoint`: every run's state and data position, every `ckpt_every_steps`, at the end and when a stop
signal arrives."""

from __future__ import annotations

from gan_jax.loop.actions.base import PeriodicAction, register_action


@register_action
class Checkpoint(PeriodicAction):
    name = "checkpoint"
    order = 40
    syncs = True

    def __init__(self, every_steps: int):
        super().__init__(every_steps=every_steps, on_stop=True)

    @classmethod
    def from_config(cls, config, blueprint, num_runs):
        return cls(config.ckpt_every_steps)

    def run(self, ctx):
        for run, state in zip(ctx.runs, ctx.states()):
            run.checkpointer.save(ctx.tick.step, state, {"data_position": ctx.data_position, "step": ctx.tick.step,
                                                         "lr_scale": run.lr_scale})
