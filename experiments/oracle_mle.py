"""Oracle benchmark, maximum likelihood alone: RelGAN's generator and its 150-epoch MLE phase, no GAN.

The honest baseline of `oracle_relgan.py`: the same relational generator, data, pretraining
(23,400 teacher-forcing steps, Adam 1e-2, clipping 5) and metrics, and no adversarial phase.
The trainer runs at least one loop step after the pretraining; here that step is an MLE step
(`text.g_objective = "mle"`) at a learning rate too small to move a weight (1e-9), so the
evaluated and checkpointed generator is the pretrained one (a tiny D trains beside it unused).
Evaluation samples at `text.sample_temperature`; `gan-jax evaluate --temperatures ...` sweeps it.
`runlocal` and `key=value` variants (`data.max_len=40` for length 40).
"""

import pathlib

from gan_jax.config import load_module

_relgan = load_module(pathlib.Path(__file__).with_name("oracle_relgan.py"))

# The trainer needs >= 1 loop step; at this rate Adam moves each weight by at most 1e-9.
NO_OP_LR = 1e-9


def mle_protocol(c):
    """An MLE-only run of a RelGAN recipe: its pretraining, then one loop step that leaves G as it is."""
    c.text.g_objective = "mle"
    c.num_steps = 1
    c.optim.g_lr = NO_OP_LR
    c.n_critic = 1
    c.model.text.d_num_rep = 1  # G ignores D; keep its cost negligible
    c.model.text.d_emb_dim = 8
    c.model.text.d_num_filters = 8
    c.steps_per_dispatch = 1
    c.log_every_steps = c.eval_every_steps = c.ckpt_every_steps = 1
    c.text.sample_temperature = 1.0
    return c


def get_config(arg=None):
    return _relgan.finish(mle_protocol(_relgan.relgan_config()), arg, anneal_over_run=False)
