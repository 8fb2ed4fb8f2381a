"""A run's blueprint: its config turned into the parts every tool starts from, built and checked once.

`make_blueprint(config, spec)` checks the config against the data (the config's own validation, labels
for a conditional model, the generator's output against one example, the step's build-time checks),
then builds the networks, the twin optimizers and the resolved objective, and freezes them. Training
(single runs and vmap groups), evaluation, sampling, the quality-diversity sweep, the resume check and
the benchmark all start from a blueprint: nothing else builds networks or optimizers. A blueprint read
back from a run directory (`check=False`) skips the checks its run passed when it was trained.
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
from gan_jax import objectives
from gan_jax.core import optim
from gan_jax.core.parallel import Runner, StackedRunner
from gan_jax.core.sampling import is_conditional
from gan_jax.core.state import GANState, create_state
from gan_jax.core.step import make_train_step, programs_at
from gan_jax.data import DataSpec, get_dataset
from gan_jax.data import checks as data_checks
from gan_jax.loop.modalities import modality
from gan_jax.models import build_models, sample_latent


@dataclasses.dataclass(frozen=True)
class Objective:
    """What each update minimises: the adversarial loss plus the active terms, on augmented D inputs."""

    loss: str
    terms: tuple[str, ...]
    augment: str | None

    def __str__(self) -> str:
        return " + ".join([self.loss, *self.terms]) + (f", {self.augment} augmentation" if self.augment else "")


@dataclasses.dataclass(frozen=True, eq=False)
class Blueprint:
    """The parts of a run of `config` on data of `spec`: built once, frozen."""

    config: ml_collections.ConfigDict
    spec: DataSpec
    g_model: nn.Module
    d_model: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    objective: Objective
    _built: dict = dataclasses.field(default_factory=dict, repr=False)  # networks and steps per axis name

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes or 0

    def init_state(self) -> GANState:
        """The run's initial state, from `config.seed`."""
        return create_state(self.config, self.g_model, self.d_model, self.spec.shape, self.g_tx, self.d_tx,
                            self.num_classes)

    def abstract_state(self):
        """The state's structure, shapes and dtypes, without computing it."""
        return jax.eval_shape(self.init_state)

    def networks(self, axis_name: str | None = None) -> tuple[nn.Module, nn.Module]:
        """(G, D); under pmap the networks that average batch statistics over `axis_name`."""
        if axis_name is None:
            return self.g_model, self.d_model
        key = ("networks", axis_name)
        if key not in self._built:
            self._built[key] = build_models(self.config.model, self.spec.shape, axis_name, self.num_classes)
        return self._built[key]

    def train_step(self, axis_name: str | None = None, num_devices: int = 1, due: frozenset | None = None
                   ) -> Callable:
        """`train_step(state, batch) -> (state, metrics)` (`core.step.make_train_step`), built once per setting."""
        key = ("step", axis_name, num_devices, due)
        if key not in self._built:
            g, d = self.networks(axis_name)
            self._built[key] = make_train_step(self.config, g, d, self.g_tx, self.d_tx, axis_name, num_devices,
                                               self.num_classes, due)
        return self._built[key]

    def runners(self, devices: Sequence | None = None, num_runs: int | None = None, devices_per_run: int = 1
                ) -> Callable[[int], Any]:
        """`runner_at(step)`: the Runner (or, with `num_runs`, the StackedRunner over `devices`, each run's
        batch split over `devices_per_run` of them) to dispatch at `step`; with lazy terms scheduled on the
        host, one per set of due terms (see `core.step.programs_at`)."""

        def make(due):
            step = functools.partial(self.train_step, due=due)
            if num_runs is not None:
                return StackedRunner(step, num_runs, devices, devices_per_run)
            return Runner(self.config.parallel, step, devices)

        return programs_at(self.config, make)


def resolve_objective(config: ml_collections.ConfigDict) -> Objective:
    augment = objectives.active_augment(config)
    return Objective(config.loss, tuple(t.name for t in objectives.active_terms(config)),
                     augment.name if augment is not None else None)


def make_blueprint(config: ml_collections.ConfigDict, spec: DataSpec, num_devices: int | None = None,
                   check: bool = True) -> Blueprint:
    """The blueprint of a run of `config` on data of `spec`; with `check`, every mistake the config can hold
    against this data raises a `GanJaxError` here, before anything of the run is written."""
    if check:
        config_lib.validate(config, num_devices or len(jax.devices()))
        data_checks.check_labels(spec, is_conditional(config.model),
                                 f"model.conditioning={config.model.conditioning!r} needs labels")
    g_model, d_model = build_models(config.model, spec.shape, num_classes=spec.num_classes or 0)
    g_tx, d_tx = optim.make_optimizers(config)
    blueprint = Blueprint(config, spec, g_model, d_model, g_tx, d_tx, resolve_objective(config))
    if check:
        if modality(spec.kind).checks_sample_shape:
            state = blueprint.abstract_state()
            z_shape = jax.eval_shape(lambda: sample_latent(jax.random.key(0), 2, config.model)).shape
            data_checks.check_generator_matches_data(g_model, state.g.params, state.g.model_state, z_shape, spec,
                                                     config.model)
        blueprint.train_step()  # the step's own build-time checks; the runner of parallel=none reuses it
    return blueprint


def read_back(config: ml_collections.ConfigDict, data_shape: Sequence[int], num_classes: int = 0) -> Blueprint:
    """The blueprint of a trained run's config (its `config.json`), for restoring and sampling its checkpoints:
    unchecked, its spec carrying only the example shape and the number of classes."""
    spec = DataSpec(config.data.source, tuple(data_shape), "", 0, num_classes or None)
    return make_blueprint(config, spec, check=False)


def load_run_data(config: ml_collections.ConfigDict, process_index: int = 0, process_count: int = 1):
    """(this host's batch iterator, the data spec) of a run."""
    return get_dataset(config.data, config.batch_size, config.seed, process_index=process_index,
                       process_count=process_count)


def setup_run(config: ml_collections.ConfigDict, num_devices: int | None = None, process_index: int = 0,
              process_count: int = 1) -> tuple[Blueprint, Any]:
    """(the checked blueprint, this host's batch iterator) of a run: its data loaded, everything checked."""
    iterator, spec = load_run_data(config, process_index, process_count)
    return make_blueprint(config, spec, num_devices), iterator
