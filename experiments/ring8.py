"""ring8: 8 Gaussians on the unit circle, std 0.01 (PacGAN Table 1): grid25's setup on ring8 data.

Variants: `experiments/ring8.py:loss=hinge,pack=2` (comma-separated key=value overrides of any
config key), and `runlocal` for a seconds-long smoke run.
"""

import pathlib

from gan_jax.config import load_module, lock, parse_arg

_grid25 = load_module(pathlib.Path(__file__).with_name("grid25.py"))


def get_config(arg=None):
    c = _grid25.get_config()
    c.unlock()
    c.data.source = "synthetic:ring8"
    parse_arg(c, arg)
    return lock(c)


def get_sweep(arg=None):
    """The same losses x seeds study as grid25; `arg` is the number of seeds (default 10)."""
    return _grid25.get_sweep(arg)
