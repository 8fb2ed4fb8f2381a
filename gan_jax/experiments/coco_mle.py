"""COCO captions, maximum likelihood alone (the baseline), sampled at `text.sample_temperature`.

Same data, generator and metrics as `coco_relgan.py`; G is trained by teacher forcing
(`text.g_objective = "mle"`), a tiny D trains beside it unused. Variants: `runlocal`, and
`key=value` overrides (e.g. `text.sample_temperature=0.8`).
"""

import pathlib

from gan_jax.config import load_module

_coco = load_module(pathlib.Path(__file__).with_name("coco_relgan.py"))


def get_config(arg=None):
    c = _coco.base_config()
    c.text.g_objective = "mle"
    c.text.pretrain_steps = 0
    c.optim.g_lr = 1e-2
    c.optim.grad_clip = 5.0
    c.model.text.d_num_rep = 1
    c.model.text.d_emb_dim = 8
    c.model.text.d_num_filters = 8
    return _coco.finish(c, arg)
