"""Text GAN models: autoregressive generators with Gumbel-softmax outputs and RelGAN's CNN discriminator.

A generator maps latent noise z [B, latent_dim] to [B, max_len, vocab] rows on the simplex.
The bits of z seed each sample's Gumbel noise, so a sample is a pure function of its own z
(the same on one device or many). At each position it samples a hard token
y_t = argmax(o_t + g_t) with Gumbel noise g_t and feeds that token back (no gradient through
the choice); in training it emits the relaxed one-hot softmax(beta * (o_t + g_t)) (RelGAN),
whose gradient reaches the logits. beta is annealed from 1 to `beta_max` over the generator's
own update counter (the `schedule` collection, advanced once per training call whose variables
are kept, i.e. once per generator update). With `hard=True` (REINFORCE) or in inference mode the
output is the hard one-hot sample.

Teacher forcing (`log_prob`) and id sampling (`sample_ids`) are methods of the same modules.
"""

from __future__ import annotations

import math
from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models import register_discriminator, register_generator

ANNEALS = ("exp", "linear", "constant")


def beta_at(step: jax.Array, beta_max: float, anneal: str, anneal_steps: int) -> jax.Array:
    """RelGAN's inverse temperature after `step` generator updates: 1 -> beta_max over `anneal_steps`."""
    progress = jnp.clip(step / max(anneal_steps, 1), 0.0, 1.0)
    if anneal == "exp":
        return beta_max**progress
    if anneal == "linear":
        return 1.0 + (beta_max - 1.0) * progress
    if anneal == "constant":
        return jnp.asarray(beta_max, jnp.float32)
    raise ValueError(f"Unknown beta anneal {anneal!r} (config key 'model.text.beta_anneal'); use {', '.join(ANNEALS)}.")


def sample_keys(z: jax.Array) -> jax.Array:
    """One PRNG key per row of z, from the bits of its first two entries (z is random normal)."""
    if z.shape[-1] < 2:
        raise ValueError("Text generators need model.latent_dim >= 2 (the latent seeds the token noise).")
    bits = jax.lax.bitcast_convert_type(z[:, :2].astype(jnp.float32), jnp.uint32)
    return jax.vmap(lambda b: jax.random.wrap_key_data(b, impl="threefry2x32"))(bits)


class _TextGenerator(nn.Module):
    """Shared sampling, relaxation and teacher forcing.

    Subclasses define `_make_params`, `_start`, `_step` and `_teacher_logits`.
    """

    vocab_size: int
    max_len: int
    beta_max: float = 100.0
    beta_anneal: str = "exp"
    anneal_steps: int = 5000
    hard: bool = False

    def setup(self):
        self.weights = self._make_params()
        self.counter = self.variable("schedule", "step", lambda: jnp.zeros((), jnp.int32))

    def _params(self):
        return self.weights

    def _unroll(self, z, noise_scale: float, temperature: float, emit):
        """Runs the autoregressive loop; `emit(logits, gumbel, token)` gives each position's output."""
        batch = z.shape[0]
        keys = sample_keys(z)
        gumbel = jax.vmap(lambda k: jax.random.gumbel(k, (self.max_len, self.vocab_size)))(keys) * noise_scale
        gumbel = jnp.swapaxes(gumbel, 0, 1)  # [T, B, V]
        params = self._params()
        carry, inputs = self._start(params, batch)

        def body(state, xs):
            carry, inputs = state
            t, g = xs
            carry, logits = self._step(params, carry, inputs, t)
            perturbed = logits / temperature + g
            token = jnp.argmax(perturbed, axis=-1)
            inputs = params["embedding"][token]
            return (carry, inputs), emit(logits / temperature, g, token)

        _, out = jax.lax.scan(body, (carry, inputs), (jnp.arange(self.max_len), gumbel))
        return jnp.swapaxes(out, 0, 1)

    def __call__(self, z, train: bool = True):
        beta = beta_at(self.counter.value, self.beta_max, self.beta_anneal, self.anneal_steps)
        if train and not self.is_initializing():
            self.counter.value = self.counter.value + 1

        def emit(logits, g, token):
            if self.hard or not train:
                return jax.nn.one_hot(token, self.vocab_size)
            return jax.nn.softmax(beta * (logits + g), axis=-1)

        out = self._unroll(z, 1.0, 1.0, emit)
        chex.assert_shape(out, (z.shape[0], self.max_len, self.vocab_size))
        return out

    def sample_ids(self, z, temperature: float = 1.0):
        """int32 [B, max_len]: tokens sampled from softmax(logits / temperature)."""
        return self._unroll(z, 1.0, temperature, lambda logits, g, token: token.astype(jnp.int32))

    def log_prob(self, ids, temperature=1.0):
        """float [B, T]: log p(ids_t | ids_<t) under teacher forcing, p = softmax(logits / temperature)
        (the distribution `sample_ids` draws from at that temperature). A vector of K temperatures
        gives [K, B, T] from one teacher-forced pass."""
        logits = self._teacher_logits(self._params(), ids)
        index = ids[..., None].astype(jnp.int32)

        def pick(t):
            return jnp.take_along_axis(jax.nn.log_softmax(logits / t, axis=-1), index, axis=-1)[..., 0]

        temperature = jnp.asarray(temperature, logits.dtype)
        if temperature.ndim == 0:
            return pick(temperature)
        return jnp.stack([pick(temperature[k]) for k in range(temperature.shape[0])])


class LSTMGenerator(_TextGenerator):
    """A 1-layer LSTM language model with a learned start input (SeqGAN / RelGAN's LSTM baseline)."""

    emb_dim: int = 32
    hidden_dim: int = 32

    def _make_params(self):
        v, e, h = self.vocab_size, self.emb_dim, self.hidden_dim
        normal = nn.initializers.normal(0.1)
        return {
            "embedding": self.param("embedding", normal, (v, e)),
            "start": self.param("start", normal, (e,)),
            "w": self.param("w", nn.initializers.lecun_normal(), (e, 4 * h)),
            "u": self.param("u", nn.initializers.orthogonal(), (h, 4 * h)),
            "b": self.param("b", nn.initializers.zeros, (4 * h,)),
            "w_out": self.param("w_out", nn.initializers.lecun_normal(), (h, v)),
            "b_out": self.param("b_out", nn.initializers.zeros, (v,)),
        }

    def _start(self, params, batch):
        zeros = jnp.zeros((batch, self.hidden_dim))
        return (zeros, zeros), jnp.broadcast_to(params["start"], (batch, self.emb_dim))

    def _step(self, params, carry, inputs, t):
        h, c = carry
        gates = inputs @ params["w"] + h @ params["u"] + params["b"]
        i, f, o, g = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)  # forget bias 1
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h @ params["w_out"] + params["b_out"]

    def _teacher_logits(self, params, ids):
        batch = ids.shape[0]
        carry, start = self._start(params, batch)
        inputs = jnp.concatenate([start[:, None], params["embedding"][ids[:, :-1]]], axis=1)

        def body(carry, x):
            return self._step(params, carry, x, None)

        _, logits = jax.lax.scan(body, carry, jnp.swapaxes(inputs, 0, 1))
        return jnp.swapaxes(logits, 0, 1)


class _CausalTransformer(nn.Module):
    """Pre-LayerNorm causal Transformer over input embeddings [B, T, E] -> logits [B, T, V]."""

    vocab_size: int
    max_len: int
    width: int
    num_layers: int
    num_heads: int

    @nn.compact
    def __call__(self, x):
        t = x.shape[1]
        h = nn.Dense(self.width)(x) + self.param("position", nn.initializers.normal(0.02), (self.max_len, self.width))[:t]
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2]))
        for _ in range(self.num_layers):
            h = h + nn.MultiHeadDotProductAttention(self.num_heads)(nn.LayerNorm()(h), mask=mask)
            y = nn.Dense(4 * self.width)(nn.LayerNorm()(h))
            h = h + nn.Dense(self.width)(nn.gelu(y))
        return nn.Dense(self.vocab_size)(nn.LayerNorm()(h))


class TransformerGenerator(_TextGenerator):
    """A small causal Transformer language model; sampling re-reads the whole prefix each position."""

    emb_dim: int = 32
    width: int = 64
    num_layers: int = 2
    num_heads: int = 4

    def _lm(self):
        return _CausalTransformer(self.vocab_size, self.max_len, self.width, self.num_layers, self.num_heads,
                                  parent=None)

    def _make_params(self):
        normal = nn.initializers.normal(0.1)
        dummy = jnp.zeros((1, self.max_len, self.emb_dim))
        return {
            "embedding": self.param("embedding", normal, (self.vocab_size, self.emb_dim)),
            "start": self.param("start", normal, (self.emb_dim,)),
            # A pure function of its own parameter tree, so it can run inside lax.scan.
            "lm": self.param("lm", lambda key: self._lm().init(key, dummy)["params"]),
        }

    def _start(self, params, batch):
        buffer = jnp.zeros((batch, self.max_len, self.emb_dim))
        return buffer, jnp.broadcast_to(params["start"], (batch, self.emb_dim))

    def _step(self, params, buffer, inputs, t):
        buffer = jax.lax.dynamic_update_slice_in_dim(buffer, inputs[:, None], t, axis=1)
        logits = self._lm().apply({"params": params["lm"]}, buffer)  # causal: position t sees inputs <= t
        return buffer, jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)

    def _teacher_logits(self, params, ids):
        start = jnp.broadcast_to(params["start"], (ids.shape[0], 1, self.emb_dim))
        inputs = jnp.concatenate([start, params["embedding"][ids[:, :-1]]], axis=1)
        return self._lm().apply({"params": params["lm"]}, inputs)


def _unfold(x, window: int):
    """[..., T, E] -> [..., T - window + 1, window * E]: each position's window of rows, concatenated."""
    n = x.shape[-2] - window + 1
    return jnp.concatenate([x[..., i:i + n, :] for i in range(window)], axis=-1)


def _window_matmul(x, kernel):
    """The VALID convolution of x [..., T, E] with kernel [w, E, F] as one matmul on the unfolded windows."""
    w, e, f = kernel.shape
    return _unfold(x, w) @ kernel.reshape(w * e, f)


class WindowConv(nn.Module):
    """A 'VALID' 1-D convolution over time written as one matmul on the unfolded windows.

    [B, T, E] -> [B, T - window + 1, features]; the same function as `nn.Conv(features, (window,),
    padding="VALID")` with the same parameters, but several times faster on CPU for the
    discriminator's many short sequences (XLA's CPU convolution, and its gradient, is slow here).
    """

    features: int
    window: int

    @nn.compact
    def __call__(self, x):
        e = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.window, e, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return _window_matmul(x, kernel) + bias


ELEMENTWISE_TAPS = 16  # window x channels up to which the convolution runs as fused multiply-adds


def _window_sums(x, kernel):
    """[N, T, E], [w, E, F] -> [N, T - w + 1, F]: the VALID convolution as w * E fused multiply-adds."""
    w, e, _ = kernel.shape
    n = x.shape[1] - w + 1
    return sum(x[:, i:i + n, j, None] * kernel[i, j] for i in range(w) for j in range(e))


@jax.custom_vjp
def conv_max(x, kernel):
    """max over time of the VALID convolution of x [N, T, E] with kernel [w, E, F]: [N, F].

    For few taps (window x channels) the convolution is never materialised: the forward pass is
    one fused loop, and the backward pass recomputes which positions hold the maximum and
    splits the gradient among tied ones, as `jnp.max`'s gradient does.
    """
    return jnp.max(_window_sums(x, kernel), axis=1)


def _conv_max_fwd(x, kernel):
    peak = jnp.max(_window_sums(x, kernel), axis=1)
    return peak, (x, kernel, peak)


def _conv_max_bwd(residuals, g):
    x, kernel, peak = residuals
    w, e, f = kernel.shape
    n = x.shape[1] - w + 1
    hit = _window_sums(x, kernel) == peak[:, None]
    share = jnp.where(hit, (g / jnp.sum(hit, axis=1))[:, None], 0.0)  # [N, n, F]
    d_kernel = jnp.einsum("ntk,ntf->kf", _unfold(x, w), share).reshape(w, e, f)  # unfolded: [N, n, w * E]
    taps = jnp.einsum("ntf,kf->ntk", share, kernel.reshape(w * e, f)).reshape(x.shape[0], n, w, e)
    d_x = sum(jnp.pad(taps[:, :, i], ((0, 0), (i, w - 1 - i), (0, 0))) for i in range(w))
    return d_x, d_kernel


conv_max.defvjp(_conv_max_fwd, _conv_max_bwd)


class WindowConvMaxPool(nn.Module):
    """relu(max over time of a 'VALID' window convolution + bias): [B, T, E] -> [B, features].

    The same function and parameters as `WindowConv` followed by relu and a max over time (relu
    commutes with the max); with few taps it runs through `conv_max`, several times faster on
    CPU for RelGAN's one-feature representations.
    """

    features: int
    window: int

    @nn.compact
    def __call__(self, x):
        e = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.window, e, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.window * e <= ELEMENTWISE_TAPS:
            peak = conv_max(x, kernel)
        else:
            peak = jnp.max(_window_matmul(x, kernel), axis=-2)
        return nn.relu(peak + bias)


class RelGANDiscriminator(nn.Module):
    """RelGAN's CNN discriminator over one-hot (or relaxed one-hot) text.

    The input [B, T, V] (or int ids [B, T], equivalent to their one-hot rows) is embedded `num_rep`
    times (V is read from the input at initialisation);
    each representation passes convolutions of window 2..5 over time, max-pooling over time,
    a highway layer and two dense layers, giving one logit per representation: [B, num_rep].
    """

    num_rep: int = 64
    emb_dim: int = 64
    num_filters: int = 100
    windows: Sequence[int] = (2, 3, 4, 5)
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        integer = jnp.issubdtype(x.dtype, jnp.integer)
        if self.has_variable("params", "embedding"):
            vocab_size = self.get_variable("params", "embedding").shape[0]
        elif integer:
            raise ValueError("Initialise the text discriminator with one-hot input [B, T, vocab], not token ids.")
        else:
            vocab_size = x.shape[-1]  # the model registry gives discriminators no data shape
        table = self.param("embedding", nn.initializers.normal(1.0 / math.sqrt(self.emb_dim)),
                           (vocab_size, self.num_rep * self.emb_dim))
        if integer:
            emb = table[x]  # the same as one_hot(x) @ table, without the [B, T, V] array
        else:
            chex.assert_axis_dimension(x, -1, vocab_size)
            emb = x @ table
        b, t = emb.shape[:2]
        emb = emb.reshape(b, t, self.num_rep, self.emb_dim)
        emb = jnp.swapaxes(emb, 1, 2).reshape(b * self.num_rep, t, self.emb_dim)
        windows = [w for w in self.windows if w <= t] or [t]
        pooled = [WindowConvMaxPool(self.num_filters, w, name=f"WindowConv_{i}")(emb)
                  for i, w in enumerate(windows)]
        h = jnp.concatenate(pooled, axis=-1)
        gate = nn.sigmoid(nn.Dense(h.shape[-1])(h))
        h = gate * nn.relu(nn.Dense(h.shape[-1])(h)) + (1.0 - gate) * h  # highway
        h = nn.relu(nn.Dense(100)(h))
        out = nn.Dense(1)(h).reshape(b, self.num_rep)
        return out


# model.text: the text networks' settings, shared by the generators and RelGAN's discriminator.
TEXT_CONFIG = {"text": {
    "emb_dim": 32,
    "hidden_dim": 32,  # LSTM state; Transformer width
    "num_layers": 2,  # Transformer
    "num_heads": 4,  # Transformer
    "beta_max": 100.0,  # Gumbel-softmax inverse temperature reached at the end of the anneal
    "beta_anneal": "exp",  # exp | linear | constant (RelGAN)
    "beta_anneal_steps": 5000,  # generator updates to reach beta_max
    "hard_samples": False,  # emit hard one-hot tokens (REINFORCE) instead of relaxed ones
    "d_num_rep": 64,  # RelGAN D: embedded representations of the input
    "d_emb_dim": 64,
    "d_num_filters": 100,  # per window size (2, 3, 4, 5)
}}


def _check_text(model, config):
    if model.text.beta_anneal not in ANNEALS:
        raise ConfigError(f"Config key 'model.text.beta_anneal' is {model.text.beta_anneal!r}; use {', '.join(ANNEALS)}.")
    if model.text.beta_max < 1:
        raise ConfigError("Config key 'model.text.beta_max': must be >= 1 (beta anneals from 1).")
    if config.text.g_objective == "reinforce" and not model.text.hard_samples:
        raise ConfigError("Config key 'model.text.hard_samples': must be True with text.g_objective='reinforce': D "
                          "judges sampled tokens, not relaxed ones.")


# Text data have shape (max_len, vocab_size).
register_generator("lstm", lambda m, shape, axis, classes: LSTMGenerator(
    shape[1], shape[0], m.text.beta_max, m.text.beta_anneal, m.text.beta_anneal_steps, m.text.hard_samples,
    emb_dim=m.text.emb_dim, hidden_dim=m.text.hidden_dim), config=TEXT_CONFIG, validate=_check_text)
register_generator("transformer", lambda m, shape, axis, classes: TransformerGenerator(
    shape[1], shape[0], m.text.beta_max, m.text.beta_anneal, m.text.beta_anneal_steps, m.text.hard_samples,
    emb_dim=m.text.emb_dim, width=m.text.hidden_dim, num_layers=m.text.num_layers, num_heads=m.text.num_heads),
    config=TEXT_CONFIG, validate=_check_text)
register_discriminator("relgan_cnn", lambda m, shape, axis, classes: RelGANDiscriminator(
    m.text.d_num_rep, m.text.d_emb_dim, m.text.d_num_filters, axis_name=axis), config=TEXT_CONFIG)
