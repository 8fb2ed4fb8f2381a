"""Oracle benchmark, maximum likelihood alone: the LSTM generator trained by teacher forcing.

The honest baseline: `text.g_objective = "mle"` (G ignores D; a tiny D still trains so the
run goes through the one train step). Evaluation samples at `text.sample_temperature`.
Same data, generator and metrics as `oracle_relgan.py`; `runlocal` and `key=value` variants.
`text.pretrain_steps=N,num_steps=1` is the same MLE (the pretraining step, optimizer and
learning rate) without D and the Gumbel sampling in the loop: N + 1 MLE steps, much cheaper.
"""

import pathlib

from gan_jax.config import load_module

_relgan = load_module(pathlib.Path(__file__).with_name("oracle_relgan.py"))


def get_config(arg=None):
    c = _relgan.base_config()
    c.text.g_objective = "mle"
    c.text.pretrain_steps = 0
    c.optim.g_lr = 1e-2  # the pretraining rate: this run is the MLE phase, made long
    c.model.text.d_num_rep = 1  # G ignores D; keep its cost negligible
    c.model.text.d_emb_dim = 8
    c.model.text.d_num_filters = 8
    c.optim.grad_clip = 5.0
    c.text.sample_temperature = 1.0
    return _relgan.finish(c, arg)
