"""Tiny Shakespeare (tfds), character level: each non-blank line of the play is a sentence.

Offline, give tfds the original file: `--config.data.manual_dir=../shared/data/tiny_shakespeare`
(holding `input.txt`). Character tokenizer, lines up to 64 characters. G: LSTM, MLE-pretrained,
then the Gumbel-softmax GAN; D: RelGAN's CNN. Samples decode to text in WORKDIR/samples/.
Variants: `runlocal` and comma-separated `key=value` overrides.
"""

import pathlib

from gan_jax.config import load_module

_oracle = load_module(pathlib.Path(__file__).with_name("oracle_relgan.py"))


def get_config(arg=None):
    c = _oracle.base_config()
    c.data.source = "tfds:tiny_shakespeare"
    c.data.split = "train"
    c.data.test_split = "test"
    c.data.tokenizer = "char"
    c.data.vocab_size = 100
    c.data.max_len = 64
    c.model.text.emb_dim = 32
    c.model.text.hidden_dim = 128
    c.eval.num_samples = 500
    return _oracle.finish(c, arg)
