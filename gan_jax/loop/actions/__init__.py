"""The loop's periodic actions as plugins (see `base` for the timing rules and the context an action gets).

Each module of this package defines one action and registers it (`register_action`); they run at each tick in
their `order`: the divergence guard first, then logging, evaluation, pictures, the checkpoint, the progress
bar. A new action is one file: a module here, or anywhere else that is imported before the run is built (an
experiment file may import it).
"""

import importlib
import pkgutil

from gan_jax.loop.actions.base import (  # noqa: F401
    ACTIONS,
    Context,
    PeriodicAction,
    Rollback,
    Tick,
    crossed,
    register_action,
    settings,
)


for _module in pkgutil.iter_modules(__path__):  # every module of this package registers its action
    importlib.import_module(f"{__name__}.{_module.name}")


def config_defaults() -> dict:
    """`actions.<name>.*`: the defaults every registered action declares."""
    return {name: dict(cls.config) for name, cls in ACTIONS.items() if cls.config}


def check_config(config) -> None:
    """Every registered action's own config checks (`ConfigError` before anything is written)."""
    for cls in ACTIONS.values():
        cls.check(config)


def build_actions(config, blueprint, num_runs: int) -> list[PeriodicAction]:
    """The actions of a run of `config`, in order."""
    built = [cls.from_config(config, blueprint, num_runs) for cls in sorted(ACTIONS.values(), key=lambda c: c.order)]
    return [a for a in built if a is not None]
