"""`guard`: the divergence guard, configured under `guard.*`.

Non-finite losses or gradient norms are recorded on the device every dispatch and read only where the
loop syncs anyway (an action that pulls values acts at this tick), so a diverged state is never logged as
good or saved. `guard.on_divergence="stop"` raises `DivergenceError`; "rollback" raises `Rollback`: the loop
restores every run's newest checkpoint, multiplies the learning rates of the runs that diverged by
`guard.rollback_lr_factor` (they live in the optimizer state) and goes on, at most `guard.max_rollbacks`
times.
"""

from __future__ import annotations

from gan_jax.errors import DivergenceError
from gan_jax.loop import distributed, runguard
from gan_jax.loop.actions.base import PeriodicAction, Rollback, register_action, require

MODES = ("stop", "rollback")


@register_action
class DivergenceGuard(PeriodicAction):
    name = "guard"
    order = 10

    def __init__(self, num_runs: int, steps_per_dispatch: int, on_divergence: str = "stop", lr_factor: float = 0.5,
                 max_rollbacks: int = 3):
        super().__init__(every_steps=1)
        self.watch = runguard.DivergenceWatch(num_runs)
        self.k = steps_per_dispatch
        self.on_divergence = on_divergence
        self.lr_factor = lr_factor
        self.max_rollbacks = max_rollbacks
        self.rollbacks = 0

    @classmethod
    def check(cls, config):
        g = config.guard
        require(g.on_divergence in MODES, "guard.on_divergence", f"is {g.on_divergence!r}; use 'stop' or 'rollback'.")
        require(0 < g.rollback_lr_factor < 1, "guard.rollback_lr_factor",
                f"must be in (0, 1), got {g.rollback_lr_factor}.")
        require(g.max_rollbacks >= 0, "guard.max_rollbacks", f"must be >= 0, got {g.max_rollbacks}.")

    @classmethod
    def from_config(cls, config, blueprint, num_runs):
        g = config.guard
        return cls(num_runs, config.steps_per_dispatch, g.on_divergence, g.rollback_lr_factor, g.max_rollbacks)

    def reset(self, step):
        self.watch.reset()

    def run(self, ctx):
        self.watch.observe(ctx.tick.metrics, ctx.tick.step)
        if not ctx.syncing:
            return
        bad = self.watch.pull()
        # The metrics are replicated, so every process finds the same; agreeing makes it certain.
        agreed = distributed.agree_max([bool(b) for b in bad])
        if not agreed.any():
            return
        runs = ctx.runs
        diverged = [i for i, b in enumerate(agreed) if b]
        described = [runguard.describe_divergence(bad[i], self.k)[1] if bad[i] else
                     "non-finite metrics on another process" for i in diverged]
        what = "; ".join(f"{runs[i].name}: {d}" if len(runs) > 1 else d for i, d in zip(diverged, described))
        good = runs[0].checkpointer.latest_step()
        if self.on_divergence != "rollback" or good is None or self.rollbacks >= self.max_rollbacks:
            reason = ("no checkpoint to roll back to" if good is None else
                      f"{self.rollbacks} rollback(s) already tried") if self.on_divergence == "rollback" else ""
            where = runs[0].checkpointer.directory if len(runs) == 1 else "each run's checkpoints/"
            raise DivergenceError(
                f"{what}{f' ({reason})' if reason else ''}. The last good checkpoint is "
                f"{f'step {good}' if good is not None else 'none'} in {where}. Lower the learning rates or add a "
                "regularizer, or rerun with --on_divergence=rollback.")
        self.rollbacks += 1
        raise Rollback({i: self.lr_factor for i in diverged},
                       f"{what}; rolled back to step {good} and continuing with the learning rates "
                       f"x{self.lr_factor:g} (rollback {self.rollbacks} of at most {self.max_rollbacks}).")
