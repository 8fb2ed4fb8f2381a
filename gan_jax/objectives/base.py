"""What an objective plugin declares, and the registries that hold them.

Four kinds of plugin, each one file under `gan_jax/objectives/` that registers itself:

- a **loss** (`register_loss`): the adversarial pair `d(real, fake, mean)`, `g(real, fake, mean)`
  of raw discriminator outputs, selected by `config.loss`;
- a **term** (`register_term`): a regularizer or auxiliary loss added to one side's loss or
  both, with its config sub-dict `reg.<name>` (always `weight` and `every`, plus its own keys),
  the values of that sub-dict that are per-run hyperparameters (kept in the training state, so a
  vmap sweep stacks them), any state of its own (kept in `state.terms`, checkpointed) and its
  schedule (`every=k`: applied every k-th update with weight times k, scheduled by the step);
- an **augmentation** (`register_augment`): the transformation of every discriminator input,
  real and fake, with its sub-dict `augment.<name>` (at most one is active);
- a **generator objective** (`register_g_objective`): a generator loss that is not the gradient
  of the adversarial loss through D (REINFORCE, MLE), selected by `text.g_objective`.

Terms see their update through a context (`DContext` / `GContext`) and return a scalar, or a
`TermOutput` with metrics and a new state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax

from gan_jax.errors import ConfigError
from gan_jax.registry import Registry

Mean = Callable[[jax.Array], jax.Array]
PACKAGES = ("gan_jax.objectives",)


# ----------------------------------------------------------------------------- losses


@dataclasses.dataclass(frozen=True)
class Loss:
    """Scalars to minimise from raw D outputs; `mean` averages over the global batch."""

    name: str
    d: Callable[[jax.Array, jax.Array, Mean], jax.Array]
    g: Callable[[jax.Array, jax.Array, Mean], jax.Array]
    needs_real_in_g: bool = False  # the generator's loss compares with D's outputs on real data


LOSSES: Registry[Loss] = Registry("loss", "loss", PACKAGES)


def register_loss(name: str, d, g, needs_real_in_g: bool = False) -> Loss:
    return LOSSES.register(name, Loss(name, d, g, needs_real_in_g))


# ----------------------------------------------------------------------------- terms


@dataclasses.dataclass(frozen=True)
class DContext:
    """What a discriminator-side term sees of one D update (arrays are this device's rows).

    `critic(x)` is D in training mode with this update's (differentiated) parameters, applied to
    `x` after the same augmentation draw as the real batch, with the real labels: the function
    whose input gradients R1 and WGAN-GP penalise; `fake_critic(x)` the same with the fake
    batch's augmentation draw and labels (R2). `discriminate(x, y)` applies D to `x` as given and
    returns `(logits, class_logits or None)`. `settings` is the term's config sub-dict.
    """

    real: jax.Array
    fake: jax.Array
    real_labels: jax.Array | None
    fake_labels: jax.Array | None
    real_input: jax.Array  # the real batch as D saw it (augmented)
    fake_input: jax.Array
    real_logits: jax.Array
    fake_logits: jax.Array
    real_class_logits: jax.Array | None
    fake_class_logits: jax.Array | None
    critic: Callable[[jax.Array], jax.Array]
    fake_critic: Callable[[jax.Array], jax.Array]
    discriminate: Callable[[jax.Array, jax.Array | None], tuple[jax.Array, jax.Array | None]]
    mean: Mean
    per_sample: Callable[[jax.Array, Callable[[jax.Array, int], jax.Array]], jax.Array]
    settings: Any
    hparams: dict
    state: Any
    key: jax.Array
    update: jax.Array  # D updates done before this one


@dataclasses.dataclass(frozen=True)
class GContext:
    """What a generator-side term sees of the G update.

    `generate(z, y)` is G with the update's (differentiated) parameters, and `params` those
    parameters (for terms on G's weights). `apply_generator(method, *args, rngs=None, **kwargs)` applies
    one of G's methods (a model registers the ones it offers as `methods`: StyleGAN2's "map" and
    "synthesize") with those parameters and G's model state, in float32, without spectral normalisation,
    discarding any update of its variables. All three are None under `g_noise="reuse"`, where the update
    back-propagates through the critic update's forward pass.
    """

    fake: jax.Array
    fake_labels: jax.Array | None
    fake_input: jax.Array
    fake_logits: jax.Array
    fake_class_logits: jax.Array | None
    real_logits: jax.Array | None  # D's logits on the real batch when the loss needs them
    z: jax.Array
    generate: Callable[[jax.Array, jax.Array | None], jax.Array] | None
    params: Any
    apply_generator: Callable[..., Any] | None
    mean: Mean
    per_sample: Callable[[jax.Array, Callable[[jax.Array, int], jax.Array]], jax.Array]
    settings: Any
    hparams: dict
    state: Any
    key: jax.Array
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class TermOutput:
    value: jax.Array  # the unweighted term; the step multiplies it by the weight (and by k when lazy)
    metrics: Mapping[str, jax.Array] = dataclasses.field(default_factory=dict)
    state: Any = None  # the term's new state (None: unchanged)


def as_output(value) -> TermOutput:
    return value if isinstance(value, TermOutput) else TermOutput(value)


ConfigCheck = Callable[[Any, Any], None]  # (the plugin's sub-dict, the whole config) -> raises ConfigError


@dataclasses.dataclass(frozen=True)
class Term:
    """A regularizer or auxiliary loss (see the module docstring). `config` holds the defaults of
    `reg.<name>`; `weight` (default 0: off), `weight_end` (default -1: constant; else the weight moves to it
    over the run's schedule, `gan_jax.schedules`) and `every` (default 1) are added when absent."""

    name: str
    d: Callable[[DContext], Any] | None = None
    g: Callable[[GContext], Any] | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hparams: tuple[str, ...] = ("weight",)
    active: Callable[[Any], bool] | None = None  # (config) -> on?; default: reg.<name>.weight > 0
    validate: ConfigCheck | None = None
    init_state: Callable[[Any], Any] | None = None  # (config) -> the term's initial state
    needs_generator: bool = False  # its G side runs G (ctx.generate, ctx.apply_generator): refused under reuse

    def settings(self, config) -> Any:
        return config.reg[self.name]

    def is_active(self, config) -> bool:
        if self.active is not None:
            return bool(self.active(config))
        settings = self.settings(config)
        return settings.weight > 0 or settings.weight_end > 0


TERMS: Registry[Term] = Registry("term", "reg", PACKAGES)


def register_term(name: str, *, d=None, g=None, config: Mapping[str, Any] | None = None,
                  hparams: tuple[str, ...] = (), active=None, validate: ConfigCheck | None = None,
                  init_state=None, needs_generator: bool = False) -> Term:
    """Registers a term. `hparams` names the keys of its sub-dict, besides `weight` and `weight_end`, that
    are per-run hyperparameters (a key with an `_end` sibling among them is scheduled the same way)."""
    if d is None and g is None:
        raise ValueError(f"term {name!r} needs a d or a g function (or both).")
    defaults = {"weight": 0.0, "weight_end": -1.0, "every": 1, **dict(config or {})}
    keys = ("weight", "weight_end") + tuple(h for h in hparams if h not in ("weight", "weight_end"))
    for key in keys:
        if not isinstance(defaults.get(key), (int, float)) or isinstance(defaults.get(key), bool):
            raise ValueError(f"term {name!r}: hyperparameter {key!r} needs a numeric default in its config.")
    return TERMS.register(name, Term(name, d, g, defaults, keys, active, validate, init_state, needs_generator))


def active_terms(config) -> list[Term]:
    """The terms a config switches on, by name."""
    return [t for t in TERMS.values() if t.is_active(config)]


# ----------------------------------------------------------------------------- augmentations


@dataclasses.dataclass(frozen=True)
class Augment:
    """An augmentation of every D input: `apply(key, x, settings, hparams, state) -> x`,
    differentiable in x (`settings`: the sub-dict `augment.<name>`, whose defaults `config` holds).

    `observe(settings, hparams, state, real_logits, mean, update, *, total, batch)` (optional) returns
    the new state after a D update (ADA's adaptive probability); `total(x)` sums `x` over the global
    batch (exactly, on every parallel mode) and `batch` is the global batch size. `metrics(state)`
    (optional) gives values to log with D's metrics.
    """

    name: str
    apply: Callable[[jax.Array, jax.Array, Any, dict, Any], jax.Array]
    active: Callable[[Any], bool]
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hparams: tuple[str, ...] = ()
    validate: ConfigCheck | None = None
    init_state: Callable[[Any], Any] | None = None
    observe: Callable[..., Any] | None = None
    metrics: Callable[[Any], dict] | None = None

    def settings(self, config) -> Any:
        return config.augment[self.name]


AUGMENTS: Registry[Augment] = Registry("augmentation", "augment", PACKAGES)


def register_augment(name: str, *, apply, active, config=None, hparams=(), validate=None, init_state=None,
                     observe=None, metrics=None) -> Augment:
    return AUGMENTS.register(name, Augment(name, apply, active, dict(config or {}), tuple(hparams), validate,
                                           init_state, observe, metrics))


def active_augment(config) -> Augment | None:
    on = [a for a in AUGMENTS.values() if a.active(config)]
    if len(on) > 1:
        raise ConfigError(f"More than one augmentation is on ({', '.join(a.name for a in on)}); every D input "
                          "gets one pipeline: switch the others off.")
    return on[0] if on else None


# ----------------------------------------------------------------------------- generator objectives


GObjective = Callable[..., tuple[jax.Array, Any]]  # (g_model, mean) -> objective(params, model_state, z, real, critic)

G_OBJECTIVES: Registry[Callable | None] = Registry("generator objective", "text.g_objective", PACKAGES)


def register_g_objective(name: str, build: Callable | None) -> Callable | None:
    """`build(g_model, mean)` returns `objective(params, model_state, z, real, critic) -> (loss, model_state)`;
    None for `adversarial` (the loss through D)."""
    G_OBJECTIVES.register(name, build)
    return build


G_OBJECTIVES.register("adversarial", None)
