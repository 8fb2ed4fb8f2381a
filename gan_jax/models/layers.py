"""Reusable layers."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class Maxout(nn.Module):
    """Dense layer with `pieces` linear pieces per unit, keeping the maximum (Goodfellow et al. 2013)."""

    features: int
    pieces: int

    @nn.compact
    def __call__(self, x):
        y = nn.Dense(self.features * self.pieces)(x)
        return jnp.max(y.reshape(x.shape[:-1] + (self.features, self.pieces)), axis=-1)


def batch_norm(train: bool, axis_name: str | None):
    """BatchNorm with PyTorch's defaults (momentum 0.1 there is 0.9 here, eps 1e-5).

    Under pmap, `axis_name` makes the batch statistics those of the global batch.
    """
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis_name=axis_name)
