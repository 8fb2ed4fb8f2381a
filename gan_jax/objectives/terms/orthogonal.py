"""BigGAN's orthogonal regularization (Brock et al. 2019), its off-diagonal form, on G's weights:

    sum over kernels W of 1/2 * || (W W^T) * (1 - I) ||_F^2,

W being a kernel as a matrix with one row per output unit (a conv kernel [kh, kw, in, out] flattened
to [out, kh * kw * in]). It pushes the rows apart from each other without fixing their norms. The
1/2 makes its gradient 2 * ((W W^T) * (1 - I)) W, the update BigGAN's code adds (times beta,
`reg.orthogonal.weight`, 1e-4 in BigGAN). Every parameter named "kernel" counts (dense and conv
weights, spectrally normalised or not, taken before the normalisation); embedding tables, biases and
norm scales do not (BigGAN leaves its shared class embedding out).
"""

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.objectives.base import register_term


def off_diagonal_penalty(kernel: jax.Array) -> jax.Array:
    """1/2 * ||(W W^T) * (1 - I)||_F^2 for W = the kernel with its output axis first."""
    w = kernel.reshape(-1, kernel.shape[-1]).T.astype(jnp.float32)
    gram = w @ w.T
    return 0.5 * (jnp.sum(gram**2) - jnp.sum(jnp.diagonal(gram) ** 2))


def kernels(params) -> list[jax.Array]:
    """The parameters named "kernel" (dense and conv weights)."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return [leaf for path, leaf in leaves if getattr(path[-1], "key", None) == "kernel"]


def orthogonal(ctx):
    return sum((off_diagonal_penalty(k) for k in kernels(ctx.params)), jnp.zeros((), jnp.float32))


def _validate(settings, config):
    if (settings.weight > 0 or settings.weight_end > 0) and config.g_noise == "reuse":
        raise ConfigError("Config key 'reg.orthogonal.weight': orthogonal regularization needs G's parameters in "
                          "its update, but g_noise='reuse' differentiates through the critic update's samples "
                          "only; use g_noise='fresh'.")


register_term("orthogonal", g=orthogonal, validate=_validate)
