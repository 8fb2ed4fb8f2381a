"""Balanced consistency regularisation (bCR, Zhao et al. 2021): D's output must not change when its
input is transformed by `reg.bcr.policy`, on real and on fake samples:

    weight * (E[(D(T(x_r)) - D(x_r))^2] + E[(D(T(x_f)) - D(x_f))^2]),

where x_r and x_f are the inputs exactly as D saw them in the loss (after the augmentation
pipeline, each with its own draw) and T is a fresh draw of the policy for each side.
"""

from gan_jax.errors import ConfigError
from gan_jax.objectives.augment.diffaug import apply_policy, parse_policy
from gan_jax.objectives.base import register_term
from gan_jax.rng import stream


def bcr(ctx):
    policy = parse_policy(ctx.settings.policy)

    def consistency(x, labels, logits, side):
        transformed, _ = ctx.discriminate(apply_policy(policy, stream(ctx.key, side), x), labels)
        return ctx.mean((transformed - logits) ** 2)

    real = consistency(ctx.real_input, ctx.real_labels, ctx.real_logits, "real")
    fake = consistency(ctx.fake_input, ctx.fake_labels, ctx.fake_logits, "fake")
    return real + fake


def _validate(settings, config):
    try:
        parse_policy(settings.policy)
    except ValueError as e:
        raise ConfigError(f"Config key 'reg.bcr.policy': {e}") from None


register_term("bcr", d=bcr, config={"policy": "translation"}, validate=_validate)
