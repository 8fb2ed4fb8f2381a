"""The auxiliary classifier loss of ACGAN (Odena et al. 2017), on with `model.conditioning=acgan`:
D's class head learns the labels of real and fake samples, G makes its samples classifiable as
the labels it was given; `reg.acgan.weight` (default 1) on both sides."""

import optax

from gan_jax.objectives.base import register_term


def _cross_entropy(mean, class_logits, labels):
    return mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def d_class_loss(ctx):
    return (_cross_entropy(ctx.mean, ctx.real_class_logits, ctx.real_labels)
            + _cross_entropy(ctx.mean, ctx.fake_class_logits, ctx.fake_labels))


def g_class_loss(ctx):
    return _cross_entropy(ctx.mean, ctx.fake_class_logits, ctx.fake_labels)


register_term("acgan", d=d_class_loss, g=g_class_loss, config={"weight": 1.0},
              active=lambda config: config.model.conditioning == "acgan")
