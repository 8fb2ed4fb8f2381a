"""`progress`: moves the progress bar after every dispatch (no device sync)."""

from __future__ import annotations

from gan_jax.loop.actions.base import PeriodicAction, register_action


@register_action
class Progress(PeriodicAction):
    name = "progress"
    order = 90

    def __init__(self):
        super().__init__(every_steps=1)

    @classmethod
    def from_config(cls, config, blueprint, num_runs):
        return cls()

    def run(self, ctx):
        ctx.bar.update(ctx.tick.step)
