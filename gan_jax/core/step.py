"""make_train_step(): the skeleton of the pure GAN step, which sums the active terms of each side.

A step runs `n_critic` discriminator updates, then one generator update, then the EMA update.
Each update's loss is the registered adversarial loss (`config.loss`) plus the active terms of
its side (`gan_jax.objectives`), each weighted by its `reg.<name>.weight` from the state; the
augmentation pipeline (at most one, `augment.*`) transforms every D input, real and fake. The
step knows no term by name: a new term is one plugin file.

Random numbers come from named streams of the step key `fold_in(state.rng, state.step)`:
"d" / i for the i-th critic update (its "z" and "labels", the "augment" draws of its "real" and
"fake" inputs, and one stream per term, named after it) and "g" for the generator update.

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
from gan_jax.core.nets import apply_model, compute_dtype, pack_input
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
    if config.get("g_noise", "fresh") == "reuse":
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
    """Builds `train_step(state, batch) -> (state, metrics)`.

    `batch["x"]` holds `n_critic` real batches, shape [n_critic, B, ...] (B per device under
    pmap), and `batch["label"]` their labels [n_critic, B] for class-conditional models. The G
    update draws fresh noise, or with `g_noise="reuse"` trains on the last critic update's fakes
    through the pullback of that forward pass. Under pmap (`axis_name` set) gradients and
    reported values are averaged over devices and batch-norm statistics are those of the global
    batch. `due`: the lazy terms this program applies (None: decided inside the step).
    """
    loss = objectives.get_loss(config.loss)
    mean = objectives.global_mean(axis_name)
    n_critic = config.n_critic
    pack = config.pack
    global_batch = config.batch_size
    local_batch = global_batch // num_devices if axis_name else global_batch
    use_ema = ema_enabled(config)
    ema_by_half_life = config.ema.half_life_images > 0 or config.ema.half_life_images_end > 0
    schedule_steps, schedule_kind = schedules.total_steps(config), config.schedule.kind
    real_labels_for_fakes = config.model.get("fake_labels", "uniform") == "real"
    conditioning = config.model.get("conditioning", "none")
    conditional = conditioning != "none"
    class_head = conditioning == "acgan"  # D returns (logits, class logits)
    if conditional and num_classes < 2:
        raise ConfigError(f"model.conditioning={conditioning!r} needs num_classes >= 2, got {num_classes}.")
    dtype = compute_dtype(config.model)
    terms = objectives.active_terms(config)
    d_terms = [t for t in terms if t.d is not None]
    g_terms = [t for t in terms if t.g is not None]
    every = {t.name: t.settings(config).every for t in terms}
    augment = objectives.active_augment(config)
    check_objectives(config)
    build_objective = objectives.G_OBJECTIVES.get(config.text.g_objective)
    g_objective = build_objective(g_model, mean) if build_objective is not None else None
    reuse = config.get("g_noise", "fresh") == "reuse"

    def pmean(tree):
        return jax.lax.pmean(tree, axis_name) if axis_name else tree

    def per_sample(key, draw):
        """This device's rows of `draw(key, global_batch)`: per-sample noise as one device would draw it."""
        return _global_slice(draw(key, global_batch), local_batch, axis_name)

    def augment_input(key, x, hparams, terms_state):
        if augment is None:
            return x
        return augment.apply(key, x, augment.settings(config), _get(hparams, "augment", augment.name, {}),
                             _get(terms_state, "augment", augment.name))

    def generate(params, model_state, key, train: bool, real_labels=None):
        """(fake samples, G's model state, z, fake labels or None) for the global batch's draws. Conditional
        fakes take labels drawn uniformly, or with `model.fake_labels="real"` those of the real batch."""
        z = _global_slice(sample_latent(stream(key, "z"), global_batch, config.model), local_batch, axis_name)
        y = None
        if conditional and real_labels_for_fakes:
            y = real_labels
        elif conditional:
            y = per_sample(stream(key, "labels"), lambda k, n: jax.random.randint(k, (n,), 0, num_classes))
        fake, model_state = apply_model(g_model, params, model_state, z, train, y, dtype)
        return fake, model_state, z, y

    def discriminate(params, model_state, x, y):
        """(logits, class logits or None, D's model state): D in training mode on x as given."""
        out, model_state = apply_model(d_model, params, model_state, pack_input(x, pack), True, y, dtype)
        logits, class_logits = out if class_head else (out, None)
        return logits, class_logits, model_state

    def apply_term(term, fn, context, fields: dict, hparams, terms_state, key, index, prefix: str = ""):
        """(weighted value, metrics, terms_state) of one term at update `index` of its side."""
        settings = term.settings(config)
        h = _get(hparams, "reg", term.name, {})
        own_state = _get(terms_state, "reg", term.name)
        k = every[term.name]

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
        elif due is not None:
            value, metrics, new_state = run() if term.name in due else skip()
        else:
            value, metrics, new_state = jax.lax.cond(index % k == 0, run, skip)
        if term.init_state is not None:
            terms_state = _set(terms_state, "reg", term.name, new_state)
        return value, metrics, terms_state

    def d_update(carry, inputs):
        d, terms_state, d_key, hparams, step = carry
        x_real, y_real, fake, y_fake, i = inputs
        key = stream(d_key, i)
        index = step * n_critic + i
        real_key, fake_key = stream(key, "augment", "real"), stream(key, "augment", "fake")
        fake = jax.lax.stop_gradient(fake)

        def d_loss_fn(params):
            real_in = augment_input(real_key, x_real, hparams, terms_state)
            fake_in = augment_input(fake_key, fake, hparams, terms_state)
            real_logits, real_cls, model_state = discriminate(params, d.model_state, real_in, y_real)
            fake_logits, fake_cls, model_state = discriminate(params, model_state, fake_in, y_fake)
            adv = loss.d(real_logits, fake_logits, mean)
            metrics = {"d_adv": adv, "d_real": mean(real_logits), "d_fake": mean(fake_logits)}
            fields = dict(
                real=x_real, fake=fake, real_labels=y_real, fake_labels=y_fake, real_input=real_in, fake_input=fake_in,
                real_logits=real_logits, fake_logits=fake_logits, real_class_logits=real_cls, fake_class_logits=fake_cls,
                critic=lambda x: discriminate(params, model_state, augment_input(real_key, x, hparams, terms_state),
                                              y_real)[0],
                fake_critic=lambda x: discriminate(params, model_state, augment_input(fake_key, x, hparams, terms_state),
                                                   y_fake)[0],
                discriminate=lambda x, y: discriminate(params, model_state, x, y)[:2],
                mean=mean, per_sample=per_sample, update=index)
            total, new_terms = adv, terms_state
            for term in d_terms:
                value, term_metrics, new_terms = apply_term(term, term.d, DContext, fields, hparams, new_terms, key,
                                                            index)
                total = total + value
                metrics.update(term_metrics)
            if augment is not None and augment.observe is not None:
                observed = augment.observe(augment.settings(config), _get(hparams, "augment", augment.name, {}),
                                           _get(new_terms, "augment", augment.name),
                                           jax.lax.stop_gradient(real_logits), mean, index)
                new_terms = _set(new_terms, "augment", augment.name, observed)
            return total, (metrics, model_state, new_terms)

        (d_loss, (metrics, model_state, terms_state)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
        grads = pmean(grads)
        d = _update(d, grads, d_tx, model_state)
        metrics = {"d_loss": d_loss, "d_grad_norm": optax.tree.norm(grads), **metrics}
        return (d, terms_state, d_key, hparams, step), pmean(metrics)

    def train_step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        key = jax.random.fold_in(state.rng, state.step)
        d_key, g_key = stream(key, "d"), stream(key, "g")
        labels = batch.get("label") if conditional else None
        hparams = schedules.scheduled(state.hparams, state.step, schedule_steps, schedule_kind)
        g = state.g
        # The critic updates' fakes, all from the same G (its running statistics move only in
        # its own update). With g_noise="reuse" the last one keeps G's pullback for the G update.
        fakes, fake_ys, reused = [], [], None
        for i in range(n_critic):
            if reuse and i == n_critic - 1:
                def generate_from(params, i=i):
                    fake, model_state, z, y = generate(params, g.model_state, stream(d_key, i), train=True,
                                                       real_labels=None if labels is None else labels[i])
                    return fake, (model_state, z, y)

                fake, pullback, (g_model_state, z, y_fake) = jax.vjp(generate_from, g.params, has_aux=True)
                reused = (fake, y_fake, z, pullback, g_model_state)
            else:
                fake, _, _, y_fake = generate(g.params, g.model_state, stream(d_key, i), train=True,
                                              real_labels=None if labels is None else labels[i])
            fakes.append(fake)
            fake_ys.append(y_fake)
        y_fakes = jnp.stack(fake_ys) if conditional else None
        (d, terms_state, _, _, _), d_metrics = unrolled_scan(
            d_update, (state.d, state.terms, d_key, hparams, state.step),
            (batch["x"], labels, jnp.stack(fakes), y_fakes, jnp.arange(n_critic)))
        d_metrics = jax.tree.map(lambda v: v[-1], d_metrics)

        fake_key = stream(g_key, "augment", "fake")
        real_logits = None
        if loss.needs_real_in_g:
            y_real = labels[-1] if conditional else None
            real_in = augment_input(stream(g_key, "augment", "real"), batch["x"][-1], hparams, terms_state)
            real_logits = jax.lax.stop_gradient(discriminate(d.params, d.model_state, real_in, y_real)[0])

        def adversarial_g_loss(fake, y_fake, z, generate_fn):
            fake_in = augment_input(fake_key, fake, hparams, terms_state)
            fake_logits, fake_cls, _ = discriminate(d.params, d.model_state, fake_in, y_fake)
            total = loss.g(real_logits, fake_logits, mean)
            fields = dict(fake=fake, fake_labels=y_fake, fake_input=fake_in, fake_logits=fake_logits,
                          fake_class_logits=fake_cls, real_logits=real_logits, z=z, generate=generate_fn, mean=mean,
                          per_sample=per_sample, step=state.step)
            metrics, new_terms = {}, terms_state
            for term in g_terms:
                value, term_metrics, new_terms = apply_term(term, term.g, GContext, fields, hparams, new_terms,
                                                            g_key, state.step, prefix="g_")
                total = total + value
                metrics.update(term_metrics)
            return total, (metrics, new_terms)

        def g_loss_fn(params):
            if g_objective is not None:  # text objectives that do not differentiate through D (REINFORCE, MLE)
                z = _global_slice(sample_latent(stream(g_key, "z"), global_batch, config.model), local_batch, axis_name)
                critic = lambda x: apply_model(d_model, d.params, d.model_state, pack_input(x, pack), True)[0]  # noqa: E731
                g_loss, model_state = g_objective(params, g.model_state, z, batch["x"][-1], critic)
                return g_loss, (model_state, {}, terms_state)
            fake, model_state, z, y_fake = generate(params, g.model_state, g_key, train=True,
                                                    real_labels=None if labels is None else labels[-1])

            def generate_fn(z, y=None):
                return apply_model(g_model, params, g.model_state, z, True, y, dtype)[0]

            g_loss, (metrics, new_terms) = adversarial_g_loss(fake, y_fake, z, generate_fn)
            return g_loss, (model_state, metrics, new_terms)

        if reused is None:
            (g_loss, (g_model_state, g_metrics, terms_state)), grads = jax.value_and_grad(
                g_loss_fn, has_aux=True)(g.params)
        else:  # chain rule through the kept pullback: no second G forward pass
            fake, y_fake, z, pullback, g_model_state = reused
            (g_loss, (g_metrics, terms_state)), fake_grad = jax.value_and_grad(
                adversarial_g_loss, has_aux=True)(fake, y_fake, z, None)
            (grads,) = pullback(fake_grad)
        grads = pmean(grads)
        g = _update(g, grads, g_tx, g_model_state)
        g_ema = state.g_ema
        if use_ema:
            if ema_by_half_life:  # the EMA's half-life in images (0 at the start of a schedule: G itself)
                decay = 0.5 ** (global_batch / jnp.maximum(hparams["ema"]["half_life_images"], 1e-8))
            else:
                decay = hparams["ema"]["decay"]
            g_ema = optax.incremental_update(g.params, g_ema, 1.0 - decay)
        metrics = {**d_metrics, "g_loss": g_loss, "g_grad_norm": optax.tree.norm(grads), **g_metrics}
        new_state = state.replace(step=state.step + 1, g=g, d=d, g_ema=g_ema, terms=terms_state)
        return new_state, pmean(metrics)

    return train_step


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
