"""make_train_step(): the one pure GAN step, and k-step fusion with lax.scan."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import losses, regularizers
from gan_jax.models import sample_latent
from gan_jax.state import GANState, TrainState, pack_input

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def _apply(model: nn.Module, params, model_state: dict, x, train: bool):
    """Applies a module; returns (output, updated non-parameter variables)."""
    variables = {"params": params, **model_state}
    if train and model_state:
        out, updates = model.apply(variables, x, train=True, mutable=list(model_state))
        return out, {**model_state, **updates}
    return model.apply(variables, x, train=train), model_state


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
                    axis_name: str | None = None, num_devices: int = 1
                    ) -> Callable[[GANState, Batch], tuple[GANState, Metrics]]:
    """Builds `train_step(state, batch) -> (state, metrics)`.

    `batch["x"]` holds `n_critic` real batches, shape [n_critic, B, ...] (B per device under
    pmap). The step runs `n_critic` discriminator updates, then one generator update, then
    the EMA update. Under pmap (`axis_name` set) gradients and reported values are averaged
    over devices and batch-norm statistics are those of the global batch.
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

    def pmean(tree):
        return jax.lax.pmean(tree, axis_name) if axis_name else tree

    def generate(params, model_state, key, train: bool):
        z = _global_slice(sample_latent(key, global_batch, config.model), local_batch, axis_name)
        return _apply(g_model, params, model_state, z, train)

    def d_update(carry, inputs):
        g, d, key, hparams = carry
        x_real, i = inputs
        key_i = jax.random.fold_in(key, i)
        z_key, eps_key = jax.random.split(key_i)
        fake, _ = generate(g.params, g.model_state, z_key, train=True)  # G's running statistics move only in its own update
        fake = jax.lax.stop_gradient(fake)

        def d_loss_fn(params):
            real_logits, model_state = _apply(d_model, params, d.model_state, pack_input(x_real, pack), True)
            fake_logits, model_state = _apply(d_model, params, model_state, pack_input(fake, pack), True)
            adv = loss.d(real_logits, fake_logits, mean)
            aux = {"d_adv": adv, "d_real": mean(real_logits), "d_fake": mean(fake_logits)}
            total = adv

            def critic(x):
                return _apply(d_model, params, model_state, pack_input(x, pack), True)[0]

            if use_gp:
                eps = _global_slice(jax.random.uniform(eps_key, (global_batch,)), local_batch, axis_name)
                gp = jnp.mean(regularizers.gradient_penalty(critic, x_real, fake, eps))
                total = total + hparams["gp_weight"] * gp
                aux["gp"] = gp
            if use_r1:
                r1 = jnp.mean(regularizers.r1_penalty(critic, x_real))
                total = total + hparams["r1_weight"] * r1
                aux["r1"] = r1
            return total, (aux, model_state)

        (d_loss, (aux, model_state)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
        grads = pmean(grads)
        d = _update(d, grads, d_tx, model_state)
        aux = {"d_loss": d_loss, "d_grad_norm": optax.tree.norm(grads), **aux}
        return (g, d, key, hparams), pmean(aux)

    def train_step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        key = jax.random.fold_in(state.rng, state.step)
        d_key, g_key = jax.random.split(key)
        (_, d, _, _), d_metrics = jax.lax.scan(
            d_update, (state.g, state.d, d_key, state.hparams), (batch["x"], jnp.arange(n_critic)))
        d_metrics = jax.tree.map(lambda v: v[-1], d_metrics)

        g = state.g
        real_logits = None
        if loss.needs_real_in_g:
            real_logits, _ = _apply(d_model, d.params, d.model_state, pack_input(batch["x"][-1], pack), True)
            real_logits = jax.lax.stop_gradient(real_logits)

        def g_loss_fn(params):
            fake, model_state = generate(params, g.model_state, g_key, train=True)
            fake_logits, _ = _apply(d_model, d.params, d.model_state, pack_input(fake, pack), True)
            return loss.g(real_logits, fake_logits, mean), model_state

        (g_loss, g_model_state), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g.params)
        grads = pmean(grads)
        g = _update(g, grads, g_tx, g_model_state)
        g_ema = state.g_ema
        if use_ema:
            g_ema = optax.incremental_update(g.params, g_ema, 1.0 - state.hparams["ema_decay"])
        metrics = {**d_metrics, "g_loss": g_loss, "g_grad_norm": optax.tree.norm(grads)}
        new_state = state.replace(step=state.step + 1, g=g, d=d, g_ema=g_ema)
        return new_state, pmean(metrics)

    return train_step


def fuse_steps(train_step: Callable) -> Callable:
    """k steps in one call: `batch["x"]` gains a leading axis of k; metrics are averaged over k."""

    def multi_step(state: GANState, batch: Batch):
        state, metrics = jax.lax.scan(train_step, state, batch)
        return state, jax.tree.map(lambda v: jnp.mean(v, axis=0), metrics)

    return multi_step
