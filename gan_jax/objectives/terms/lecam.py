"""LeCam regularization (Tseng et al. 2021), on D:

    E[relu(D(x_real) - ema_fake)^2] + E[relu(ema_real - D(x_fake))^2],

where ema_real and ema_fake are exponential moving averages of D's mean output on the real and fake
batches (global batch means), updated with this update's means before the term is computed, as the
reference code does. `reg.lecam.weight` is lambda (0.3 in PyTorch-StudioGAN's CIFAR-10 LeCam
configs), `reg.lecam.decay` the EMA's decay (0.99). For the first `reg.lecam.start` D updates the
averages follow the current batch (decay 0) and the term is 0; StudioGAN's `lecam_ema_start_iter`
counts generator steps, so it is `start` / `n_critic` here. The averages live in the training state
(`state.terms`), so a resumed run carries on with them.
"""

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.objectives.base import TermOutput, register_term


def lecam(ctx):
    started = ctx.update >= ctx.settings.start
    decay = jnp.where(started, ctx.hparams["decay"], 0.0)
    real_mean = jax.lax.stop_gradient(ctx.mean(ctx.real_logits))
    fake_mean = jax.lax.stop_gradient(ctx.mean(ctx.fake_logits))
    ema_real = decay * ctx.state["real"] + (1.0 - decay) * real_mean
    ema_fake = decay * ctx.state["fake"] + (1.0 - decay) * fake_mean
    value = (ctx.mean(jax.nn.relu(ctx.real_logits - ema_fake) ** 2) +
             ctx.mean(jax.nn.relu(ema_real - ctx.fake_logits) ** 2))
    value = jnp.where(started, value, 0.0)
    return TermOutput(value, {"lecam_ema_real": ema_real, "lecam_ema_fake": ema_fake},
                      {"real": ema_real, "fake": ema_fake})


def _init_state(config):
    return {"real": jnp.zeros((), jnp.float32), "fake": jnp.zeros((), jnp.float32)}


def _validate(settings, config):
    if not 0.0 <= settings.decay < 1.0:
        raise ConfigError(f"Config key 'reg.lecam.decay' must be in [0, 1), got {settings.decay!r}.")
    if not isinstance(settings.start, int) or isinstance(settings.start, bool) or settings.start < 0:
        raise ConfigError(f"Config key 'reg.lecam.start' must be an integer >= 0 (D updates), got "
                          f"{settings.start!r}.")
    if (settings.weight > 0 or settings.weight_end > 0) and settings.every != 1:
        raise ConfigError("Config key 'reg.lecam.every' must be 1: its averages follow every D update.")


register_term("lecam", d=lecam, config={"decay": 0.99, "start": 0}, hparams=("decay",), init_state=_init_state,
              validate=_validate)
