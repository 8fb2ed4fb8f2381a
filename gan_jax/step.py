"""make_train_step(): the one pure GAN step, and k-step fusion with lax.scan."""

from __future__ import annotations

from typing import Callable, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import augment, losses, regularizers, text_objectives
from gan_jax.models import sample_latent
from gan_jax.models.layers import spectral_normalize_params
from gan_jax.state import GANState, TrainState, pack_input

T = TypeVar("T")

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


# Model-state collection of the parameter-level spectral normalisation (model.spectral_norm).
SPECTRAL_PARAMS = "spectral_params"


def compute_dtype(model_config: ml_collections.ConfigDict):
    """None (float32) or jnp.bfloat16, from `model.dtype`."""
    return jnp.bfloat16 if model_config.get("dtype", "float32") == "bfloat16" else None


def _apply(model: nn.Module, params, model_state: dict, x, train: bool, y=None, dtype=None):
    """Applies a module; returns (output, updated non-parameter variables).

    `y` (class labels) is passed to conditional models. With `dtype` (bfloat16) the module
    computes in that dtype from a cast of the float32 parameters, and returns float32. With a
    "spectral_params" collection, every kernel is spectrally normalised first.
    """
    vectors = model_state.get(SPECTRAL_PARAMS)
    flax_state = {k: v for k, v in model_state.items() if k != SPECTRAL_PARAMS}
    if vectors is not None:
        params, vectors = spectral_normalize_params(params, vectors, update=train)
    if dtype is not None:
        params = jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
        x = x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
    kwargs = {} if y is None else {"y": y}
    variables = {"params": params, **flax_state}
    if train and flax_state:
        out, updates = model.apply(variables, x, train=True, mutable=list(flax_state), **kwargs)
        new_state = {**flax_state, **updates}
    else:
        out, new_state = model.apply(variables, x, train=train, **kwargs), dict(flax_state)
    if vectors is not None:
        new_state[SPECTRAL_PARAMS] = vectors
    if dtype is not None:
        out = jax.tree.map(lambda o: o.astype(jnp.float32) if jnp.issubdtype(o.dtype, jnp.floating) else o, out)
    return out, new_state


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


def make_train_step(config: ml_collections.ConfigDict, g_model: nn.Module, d_model: nn.Module,
                    g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                    axis_name: str | None = None, num_devices: int = 1, num_classes: int = 0,
                    r1_due: bool | None = None) -> Callable[[GANState, Batch], tuple[GANState, Metrics]]:
    """Builds `train_step(state, batch) -> (state, metrics)`.

    `batch["x"]` holds `n_critic` real batches, shape [n_critic, B, ...] (B per device under
    pmap), and `batch["label"]` their labels [n_critic, B] for class-conditional models. The
    step runs `n_critic` discriminator updates, then one generator update (on fresh noise, or
    with `g_noise="reuse"` on the last discriminator update's fakes), then the EMA update.
    Under pmap (`axis_name` set) gradients and reported values are averaged over devices and
    batch-norm statistics are those of the global batch.

    Switches on the same step: DiffAugment (`reg.diffaug`) on every discriminator input, real
    and fake; R1 (lazy with `reg.r1_every = k`: every k-th D update, weighted by k); WGAN-GP;
    bCR (`reg.bcr_weight`); class conditioning (projection or ACGAN head, fake labels drawn
    uniformly from `num_classes`); bfloat16 compute (`model.dtype`).

    Lazy R1 decides inside the step (a `lax.cond` on the step counter) unless `r1_due` fixes it:
    True builds the step that adds R1, False the one without. XLA's CPU backend runs a
    conditional's branch several times slower than the same code outside one, so callers that
    dispatch one step at a time pick between the two programs on the host (`host_r1_schedule`).
    """
    loss = losses.get_loss(config.loss)
    mean = losses.global_mean(axis_name)
    n_critic = config.n_critic
    pack = config.pack
    global_batch = config.batch_size
    local_batch = global_batch // num_devices if axis_name else global_batch
    use_gp = config.reg.gp_weight > 0
    use_r1 = config.reg.r1_weight > 0
    use_ema = config.ema.decay > 0
    r1_every = config.reg.get("r1_every", 1)
    diffaug = augment.parse_policy(config.reg.get("diffaug", ""))
    bcr_policy = augment.parse_policy(config.reg.get("bcr_policy", "translation"))
    use_bcr = config.reg.get("bcr_weight", 0.0) > 0
    conditioning = config.model.get("conditioning", "none")
    conditional = conditioning != "none"
    acgan = conditioning == "acgan"
    if conditional and num_classes < 2:
        raise ValueError(f"model.conditioning={conditioning!r} needs num_classes >= 2, got {num_classes}.")
    dtype = compute_dtype(config.model)
    g_objective = text_objectives.get_g_objective(config.text.g_objective, g_model, mean)
    reuse = config.get("g_noise", "fresh") == "reuse"
    if reuse and g_objective is not None:
        raise ValueError(f"g_noise='reuse' needs text.g_objective='adversarial', got {config.text.g_objective!r}.")

    def pmean(tree):
        return jax.lax.pmean(tree, axis_name) if axis_name else tree

    def fake_labels(key):
        if not conditional:
            return None
        return _global_slice(jax.random.randint(jax.random.fold_in(key, 1), (global_batch,), 0, num_classes),
                             local_batch, axis_name)

    def generate(params, model_state, key, train: bool):
        """(fake samples, G's model state, fake labels or None) for the global batch's noise."""
        z = _global_slice(sample_latent(key, global_batch, config.model), local_batch, axis_name)
        y = fake_labels(key)
        fake, model_state = _apply(g_model, params, model_state, z, train, y, dtype)
        return fake, model_state, y

    def discriminate(params, model_state, x, y, aug_key):
        """(logits, class logits or None, D's model state): D in training mode on augmented input."""
        if diffaug:
            x = augment.apply_policy(diffaug, aug_key, x)
        out, model_state = _apply(d_model, params, model_state, pack_input(x, pack), True, y, dtype)
        logits, class_logits = out if acgan else (out, None)
        return logits, class_logits, model_state

    def class_loss(class_logits, y):
        return mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, y))

    def d_update(carry, inputs):
        d, key, hparams, step = carry
        x_real, y_real, fake, y_fake, i = inputs
        key_i = jax.random.fold_in(key, i)
        eps_key = jax.random.split(key_i)[1]
        real_aug, fake_aug, bcr_key = (jax.random.fold_in(key_i, c) for c in (11, 12, 13))
        fake = jax.lax.stop_gradient(fake)

        def d_loss_fn(params):
            real_logits, real_cls, model_state = discriminate(params, d.model_state, x_real, y_real, real_aug)
            fake_logits, fake_cls, model_state = discriminate(params, model_state, fake, y_fake, fake_aug)
            adv = loss.d(real_logits, fake_logits, mean)
            aux = {"d_adv": adv, "d_real": mean(real_logits), "d_fake": mean(fake_logits)}
            total = adv

            def critic(x):
                return discriminate(params, model_state, x, y_real, real_aug)[0]

            if acgan:
                cls = class_loss(real_cls, y_real) + class_loss(fake_cls, y_fake)
                total = total + config.reg.acgan_weight * cls
                aux["d_class"] = cls
            if use_gp:
                eps = _global_slice(jax.random.uniform(eps_key, (global_batch,)), local_batch, axis_name)
                gp = jnp.mean(regularizers.gradient_penalty(critic, x_real, fake, eps))
                total = total + hparams["gp_weight"] * gp
                aux["gp"] = gp
            if use_r1 and r1_every == 1:
                r1 = jnp.mean(regularizers.r1_penalty(critic, x_real))
                total = total + hparams["r1_weight"] * r1
                aux["r1"] = r1
            if use_bcr:
                # bCR (Zhao et al. 2021): D's logits must not change under the bcr_policy augmentation.
                def consistency(x, y, logits, k):
                    x_t = augment.apply_policy(bcr_policy, k, augment.apply_policy(diffaug, real_aug, x)
                                               if diffaug else x)
                    out, _ = _apply(d_model, params, model_state, pack_input(x_t, pack), True, y, dtype)
                    return mean(((out[0] if acgan else out) - logits) ** 2)

                bcr = (consistency(x_real, y_real, real_logits, jax.random.fold_in(bcr_key, 0))
                       + consistency(fake, y_fake, fake_logits, jax.random.fold_in(bcr_key, 1)))
                total = total + config.reg.bcr_weight * bcr
                aux["bcr"] = bcr
            return total, (aux, model_state)

        (d_loss, (aux, model_state)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
        if use_r1 and r1_every > 1:
            # Lazy R1: every r1_every-th D update adds r1_every * R1's gradient.
            def r1_value_and_grad():
                def r1_fn(params):
                    def critic(x):
                        return discriminate(params, model_state, x, y_real, real_aug)[0]

                    return r1_every * jnp.mean(regularizers.r1_penalty(critic, x_real))

                return jax.value_and_grad(r1_fn)(d.params)

            def skip():
                return jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, d.params)

            if r1_due is None:
                r1, r1_grads = jax.lax.cond((step * n_critic + i) % r1_every == 0, r1_value_and_grad, skip)
            else:
                r1, r1_grads = r1_value_and_grad() if r1_due else skip()
            grads = jax.tree.map(lambda a, b: a + hparams["r1_weight"] * b, grads, r1_grads)
            d_loss = d_loss + hparams["r1_weight"] * r1
            aux = {**aux, "r1": r1}
        grads = pmean(grads)
        d = _update(d, grads, d_tx, model_state)
        aux = {"d_loss": d_loss, "d_grad_norm": optax.tree.norm(grads), **aux}
        return (d, key, hparams, step), pmean(aux)

    def train_step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        key = jax.random.fold_in(state.rng, state.step)
        d_key, g_key = jax.random.split(key)
        labels = batch.get("label") if conditional else None
        g = state.g
        # The critic updates' fakes, all from the same G (its running statistics move only in
        # its own update). With g_noise="reuse" the last one keeps G's pullback for the G update.
        fakes, fake_ys, reused = [], [], None
        for i in range(n_critic):
            z_key = jax.random.split(jax.random.fold_in(d_key, i))[0]
            if reuse and i == n_critic - 1:
                def generate_from(params, z_key=z_key):
                    fake, model_state, y = generate(params, g.model_state, z_key, train=True)
                    return fake, (model_state, y)

                fake, pullback, (g_model_state, y_fake) = jax.vjp(generate_from, g.params, has_aux=True)
                reused = (fake, y_fake, pullback, g_model_state)
            else:
                fake, _, y_fake = generate(g.params, g.model_state, z_key, train=True)
            fakes.append(fake)
            fake_ys.append(y_fake)
        y_fakes = jnp.stack(fake_ys) if conditional else None
        (d, _, _, _), d_metrics = unrolled_scan(
            d_update, (state.d, d_key, state.hparams, state.step),
            (batch["x"], labels, jnp.stack(fakes), y_fakes, jnp.arange(n_critic)))
        d_metrics = jax.tree.map(lambda v: v[-1], d_metrics)

        g_aug, real_aug = jax.random.fold_in(g_key, 21), jax.random.fold_in(g_key, 22)
        real_logits = None
        if loss.needs_real_in_g:
            y_real = labels[-1] if conditional else None
            real_logits, _, _ = discriminate(d.params, d.model_state, batch["x"][-1], y_real, real_aug)
            real_logits = jax.lax.stop_gradient(real_logits)

        def adversarial_g_loss(fake, y_fake):
            fake_logits, fake_cls, _ = discriminate(d.params, d.model_state, fake, y_fake, g_aug)
            g_loss = loss.g(real_logits, fake_logits, mean)
            if acgan:
                g_loss = g_loss + config.reg.acgan_weight * class_loss(fake_cls, y_fake)
            return g_loss

        def g_loss_fn(params):
            if g_objective is not None:  # text objectives that do not differentiate through D (REINFORCE, MLE)
                z = _global_slice(sample_latent(g_key, global_batch, config.model), local_batch, axis_name)
                critic = lambda x: _apply(d_model, d.params, d.model_state, pack_input(x, pack), True)[0]  # noqa: E731
                return g_objective(params, g.model_state, z, batch["x"][-1], critic)
            fake, model_state, y_fake = generate(params, g.model_state, g_key, train=True)
            return adversarial_g_loss(fake, y_fake), model_state

        if reused is None:
            (g_loss, g_model_state), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g.params)
        else:  # chain rule through the kept pullback: no second G forward pass
            fake, y_fake, pullback, g_model_state = reused
            g_loss, fake_grad = jax.value_and_grad(adversarial_g_loss)(fake, y_fake)
            (grads,) = pullback(fake_grad)
        grads = pmean(grads)
        g = _update(g, grads, g_tx, g_model_state)
        g_ema = state.g_ema
        if use_ema:
            g_ema = optax.incremental_update(g.params, g_ema, 1.0 - state.hparams["ema_decay"])
        metrics = {**d_metrics, "g_loss": g_loss, "g_grad_norm": optax.tree.norm(grads)}
        new_state = state.replace(step=state.step + 1, g=g, d=d, g_ema=g_ema)
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


def host_r1_schedule(config: ml_collections.ConfigDict) -> bool:
    """Whether lazy R1 is scheduled on the host: two compiled steps (with and without R1), chosen
    per dispatch by `r1_due_at`. Needs one step a dispatch and one D update a step, so that every
    dispatch is either due or not; otherwise the step decides with a `lax.cond`."""
    return (config.reg.r1_weight > 0 and config.reg.get("r1_every", 1) > 1 and config.steps_per_dispatch == 1
            and config.n_critic == 1)


def r1_due_at(config: ml_collections.ConfigDict, step: int) -> bool:
    """Whether the D update of `step` adds lazy R1 (with n_critic = 1)."""
    return step % config.reg.r1_every == 0


def r1_programs(config: ml_collections.ConfigDict, build: Callable[[bool | None], T]) -> Callable[[int], T]:
    """`program_at(step)`: what to dispatch at `step`, from `build(r1_due)` (a step function, a
    compiled program, a Runner). With `host_r1_schedule`, `build(True)` on the steps where lazy R1
    is due and `build(False)` on the others; otherwise the one `build(None)` (R1, if any, inside)."""
    if not host_r1_schedule(config):
        program = build(None)
        return lambda step: program
    plain, with_r1 = build(False), build(True)
    return lambda step: with_r1 if r1_due_at(config, step) else plain


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
