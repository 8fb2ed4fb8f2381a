"""make_train_step(): the skeleton of the pure GAN step, which sums the active terms of each side.

A step runs `n_critic` discriminator updates, then one generator update, then the EMA update.
Each update's loss is the registered adversarial loss (`config.loss`) plus the active terms of
its side (`gan_jax.objectives`), each weighted by its `reg.<name>.weight` from the state; the
augmentation pipeline (at most one, `augment.*`) transforms every D input, real and fake. The
step knows no term by name: a new term is one plugin file.

Random numbers come from named streams of the step key `fold_in(state.rng, state.step)`:
"d" / i for the i-th critic update (its "z" and "labels", G's "noise" and "mixing" rngs, the "augment"
draws of its "real" and "fake" inputs, and one stream per term, named after it) and "g" for the
generator update.

Per-run values with an `_end` sibling (term weights, ADA's p, the EMA half-life) are moved along
the run's schedule (`gan_jax.schedules`) at the start of each step, before any plugin reads them.

Lazy terms (`reg.<name>.every = k > 1`) apply on every k-th update of their side, with their
weight times k. With one step a dispatch and one critic update a step the host picks, per
step, the program compiled for the terms due then (`programs_at`); otherwise the step decides
with a `lax.cond` on the update counter.
"""

from __future__ import annotations

import math
from typing import Callable, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import objectives, schedules
from gan_jax.core.nets import SPECTRAL_PARAMS, apply_model, compute_dtype, pack_input
from gan_jax.core.state import GANState, TrainState, ema_enabled
from gan_jax.errors import ConfigError
from gan_jax.models import sample_latent
from gan_jax.objectives.base import DContext, GContext, as_output
from gan_jax.rng import stream

T = TypeVar("T")

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def _global_slice(value: jax.Array, local_batch: int, axis_name: str | None) -> jax.Array:
    """This device's slice of a value drawn for the whole global batch.

    Every device draws the global batch's noise and keeps its own rows, so each parallel
    mode sees exactly the numbers a single device would.
    """
    if axis_name is None or local_batch == value.shape[0]:
        return value
    start = jax.lax.axis_index(axis_name) * local_batch
    return jax.lax.dynamic_slice_in_dim(value, start, local_batch, axis=0)


def _update(ts: TrainState, grads, tx: optax.GradientTransformation, model_state) -> TrainState:
    updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
    return TrainState(optax.apply_updates(ts.params, updates), opt_state, model_state)


def _get(tree: dict, section: str, name: str, default=None):
    return tree.get(section, {}).get(name, default)


def _set(tree: dict, section: str, name: str, value) -> dict:
    return {**tree, section: {**tree.get(section, {}), name: value}}


def check_objectives(config: ml_collections.ConfigDict) -> None:
    """Refuses combinations of generator objective, `g_noise` and generator-side terms that the step
    could not honour (raises ConfigError); `make_train_step` and `config.validate` call it."""
    g_terms = [t for t in objectives.active_terms(config) if t.g is not None]
    objective = config.text.g_objective
    if config.g_noise == "reuse":
        if objective != "adversarial":
            raise ConfigError(f"Config key 'g_noise': 'reuse' needs text.g_objective='adversarial' (got "
                              f"{objective!r}): the other objectives draw their own samples. Use g_noise='fresh'.")
        needing = [t.name for t in g_terms if t.needs_generator]
        if needing:
            raise ConfigError(f"Config key 'g_noise': 'reuse' trains G through the critic update's forward pass, "
                              f"but the term(s) {', '.join(needing)} run the generator themselves; use "
                              "g_noise='fresh'.")
    if objective != "adversarial" and g_terms:
        raise ConfigError(f"text.g_objective={objective!r} replaces the generator's adversarial loss, so its "
                          f"generator-side term(s) {', '.join(t.name for t in g_terms)} would not apply; switch "
                          "them off or use text.g_objective='adversarial'.")


def make_train_step(config: ml_collections.ConfigDict, g_model: nn.Module, d_model: nn.Module,
                    g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                    axis_name: str | None = None, num_devices: int = 1, num_classes: int = 0,
                    due: frozenset[str] | None = None) -> Callable[[GANState, Batch], tuple[GANState, Metrics]]:
    """Builds `train_step(state, batch) -> (state, metrics)`, a pure, jittable function (see `TrainStep`).

    `batch["x"]` holds `n_critic` real batches, shape [n_critic, B, ...] (B per device under
    pmap), and `batch["label"]` their labels [n_critic, B] for class-conditional models. The G
    update draws fresh noise, or with `g_noise="reuse"` trains on the last critic update's fakes
    through the pullback of that forward pass. Under pmap (`axis_name` set) gradients and
    reported values are averaged over devices and batch-norm statistics are those of the global
    batch. `due`: the lazy terms this program applies (None: decided inside the step).
    """
    step = TrainStep(config, g_model, d_model, g_tx, d_tx, axis_name, num_devices, num_classes, due)

    def train_step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        return step(state, batch)

    return train_step


class TrainStep:
    """One GAN step (see `make_train_step`); everything it holds is fixed when the program is built."""

    def __init__(self, config, g_model, d_model, g_tx, d_tx, axis_name, num_devices, num_classes, due):
        check_objectives(config)
        self.config, self.g_model, self.d_model, self.g_tx, self.d_tx = config, g_model, d_model, g_tx, d_tx
        self.axis_name, self.num_classes, self.due = axis_name, num_classes, due
        self.loss = objectives.get_loss(config.loss)
        self.mean = objectives.global_mean(axis_name)
        self.global_batch = config.batch_size
        self.local_batch = config.batch_size // num_devices if axis_name else config.batch_size
        conditioning = config.model.conditioning
        self.conditional = conditioning != "none"
        self.class_head = conditioning == "acgan"  # D returns (logits, class logits)
        if self.conditional and num_classes < 2:
            raise ConfigError(f"model.conditioning={conditioning!r} needs num_classes >= 2, got {num_classes}.")
        self.real_labels_for_fakes = config.model.fake_labels == "real"
        self.dtype = compute_dtype(config.model)
        terms = objectives.active_terms(config)
        self.d_terms = [t for t in terms if t.d is not None]
        self.g_terms = [t for t in terms if t.g is not None]
        self.augment = objectives.active_augment(config)
        build_objective = objectives.G_OBJECTIVES.get(config.text.g_objective)
        self.g_objective = build_objective(g_model, self.mean) if build_objective is not None else None
        self.reuse = config.g_noise == "reuse"
        self.use_ema = ema_enabled(config)
        self.ema_by_half_life = config.ema.half_life_images > 0 or config.ema.half_life_images_end > 0
        self.schedule = (schedules.total_steps(config), config.schedule.kind)

    # ------------------------------------------------------------------ the step

    def __call__(self, state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        key = jax.random.fold_in(state.rng, state.step)
        d_key, g_key = stream(key, "d"), stream(key, "g")
        labels = batch.get("label") if self.conditional else None
        hparams = schedules.scheduled(state.hparams, state.step, *self.schedule)
        fakes, fake_labels, reused = self._critic_fakes(state.g, d_key, labels)
        (d, terms_state, _, _, _), d_metrics = unrolled_scan(
            self._d_update, (state.d, state.terms, d_key, hparams, state.step),
            (batch["x"], labels, fakes, fake_labels, jnp.arange(self.config.n_critic)))
        d_metrics = jax.tree.map(lambda v: v[-1], d_metrics)
        g, g_metrics, terms_state = self._g_update(state, batch, labels, d, terms_state, hparams, g_key, reused)
        g_ema = self._ema(g.params, state.g_ema, hparams, state.step) if self.use_ema else state.g_ema
        new_state = state.replace(step=state.step + 1, g=g, d=d, g_ema=g_ema, terms=terms_state)
        return new_state, self._pmean({**d_metrics, **g_metrics})

    def _critic_fakes(self, g: TrainState, d_key, labels):
        """The critic updates' fakes [n_critic, B, ...], their labels, and with g_noise="reuse" the last one's
        pullback for the G update. All come from the same G (its running statistics move only in its own update)."""
        fakes, fake_labels, reused = [], [], None
        for i in range(self.config.n_critic):
            real_labels = None if labels is None else labels[i]
            if self.reuse and i == self.config.n_critic - 1:
                def generate_from(params, i=i, real_labels=real_labels):
                    fake, model_state, z, y = self._generate(params, g.model_state, stream(d_key, i), real_labels)
                    return fake, (model_state, z, y)

                fake, pullback, (g_model_state, z, y_fake) = jax.vjp(generate_from, g.params, has_aux=True)
                reused = (fake, y_fake, z, pullback, g_model_state)
            else:
                fake, _, _, y_fake = self._generate(g.params, g.model_state, stream(d_key, i), real_labels)
            fakes.append(fake)
            fake_labels.append(y_fake)
        return jnp.stack(fakes), jnp.stack(fake_labels) if self.conditional else None, reused

    def _d_update(self, carry, inputs):
        """One critic update (the body of the unrolled scan over n_critic)."""
        d, terms_state, d_key, hparams, step = carry
        x_real, y_real, fake, y_fake, i = inputs
        key = stream(d_key, i)
        index = step * self.config.n_critic + i
        fake = jax.lax.stop_gradient(fake)
        (d_loss, (metrics, model_state, terms_state)), grads = jax.value_and_grad(self._d_loss, has_aux=True)(
            d.params, d.model_state, x_real, y_real, fake, y_fake, key, index, hparams, terms_state)
        grads = self._pmean(grads)
        d = _update(d, grads, self.d_tx, model_state)
        metrics = {"d_loss": d_loss, "d_grad_norm": optax.tree.norm(grads), **metrics}
        return (d, terms_state, d_key, hparams, step), self._pmean(metrics)

    def _d_loss(self, params, model_state, x_real, y_real, fake, y_fake, key, index, hparams, terms_state):
        """D's adversarial loss plus its active terms; aux: (metrics, D's model state, terms' state)."""
        real_key, fake_key = stream(key, "augment", "real"), stream(key, "augment", "fake")
        real_in = self._augment(real_key, x_real, hparams, terms_state)
        fake_in = self._augment(fake_key, fake, hparams, terms_state)
        real_logits, real_cls, model_state = self._discriminate(params, model_state, real_in, y_real)
        fake_logits, fake_cls, model_state = self._discriminate(params, model_state, fake_in, y_fake)
        total = self.loss.d(real_logits, fake_logits, self.mean)
        metrics = {"d_adv": total, "d_real": self.mean(real_logits), "d_fake": self.mean(fake_logits)}

        def critic(x, aug_key, labels):
            return self._discriminate(params, model_state, self._augment(aug_key, x, hparams, terms_state), labels)[0]

        fields = dict(
            real=x_real, fake=fake, real_labels=y_real, fake_labels=y_fake, real_input=real_in, fake_input=fake_in,
            real_logits=real_logits, fake_logits=fake_logits, real_class_logits=real_cls, fake_class_logits=fake_cls,
            critic=lambda x: critic(x, real_key, y_real), fake_critic=lambda x: critic(x, fake_key, y_fake),
            discriminate=lambda x, y: self._discriminate(params, model_state, x, y)[:2],
            mean=self.mean, per_sample=self._per_sample, update=index)
        for term in self.d_terms:
            value, term_metrics, terms_state = self._term(term, term.d, DContext, fields, hparams, terms_state, key,
                                                          index)
            total = total + value
            metrics.update(term_metrics)
        augment = self.augment
        if augment is not None and augment.observe is not None:
            observed = augment.observe(augment.settings(self.config), _get(hparams, "augment", augment.name, {}),
                                       _get(terms_state, "augment", augment.name),
                                       jax.lax.stop_gradient(real_logits), self.mean, index, total=self._total,
                                       batch=self.global_batch)
            terms_state = _set(terms_state, "augment", augment.name, observed)
        if augment is not None and augment.metrics is not None:
            metrics.update(augment.metrics(_get(terms_state, "augment", augment.name)))
        return total, (metrics, model_state, terms_state)

    def _g_update(self, state: GANState, batch, labels, d: TrainState, terms_state, hparams, g_key, reused):
        """The generator update against the updated D; returns (G, metrics, terms' state)."""
        g = state.g
        real_logits = None
        if self.loss.needs_real_in_g:
            y_real = labels[-1] if self.conditional else None
            real_in = self._augment(stream(g_key, "augment", "real"), batch["x"][-1], hparams, terms_state)
            real_logits = jax.lax.stop_gradient(self._discriminate(d.params, d.model_state, real_in, y_real)[0])
        context = (d, real_logits, hparams, g_key, state.step)

        def g_loss_fn(params):
            if self.g_objective is not None:  # text objectives that do not differentiate through D (REINFORCE, MLE)
                z = _global_slice(sample_latent(stream(g_key, "z"), self.global_batch, self.config.model),
                                  self.local_batch, self.axis_name)
                critic = lambda x: apply_model(self.d_model, d.params, d.model_state,  # noqa: E731
                                               pack_input(x, self.config.pack), True)[0]
                g_loss, model_state = self.g_objective(params, g.model_state, z, batch["x"][-1], critic)
                return g_loss, (model_state, {}, terms_state)
            fake, model_state, z, y_fake = self._generate(params, g.model_state, g_key,
                                                          None if labels is None else labels[-1])

            def generate(z, y=None):
                return apply_model(self.g_model, params, g.model_state, z, True, y, self.dtype,
                                   rngs={"mixing": stream(g_key, "generate", "mixing")})[0]

            def apply_generator(method, *args, rngs=None, **kwargs):
                variables = {"params": params, **{k: v for k, v in g.model_state.items() if k != SPECTRAL_PARAMS}}
                return self.g_model.apply(variables, *args, method=method, rngs=rngs, mutable=True, **kwargs)[0]

            g_loss, (metrics, new_terms) = self._g_loss(fake, y_fake, z, (generate, apply_generator), params,
                                                        terms_state, *context)
            return g_loss, (model_state, metrics, new_terms)

        if reused is None:
            (g_loss, (g_model_state, metrics, terms_state)), grads = jax.value_and_grad(
                g_loss_fn, has_aux=True)(g.params)
        else:  # chain rule through the kept pullback: no second G forward pass
            fake, y_fake, z, pullback, g_model_state = reused
            (g_loss, (metrics, terms_state)), fake_grad = jax.value_and_grad(self._g_loss, has_aux=True)(
                fake, y_fake, z, (None, None), None, terms_state, *context)
            (grads,) = pullback(fake_grad)
        grads = self._pmean(grads)
        g = _update(g, grads, self.g_tx, g_model_state)
        return g, {"g_loss": g_loss, "g_grad_norm": optax.tree.norm(grads), **metrics}, terms_state

    def _g_loss(self, fake, y_fake, z, generators, params, terms_state, d, real_logits, hparams, g_key, step):
        """G's adversarial loss of D on `fake` plus G's active terms; aux: (metrics, terms' state).
        `generators`: the terms' (generate, apply_generator), or (None, None) under g_noise="reuse"."""
        generate, apply_generator = generators
        fake_in = self._augment(stream(g_key, "augment", "fake"), fake, hparams, terms_state)
        fake_logits, fake_cls, _ = self._discriminate(d.params, d.model_state, fake_in, y_fake)
        total = self.loss.g(real_logits, fake_logits, self.mean)
        fields = dict(fake=fake, fake_labels=y_fake, fake_input=fake_in, fake_logits=fake_logits,
                      fake_class_logits=fake_cls, real_logits=real_logits, z=z, generate=generate, params=params,
                      apply_generator=apply_generator, mean=self.mean,
                      per_sample=self._per_sample, step=step)
        metrics = {}
        for term in self.g_terms:
            value, term_metrics, terms_state = self._term(term, term.g, GContext, fields, hparams, terms_state, g_key,
                                                          step, prefix="g_")
            total = total + value
            metrics.update(term_metrics)
        return total, (metrics, terms_state)

    def _ema(self, g_params, g_ema, hparams, step):
        if self.ema_by_half_life:  # the EMA's half-life in images (0 at the start of a schedule: G itself)
            decay = 0.5 ** (self.global_batch / jnp.maximum(hparams["ema"]["half_life_images"], 1e-8))
        else:
            decay = hparams["ema"]["decay"]
            if self.config.ema.warmup:  # early on, average over the steps there are
                decay = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
        return optax.incremental_update(g_params, g_ema, 1.0 - decay)

    # ------------------------------------------------------------------ pieces

    def _pmean(self, tree):
        return jax.lax.pmean(tree, self.axis_name) if self.axis_name else tree

    def _total(self, x):
        """The sum of `x` over the global batch (over every device under pmap)."""
        return jax.lax.psum(jnp.sum(x), self.axis_name) if self.axis_name else jnp.sum(x)

    def _per_sample(self, key, draw):
        """This device's rows of `draw(key, global_batch)`: per-sample noise as one device would draw it."""
        return _global_slice(draw(key, self.global_batch), self.local_batch, self.axis_name)

    def _augment(self, key, x, hparams, terms_state):
        if self.augment is None:
            return x
        name = self.augment.name
        return self.augment.apply(key, x, self.augment.settings(self.config), _get(hparams, "augment", name, {}),
                                  _get(terms_state, "augment", name))

    def _generate(self, params, model_state, key, real_labels=None):
        """(fake samples, G's model state, z, fake labels or None) for the global batch's draws. Conditional
        fakes take labels drawn uniformly, or with `model.fake_labels="real"` those of the real batch."""
        z = _global_slice(sample_latent(stream(key, "z"), self.global_batch, self.config.model), self.local_batch,
                          self.axis_name)
        y = None
        if self.conditional and self.real_labels_for_fakes:
            y = real_labels
        elif self.conditional:
            y = self._per_sample(stream(key, "labels"), lambda k, n: jax.random.randint(k, (n,), 0, self.num_classes))
        fake, model_state = apply_model(self.g_model, params, model_state, z, True, y, self.dtype,
                                        rngs={"noise": stream(key, "noise"), "mixing": stream(key, "mixing")})
        return fake, model_state, z, y

    def _discriminate(self, params, model_state, x, y):
        """(logits, class logits or None, D's model state): D in training mode on x as given."""
        out, model_state = apply_model(self.d_model, params, model_state, pack_input(x, self.config.pack), True, y,
                                       self.dtype)
        logits, class_logits = out if self.class_head else (out, None)
        return logits, class_logits, model_state

    def _term(self, term, fn, context, fields: dict, hparams, terms_state, key, index, prefix: str = ""):
        """(weighted value, metrics, terms' state) of one term at update `index` of its side; lazy terms
        (every = k) run on every k-th update with their weight times k, and report 0 in between, each
        metric with its `applied/` share (1 or 0; see `LastApplied`)."""
        settings = term.settings(self.config)
        h = _get(hparams, "reg", term.name, {})
        own_state = _get(terms_state, "reg", term.name)
        k = settings.every

        def run():
            ctx = context(**fields, settings=settings, hparams=h, state=own_state, key=stream(key, term.name))
            out = as_output(fn(ctx))
            metrics = {f"{prefix}{term.name}": out.value, **{f"{prefix}{m}": v for m, v in out.metrics.items()}}
            new_state = own_state if out.state is None else out.state
            return h["weight"] * k * out.value, metrics, new_state

        def skip():
            shapes = jax.eval_shape(run)[1]
            return jnp.zeros((), jnp.float32), jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), own_state

        if k == 1:
            value, metrics, new_state = run()
        elif self.due is not None:
            value, metrics, new_state = run() if term.name in self.due else skip()
            metrics = mark_applied(metrics, jnp.float32(term.name in self.due))
        else:
            value, metrics, new_state = jax.lax.cond(index % k == 0, run, skip)
            metrics = mark_applied(metrics, (index % k == 0).astype(jnp.float32))
        if term.init_state is not None:
            terms_state = _set(terms_state, "reg", term.name, new_state)
        return value, metrics, terms_state


def unrolled_scan(f: Callable, carry, xs):
    """`lax.scan(f, carry, xs)` as straight-line code.

    XLA on CPU runs convolutions inside a while loop (what `lax.scan` lowers to, even for
    one iteration) about 30x slower than the same convolutions outside one.
    """
    ys = []
    for i in range(jax.tree.leaves(xs)[0].shape[0]):
        carry, y = f(carry, jax.tree.map(lambda a: a[i], xs))
        ys.append(y)
    return carry, jax.tree.map(lambda *v: jnp.stack(v), *ys)


def fuse_steps(train_step: Callable) -> Callable:
    """k steps in one call: `batch["x"]` gains a leading axis of k; metrics are averaged over k.

    k > 1 steps run in a `lax.scan` (one compiled loop); a single step runs without a loop.
    """

    def multi_step(state: GANState, batch: Batch):
        if jax.tree.leaves(batch)[0].shape[0] == 1:
            state, metrics = unrolled_scan(train_step, state, batch)
        else:
            state, metrics = jax.lax.scan(train_step, state, batch)
        return state, jax.tree.map(lambda v: jnp.mean(v, axis=0), metrics)

    return multi_step


# ----------------------------------------------------------------------------- lazy terms on the host

APPLIED = "applied/"  # metric prefix: the share of a dispatch's steps on which a lazy term ran


def mark_applied(metrics: dict, applied: jax.Array) -> dict:
    """A lazy term's metrics plus, for each, `applied/<name>`: 1.0 where the term ran, 0.0 where it skipped."""
    return {**metrics, **{APPLIED + name: applied for name in metrics}}


@jax.jit
def _merge_applied(metrics: dict, last: dict | None) -> dict:
    out = {name: v for name, v in metrics.items() if not name.startswith(APPLIED)}
    for key, share in metrics.items():
        if key.startswith(APPLIED):
            name = key[len(APPLIED):]
            mean = out[name] / jnp.maximum(share, 1e-12)  # the mean over the steps that ran the term
            out[name] = mean if last is None else jnp.where(share > 0, mean, last[name])
    return out


class LastApplied:
    """A dispatch's metrics with each lazy term's metric as its value on the last steps that ran the
    term: averaged over those steps of the dispatch when some ran it, else kept from the dispatch
    before. (A plain mean over the dispatch would count the skipped steps as 0, and a dispatch with
    no due step would log "train/r1 0.0" as if R1 were off.) One small device op a dispatch, only
    when the config has lazy terms; metrics without `applied/` shares pass through untouched."""

    def __init__(self):
        self._last: dict | None = None
        self._lazy: bool | None = None

    def __call__(self, metrics: dict) -> dict:
        if self._lazy is None:
            self._lazy = any(name.startswith(APPLIED) for name in metrics)
        if not self._lazy:
            return metrics
        out = _merge_applied(metrics, self._last)
        self._last = {key[len(APPLIED):]: out[key[len(APPLIED):]] for key in metrics if key.startswith(APPLIED)}
        return out


def lazy_terms(config: ml_collections.ConfigDict) -> dict[str, int]:
    """{name: k} of the active terms applied every k > 1 updates."""
    return {t.name: t.settings(config).every for t in objectives.active_terms(config) if t.settings(config).every > 1}


def host_scheduled(config: ml_collections.ConfigDict) -> bool:
    """Whether lazy terms are scheduled on the host: one compiled step per set of due terms, picked
    per dispatch by `due_at`. Needs one step a dispatch and one D update a step, so that every
    dispatch either is or is not an update of each term; otherwise the step decides with a
    `lax.cond` (which XLA's CPU backend runs several times slower than straight-line code)."""
    return bool(lazy_terms(config)) and config.steps_per_dispatch == 1 and config.n_critic == 1


def due_at(lazy: dict[str, int], step: int) -> frozenset[str]:
    """The lazy terms that apply at `step` (with one update of each side a step)."""
    return frozenset(name for name, k in lazy.items() if step % k == 0)


def programs_at(config: ml_collections.ConfigDict, build: Callable[[frozenset[str] | None], T]) -> Callable[[int], T]:
    """`program_at(step)`: what to dispatch at `step`, from `build(due)` (a step function, a compiled
    program, a Runner). With `host_scheduled`, one `build(due)` per set of lazy terms due at some
    step, all built now; otherwise the one `build(None)` (lazy terms decided inside)."""
    if not host_scheduled(config):
        program = build(None)
        return lambda step: program
    lazy = lazy_terms(config)
    built: dict[frozenset[str], T] = {}
    for step in range(math.lcm(*lazy.values())):
        due = due_at(lazy, step)
        if due not in built:
            built[due] = build(due)
    return lambda step: built[due_at(lazy, step)]
