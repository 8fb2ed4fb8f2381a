"""Oracle benchmark, REINFORCE GAN (SeqGAN-style): D's probability of real as the reward.

The MLE-pretrained LSTM generator samples hard tokens; D (RelGAN's CNN, standard loss) judges
them; G follows the policy gradient with the batch-mean reward as baseline
(`text.g_objective = "reinforce"`). Same data and metrics as `oracle_relgan.py`; `runlocal`
and `key=value` variants.
"""

import pathlib

from gan_jax.config import load_module

_relgan = load_module(pathlib.Path(__file__).with_name("oracle_relgan.py"))


def get_config(arg=None):
    c = _relgan.base_config()
    c.text.g_objective = "reinforce"
    c.model.text.hard_samples = True
    c.loss = "non_saturating"
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 1e-4
    return _relgan.finish(c, arg)
