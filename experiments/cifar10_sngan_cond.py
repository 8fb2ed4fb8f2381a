"""Class-conditional ResNet SNGAN on CIFAR-10: conditional BN in G and a projection D
(Miyato & Koyama 2018), otherwise exactly `cifar10_sngan`.

`conditioning=acgan` swaps the projection for an auxiliary-classifier head. Sample grids
have one row per class. Variants: `runlocal`, and `key=value` overrides.
"""

import pathlib

from gan_jax.config import load_module, lock, parse_arg

_sngan = load_module(pathlib.Path(__file__).with_name("cifar10_sngan.py"))


def get_config(arg=None):
    c = _sngan.get_config("runlocal" if "runlocal" in (arg or "") else None)
    c.unlock()
    c.model.conditioning = "projection"
    parse_arg(c, arg)
    return lock(c)
