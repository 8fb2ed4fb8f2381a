"""What a text run adds to the loop: the saved tokenizer, MLE pretraining, and text evaluation.

Evaluation samples `eval.num_samples` sentences at `text.sample_temperature` on fixed noise,
writes them decoded to `WORKDIR/samples/step_XXXXXXXX.txt` (and TensorBoard text), and
reports:
- `nll_gen`: the generator's per-token NLL of the held-out set (up to `<eos>` for real text);
- `nll_oracle` (oracle data): the oracle's per-token NLL of the samples, beside
  `nll_oracle_floor`, the oracle's NLL of its own held-out samples;
- real text: BLEU-2..5 of every sample against the whole held-out set, self-BLEU-2..5 (leave
  one out), and the unique-sentence and unique-n-gram ratios (on words).
"""

from __future__ import annotations

import functools
import pathlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import text_objectives
from gan_jax.data import DataSpec, oracle
from gan_jax.data.tokenizer import EOS_ID, IdentityTokenizer
from gan_jax.metrics import text as text_metrics
from gan_jax.models import sample_latent
from gan_jax.state import GANState

EVAL_STREAM = 2**31 - 2  # the same fixed evaluation noise as evaluate.generate
PRETRAIN_STREAM = 2**31 - 3  # the pretraining data order, disjoint from the adversarial one
_CHUNK = 250  # sequences per device call when sampling or scoring


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

    batches = ArrayIterator({"x": train_ids}, config.batch_size, config.seed + PRETRAIN_STREAM)
    params, opt_state = state.g.params, tx.init(state.g.params)
    start, done, nll = time.time(), 0, float("nan")
    while done < steps:
        chunk = min(k, steps - done)
        params, opt_state, nll = k_steps(params, opt_state, batches.next_batches(chunk)["x"])
        done += chunk
        if done % max(config.log_every_steps, k) < k or done == steps:
            nll = float(nll)
            if not np.isfinite(nll):
                raise FloatingPointError(f"MLE pretraining NLL is {nll} at step {done}; lower text.pretrain_lr.")
            report(f"gan_jax: MLE pretraining {done}/{steps}: NLL {nll:.4f} ({time.time() - start:.0f} s)")
    if writer is not None:
        writer.write_scalars(0, {"pretrain/nll": nll, "pretrain/steps": steps,
                                 "pretrain/seconds": time.time() - start})
    g_ema = jax.tree.map(jnp.copy, params) if state.g_ema is not None else None
    return state.replace(g=state.g.replace(params=params), g_ema=g_ema)


@functools.partial(jax.jit, static_argnums=0)
def _sample_ids(g_model: nn.Module, params, model_state, z, temperature):
    return g_model.apply({"params": params, **model_state}, z, temperature, method="sample_ids")


@functools.partial(jax.jit, static_argnums=0)
def _log_prob(g_model: nn.Module, params, model_state, ids):
    return g_model.apply({"params": params, **model_state}, ids, method="log_prob")


def sample_ids(g_model: nn.Module, state: GANState, num: int, config: ml_collections.ConfigDict,
               use_ema: bool = True) -> np.ndarray:
    """int32 [num, max_len] samples at `text.sample_temperature`, on the fixed evaluation noise."""
    z = sample_latent(jax.random.fold_in(state.rng, EVAL_STREAM), num, config.model)
    params = state.g_ema if (use_ema and state.g_ema is not None) else state.g.params
    temperature = jnp.float32(config.text.sample_temperature)
    return np.concatenate([np.asarray(_sample_ids(g_model, params, state.g.model_state, z[s:s + _CHUNK],
                                                  temperature)) for s in range(0, num, _CHUNK)])


def token_mask(ids: np.ndarray, real_text: bool) -> np.ndarray:
    """Which positions count as tokens: for real text up to and including the first `<eos>`."""
    if not real_text:
        return np.ones(ids.shape, bool)
    is_eos = ids == EOS_ID
    before = np.cumsum(is_eos, axis=1) - is_eos  # eos tokens strictly before each position
    return before == 0


def nll_gen(g_model: nn.Module, params, model_state, ids: np.ndarray, real_text: bool) -> float:
    """The generator's mean per-token NLL of `ids` (teacher forcing)."""
    logp = np.concatenate([np.asarray(_log_prob(g_model, params, model_state, ids[s:s + _CHUNK]))
                           for s in range(0, len(ids), _CHUNK)])
    mask = token_mask(ids, real_text)
    return float(-(logp * mask).sum() / mask.sum())


@functools.lru_cache(maxsize=4)
def _bleu_scorer(references: tuple) -> text_metrics.BleuScorer:
    return text_metrics.BleuScorer(references)  # built once per reference set, reused by every eval


def evaluate_text(g_model: nn.Module, state: GANState, spec: DataSpec, config: ml_collections.ConfigDict,
                  workdir: pathlib.Path, step: int, writer=None) -> dict[str, float]:
    """Samples, writes them decoded, and returns the text metrics (see the module docstring)."""
    tokenizer = spec.extra["tokenizer"]
    test_ids = spec.extra["test_ids"]
    real_text = not isinstance(tokenizer, IdentityTokenizer)
    ids = sample_ids(g_model, state, config.eval.num_samples, config, config.eval.use_ema)
    params = state.g_ema if (config.eval.use_ema and state.g_ema is not None) else state.g.params
    metrics = {"nll_gen": nll_gen(g_model, params, state.g.model_state, test_ids, real_text)}
    decoded = [tokenizer.decode(row) for row in ids]
    if real_text:
        words = [d.split() for d in decoded]
        references = tuple(tuple(tokenizer.decode(row).split()) for row in test_ids)
        scorer = _bleu_scorer(references)
        for n, v in scorer.corpus_mean(words).items():
            metrics[f"bleu{n}"] = v
        for n, v in text_metrics.self_bleu(words).items():
            metrics[f"self_bleu{n}"] = v
        metrics.update(text_metrics.unique_ratios(words, orders=(2, 3, 4)))
    else:
        params_oracle = oracle.cached_params()
        metrics["nll_oracle"] = oracle.nll(params_oracle, ids)
        metrics["nll_oracle_floor"] = _oracle_floor(test_ids)
        metrics.update(text_metrics.unique_ratios([list(map(str, row)) for row in ids.tolist()], orders=(2, 3, 4)))
    path = workdir / "samples" / f"step_{step:08d}.txt"
    path.write_text("".join(line + "\n" for line in decoded), encoding="utf-8")
    if writer is not None:
        writer.write_text(step, "samples", "\n\n".join(decoded[:20]))
    return metrics


@functools.lru_cache(maxsize=2)
def _oracle_floor_cached(n: int, ids_bytes: bytes) -> float:
    ids = np.frombuffer(ids_bytes, np.int32).reshape(n, -1)
    return oracle.nll(oracle.cached_params(), ids)


def _oracle_floor(test_ids: np.ndarray) -> float:
    """The oracle's NLL of its own held-out samples (computed once per held-out set)."""
    return _oracle_floor_cached(len(test_ids), np.ascontiguousarray(test_ids, np.int32).tobytes())
