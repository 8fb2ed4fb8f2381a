"""COCO captions, maximum likelihood alone: RelGAN's generator and its 150-epoch MLE phase, no GAN.

Same data, relational generator, pretraining and metrics as `coco_relgan.py`; the one loop
step after the pretraining does not move G (see `oracle_mle.py`). Evaluation samples at
`text.sample_temperature`; `gan-jax evaluate --temperatures ...` sweeps it. Variants:
`runlocal`, and `key=value` overrides (e.g. `text.sample_temperature=0.8`).
"""

import pathlib

from gan_jax.config import load_module

_coco = load_module(pathlib.Path(__file__).with_name("coco_relgan.py"))
_mle = load_module(pathlib.Path(__file__).with_name("oracle_mle.py"))


def get_config(arg=None):
    return _coco.finish(_mle.mle_protocol(_coco.relgan_config()), arg, anneal_over_run=False)
