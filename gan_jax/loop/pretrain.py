"""What a text run does before its first adversarial step: save its tokenizer, pretrain G by MLE."""

from __future__ import annotations

import pathlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax.core.state import GANState
from gan_jax.data import DataSpec
from gan_jax.errors import DivergenceError
from gan_jax.objectives import text as text_objectives

PRETRAIN_DATA_SEED = 2**31 - 3  # added to the run's seed: the pretraining data order, apart from the adversarial one


def save_tokenizer(workdir: pathlib.Path, spec: DataSpec) -> None:
    """WORKDIR/tokenizer.json, so saved samples and checkpoints decode back to text."""
    spec.extra["tokenizer"].save(workdir / "tokenizer.json")


def pretrain(config: ml_collections.ConfigDict, g_model: nn.Module, state: GANState, train_ids: np.ndarray,
             writer=None, report=print) -> GANState:
    """`text.pretrain_steps` MLE updates of the generator (teacher forcing, its own Adam), then the state.

    The EMA (if any) restarts from the pretrained parameters. Deterministic given the config.
    """
    steps = config.text.pretrain_steps
    if steps == 0:
        return state
    from gan_jax.data import ArrayIterator

    tx = text_objectives.make_pretrain_optimizer(config)
    mle_step = text_objectives.make_mle_step(g_model, tx)
    k = min(50, steps)

    @jax.jit
    def k_steps(params, opt_state, batches):
        def body(carry, ids):
            params, opt_state = carry
            params, opt_state, nll = mle_step(params, opt_state, state.g.model_state, ids)
            return (params, opt_state), nll

        (params, opt_state), nll = jax.lax.scan(body, (params, opt_state), batches)
        return params, opt_state, jnp.mean(nll)

    batches = ArrayIterator({"x": train_ids}, config.batch_size, config.seed + PRETRAIN_DATA_SEED)
    params, opt_state = state.g.params, tx.init(state.g.params)
    start, done, nll = time.time(), 0, float("nan")
    while done < steps:
        chunk = min(k, steps - done)
        params, opt_state, nll = k_steps(params, opt_state, batches.next_batches(chunk)["x"])
        done += chunk
        if done % max(config.log_every_steps, k) < k or done == steps:
            nll = float(nll)
            if not np.isfinite(nll):
                raise DivergenceError(f"MLE pretraining NLL is {nll} at step {done}; lower text.pretrain_lr.")
            report(f"gan_jax: MLE pretraining {done}/{steps}: NLL {nll:.4f} ({time.time() - start:.0f} s)")
    if writer is not None:
        writer.write_scalars(0, {"pretrain/nll": nll, "pretrain/steps": steps,
                                 "pretrain/seconds": time.time() - start})
    g_ema = jax.tree.map(jnp.copy, params) if state.g_ema is not None else None
    return state.replace(g=state.g.replace(params=params), g_ema=g_ema)
