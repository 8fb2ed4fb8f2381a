"""Everything a run needs before its first step, checked before anything is written: the data, the
networks, the optimizers, the initial state, and the programs that advance it.

`train`, the vmap sweep and the benchmark all build their programs here, so they run the
same step the same way.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import ml_collections
import optax

from gan_jax import config as config_lib
from gan_jax.core import optim
from gan_jax.core.parallel import Runner, StackedRunner
from gan_jax.core.sampling import is_conditional
from gan_jax.core.state import GANState, create_state
from gan_jax.core.step import make_train_step, programs_at
from gan_jax.data import DataSpec, get_dataset
from gan_jax.data import checks as data_checks
from gan_jax.models import build_models, sample_latent


@dataclasses.dataclass
class RunSetup:
    """One run, built and checked: its data iterator and spec, networks, optimizers and initial state."""

    config: ml_collections.ConfigDict
    spec: DataSpec
    iterator: Any
    g_model: nn.Module
    d_model: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    state: GANState

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes or 0


def setup_run(config: ml_collections.ConfigDict, num_devices: int | None = None, process_index: int = 0,
              process_count: int = 1) -> RunSetup:
    """Validates `config`, loads its data (this host's rows), builds and initialises the run.

    Every mistake a config or a data source can hold raises a `GanJaxError` here, before any file
    of the run is written.
    """
    config_lib.validate(config, num_devices or len(jax.devices()))
    iterator, spec = get_dataset(config.data, config.batch_size, config.seed, process_index=process_index,
                                 process_count=process_count)
    data_checks.check_labels(spec, is_conditional(config.model),
                             f"model.conditioning={config.model.conditioning!r} needs labels")
    return build_run(config, spec, iterator)


def build_run(config: ml_collections.ConfigDict, spec: DataSpec, iterator=None) -> RunSetup:
    """The networks, optimizers and initial state of a run on data of `spec` (checked against it)."""
    num_classes = spec.num_classes or 0
    g_model, d_model = build_models(config.model, spec.shape, num_classes=num_classes)
    g_tx, d_tx = optim.make_optimizers(config)
    state = create_state(config, g_model, d_model, spec.shape, g_tx, d_tx, num_classes)
    if spec.kind in ("image", "points"):
        z_shape = jax.eval_shape(lambda: sample_latent(jax.random.key(0), 2, config.model)).shape
        data_checks.check_generator_matches_data(g_model, state.g.params, state.g.model_state, z_shape, spec,
                                                 config.model)
    setup = RunSetup(config, spec, iterator, g_model, d_model, g_tx, d_tx, state)
    step_builder(setup)(None, 1, None)  # the step's own build-time checks, before anything is written
    return setup


def step_builder(setup: RunSetup) -> Callable[[str | None, int, frozenset | None], Callable]:
    """`build(axis_name, num_devices, due) -> train_step` for the run (pmap needs networks that
    average batch statistics over `axis_name`)."""

    def build(axis_name, num_devices, due=None):
        g, d = (build_models(setup.config.model, setup.spec.shape, axis_name, setup.num_classes) if axis_name
                else (setup.g_model, setup.d_model))
        return make_train_step(setup.config, g, d, setup.g_tx, setup.d_tx, axis_name, num_devices, setup.num_classes,
                               due)

    return build


def runners(setup: RunSetup, devices: Sequence | None = None, num_runs: int | None = None,
            devices_per_run: int = 1) -> Callable[[int], Any]:
    """`runner_at(step)`: the Runner (or, with `num_runs`, the StackedRunner over `devices`, each run's
    batch split over `devices_per_run` of them) to dispatch at `step`; with lazy terms scheduled on
    the host, one per set of due terms (see `core.step.programs_at`)."""
    build = step_builder(setup)

    def make(due):
        step = functools.partial(build, due=due)
        if num_runs is not None:
            return StackedRunner(step, num_runs, devices, devices_per_run)
        return Runner(setup.config.parallel, step, devices)

    return programs_at(setup.config, make)
