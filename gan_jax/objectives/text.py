"""Generator objectives for text that are not a gradient through the discriminator, and MLE pretraining.

The step uses the generator objective named by `text.g_objective`:
- `adversarial` (default): G's loss is the configured adversarial loss of D on G's output
  (for text generators, Gumbel-softmax relaxed one-hot sequences), as for images.
- `reinforce`: SeqGAN-style policy gradient. Sampled sequences are scored by D; the reward
  is D's probability that a sequence is real (the sigmoid of its logit, averaged over D's
  representations), the baseline is the batch mean reward, and G minimises
  -E[(reward - baseline) * mean_t log p(y_t | y_<t)].
- `mle`: teacher-forced negative log-likelihood of the real batch (maximum likelihood alone,
  the baseline; D still trains but G ignores it).

`make_mle_step` is the pure MLE step of the pretraining phase, with its own optimizer.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax.objectives.base import register_g_objective


def mle_loss(g_model: nn.Module, params, model_state, ids: jax.Array) -> jax.Array:
    """Mean per-token negative log-likelihood of int ids [B, T] under teacher forcing."""
    logp = g_model.apply({"params": params, **model_state}, ids, method="log_prob")
    return -jnp.mean(logp)


def _mle(g_model: nn.Module, mean: Callable):
    def mle(params, model_state, z, real, critic):
        return mean(-g_model.apply({"params": params, **model_state}, real, method="log_prob")), model_state

    return mle


def _reinforce(g_model: nn.Module, mean: Callable):
    def reinforce(params, model_state, z, real, critic):
        variables = {"params": params, **model_state}
        ids = jax.lax.stop_gradient(g_model.apply(variables, z, method="sample_ids"))
        logits = critic(jax.nn.one_hot(ids, g_model.vocab_size))
        reward = jax.nn.sigmoid(logits.reshape(logits.shape[0], -1)).mean(axis=-1)
        advantage = jax.lax.stop_gradient(reward - mean(reward))
        logp = g_model.apply(variables, ids, method="log_prob").mean(axis=-1)
        return mean(-advantage * logp), model_state

    return reinforce


# `objective(params, model_state, z, real, critic) -> (loss, model_state)`: `real` is the last real
# batch (token ids), `critic(x)` D's logits on a batch of one-hot sequences.
register_g_objective("mle", _mle)
register_g_objective("reinforce", _reinforce)


def make_mle_step(g_model: nn.Module, tx: optax.GradientTransformation):
    """`mle_step(params, opt_state, model_state, ids) -> (params, opt_state, nll)`: one teacher-forcing update.

    Pure; `ids` are int token ids [B, T]; `nll` is the batch's mean per-token NLL before the update.
    """

    def mle_step(params, opt_state, model_state, ids):
        nll, grads = jax.value_and_grad(lambda p: mle_loss(g_model, p, model_state, ids))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, nll

    return mle_step


def make_pretrain_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam at `text.pretrain_lr` with global-norm clipping 5 (RelGAN's pretraining)."""
    return optax.chain(optax.clip_by_global_norm(5.0), optax.adam(config.text.pretrain_lr))
