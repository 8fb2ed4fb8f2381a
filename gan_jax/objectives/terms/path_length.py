"""Path-length regularization (Karras et al. 2020, StyleGAN2), on G, as NVlabs/stylegan2-ada-pytorch
computes it (training/loss.py, the `Gpl` phase):

    lengths_i = sqrt(mean over the num_ws ws of |J_i^T n_i|^2),   J_i the Jacobian of image i in its ws,
    pl_mean  <- pl_mean + decay * (mean_i lengths_i - pl_mean),
    value     = mean_i (lengths_i - pl_mean)^2,

on a batch of batch / `reg.path_length.batch_shrink` samples, each with noise n_i ~ N(0, 1) / sqrt(H * W)
of the image's shape (J_i^T n_i is the gradient of sum(image_i * n_i) in its ws [num_ws, w_dim]). As in
the reference, the new pl_mean enters the value without a stop-gradient (its dependence on this batch's
lengths is differentiated), and is then kept, detached, as the running mean. `reg.path_length.weight`
(the reference's pl_weight, 2 in its paper configs; 0 here: off), applied every `every` = 4 G updates
with the weight times 4 (G_reg_interval). The running mean starts at 0 and lives in the training state
(`state.terms`), so a resumed run carries on with it.

Differences from the reference, and why. The samples are every `batch_shrink`-th row of the G update's
z and labels (the reference: the first batch / shrink rows of its regularization phase's own draw);
both are i.i.d. draws, and a strided subset is the same set of rows on one device and under pmap.
The mean of the lengths is over the global batch (the reference's is per GPU), so every device keeps
the same pl_mean. The mapping runs as in a training forward (style mixing included) but its w_avg
update from this batch is dropped: w_avg moves with G's own forward only.

It needs a generator with a mapping and a synthesis network (`map`, `synthesize`: StyleGAN2).
"""

import math

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.objectives.base import TermOutput, register_term
from gan_jax.rng import stream

NEEDED_METHODS = ("map", "synthesize")


def path_lengths(synthesize, ws: jax.Array, noise: jax.Array) -> jax.Array:
    """[B]: sqrt(mean over ws of the sum over w_dim of g^2), g [B, num_ws, w_dim] the gradient in `ws` of
    sum(synthesize(ws) * noise). Differentiable (in `ws` and whatever `synthesize` closes over)."""
    _, pullback = jax.vjp(synthesize, ws)
    (grad,) = pullback(noise.astype(jnp.float32))
    return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grad.astype(jnp.float32)), axis=2), axis=1))


def running_mean(pl_mean: jax.Array, lengths_mean: jax.Array, decay: jax.Array) -> jax.Array:
    """pl_mean moved toward this batch's mean length by `decay` (torch's lerp)."""
    return pl_mean + decay * (lengths_mean - pl_mean)


def path_length(ctx):
    shrink = ctx.settings.batch_shrink
    if ctx.z.shape[0] % shrink:
        raise ConfigError(f"Config key 'reg.path_length.batch_shrink' ({shrink}) must divide the batch per device "
                          f"({ctx.z.shape[0]}).")
    z = ctx.z[::shrink]
    y = None if ctx.fake_labels is None else ctx.fake_labels[::shrink]
    ws = ctx.apply_generator("map", z, y, train=True, rngs={"mixing": stream(ctx.key, "mixing")})
    shape = ctx.fake.shape[1:]  # (H, W, C)
    noise = ctx.per_sample(stream(ctx.key, "pl_noise"), lambda key, n: jax.random.normal(key, (n,) + shape))
    noise = noise[::shrink] / math.sqrt(shape[0] * shape[1])

    def synthesize(w):
        return ctx.apply_generator("synthesize", w, rngs={"noise": stream(ctx.key, "noise")})

    lengths = path_lengths(synthesize, ws, noise)
    pl_mean = running_mean(ctx.state["mean"], ctx.mean(lengths), ctx.hparams["decay"])
    value = ctx.mean(jnp.square(lengths - pl_mean))
    kept = jax.lax.stop_gradient(pl_mean)
    return TermOutput(value, {"pl_mean": kept}, {"mean": kept})


def _init_state(config):
    return {"mean": jnp.zeros((), jnp.float32)}


def _validate(settings, config):
    from gan_jax.models import GENERATORS

    shrink = settings.batch_shrink
    if not isinstance(shrink, int) or isinstance(shrink, bool) or shrink < 1:
        raise ConfigError(f"Config key 'reg.path_length.batch_shrink' must be a positive integer, got {shrink!r}.")
    if not 0.0 <= settings.decay <= 1.0:
        raise ConfigError(f"Config key 'reg.path_length.decay' must be in [0, 1], got {settings.decay!r}.")
    if not (settings.weight > 0 or settings.weight_end > 0):
        return
    if config.batch_size % shrink:
        raise ConfigError(f"Config key 'reg.path_length.batch_shrink' ({shrink}) must divide batch_size "
                          f"({config.batch_size}).")
    generator = config.model.generator
    if not set(NEEDED_METHODS) <= set(GENERATORS.get(generator).methods):
        raise ConfigError(f"Config key 'reg.path_length.weight': path-length regularization differentiates G's "
                          f"synthesis network at its ws, so it needs a generator with a mapping and a synthesis "
                          f"network, which model.generator={generator!r} does not have. Use "
                          "--config.model.generator=stylegan2, or --config.reg.path_length.weight=0.")


register_term("path_length", g=path_length, config={"every": 4, "decay": 0.01, "batch_shrink": 2},
              hparams=("decay",), init_state=_init_state, validate=_validate, needs_generator=True)
