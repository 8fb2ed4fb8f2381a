"""The periodic work of the training loop as plugins: the base class owns the timing, a subclass writes
only what it does.

After every dispatch of k steps the loop hands each action a `Context`: the `Tick` (steps before and
after the dispatch, its metrics still on the device, whether it was the last one or a stop was asked
for), the runs, their states on the host (gathered once per dispatch, on demand), the data position,
the run's parts and the seconds spent training. An action acts when one of its rules says so:

- `every_steps`: a multiple of it lies in the steps just run (`crossed`), so k-step jumps never skip one;
- `every_secs`: that many seconds passed since it last acted (only for actions with no collective work:
  processes disagree on the clock);
- `at_steps`: one of these steps lies in the steps just run;
- `at_end`: the run's last step; `on_stop`: a stop signal arrived.

An action that restores an earlier state raises `Rollback`; the loop restores every run's newest
checkpoint (scaling learning rates as asked) and continues from there. Actions register by name
(`register_action`) and are configured in the config under `actions.<name>.*` (the guard under `guard.*`,
log / evaluate / checkpoint by `log_every_steps`, `eval_every_steps`, `ckpt_every_steps`); a new action is
one file that defines and registers a subclass.

With several processes every process runs every action at the same ticks (their device work and
collectives stay in step); only process 0 writes files (`Context.primary`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, ClassVar, Sequence

import ml_collections

from gan_jax.errors import ConfigError


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: is it time to log / eval / save."""
    return every > 0 and after // every > before // every


@dataclasses.dataclass(frozen=True)
class Tick:
    before: int  # steps done before the dispatch
    step: int  # steps done after it
    metrics: dict  # the dispatch's metrics (on the device; a leading runs axis for a stack)
    final: bool  # the run's last step
    stopping: bool  # a stop signal arrived: save and stop after this dispatch


@dataclasses.dataclass
class Context:
    """What an action may read and use: not the trainer."""

    tick: Tick
    runs: Sequence[Any]  # loop.trainer.Run: name, config, workdir, writer, checkpointer, last_train, last_eval
    states: Callable[[], list]  # each run's state on the host; every process calls it at the same ticks
    run_metrics: Callable[[dict], list]  # a dispatch's host metrics -> one dict per run
    data_position: int  # batches consumed, as checkpointed
    blueprint: Any  # loop.blueprint.Blueprint: the config, the data spec, the networks
    bar: Any  # loop.writers.Progress
    primary: bool  # this process writes the runs' files
    train_secs: float  # seconds spent loading batches, dispatching steps and waiting for them (not in actions)
    data_wait_secs: float  # of those, seconds spent waiting for batches (both since the loop's last (re)start)
    syncing: bool  # an action that pulls values off the device acts at this tick


class Rollback(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """Raised by an action: restore every run's newest checkpoint, run i's learning rates times `scale[i]`."""

    def __init__(self, scale: dict[int, float], message: str = ""):
        super().__init__(message)
        self.scale = scale
        self.message = message


class PeriodicAction:
    """The timing of an action; subclasses implement `run(context)` and, to be configurable, `from_config`."""

    name: ClassVar[str] = ""
    order: ClassVar[int] = 50  # actions run in this order at each tick (the guard first, progress last)
    syncs: ClassVar[bool] = False  # it pulls values off the device when it acts (the guard checks first)
    config: ClassVar[dict] = {}  # the defaults of actions.<name>.*

    def __init__(self, *, every_steps: int = 0, every_secs: float = 0.0, at_steps: Sequence[int] = (),
                 at_end: bool = True, on_stop: bool = False):
        self.every_steps = every_steps
        self.every_secs = every_secs
        self.at_steps = tuple(at_steps)
        self.at_end = at_end
        self.on_stop = on_stop
        self._last_time = time.monotonic()

    def is_due(self, tick: Tick) -> bool:
        return (crossed(tick.before, tick.step, self.every_steps)
                or any(tick.before < s <= tick.step for s in self.at_steps)
                or (self.at_end and tick.final) or (self.on_stop and tick.stopping)
                or (self.every_secs > 0 and time.monotonic() - self._last_time >= self.every_secs))

    def __call__(self, context: Context) -> None:
        if self.is_due(context.tick):
            self.run(context)
            self._last_time = time.monotonic()

    def run(self, context: Context) -> None:
        raise NotImplementedError

    def reset(self, step: int) -> None:
        """The loop (re)starts at `step`: at the beginning, on a resume and after a rollback."""

    @classmethod
    def check(cls, config: ml_collections.ConfigDict) -> None:
        """Raises `ConfigError` for a setting of this action that cannot work (before anything is written)."""

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, blueprint, num_runs: int) -> PeriodicAction | None:
        """The action for a run of `config` (None: off for it)."""
        raise NotImplementedError


ACTIONS: dict[str, type[PeriodicAction]] = {}


def register_action(cls: type[PeriodicAction]) -> type[PeriodicAction]:
    """Class decorator: makes an action known by `cls.name`, configured under `actions.<name>.*`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name to be registered.")
    if cls.name in ACTIONS and ACTIONS[cls.name] is not cls:
        raise ValueError(f"An action named {cls.name!r} is already registered ({ACTIONS[cls.name].__name__}).")
    ACTIONS[cls.name] = cls
    return cls


def settings(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """`actions.<name>`: the action's own config section."""
    return config.actions[name]


def require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")
