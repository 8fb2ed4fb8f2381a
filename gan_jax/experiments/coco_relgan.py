"""COCO captions (Texygen's 10k/10k split), Gumbel-softmax GAN (RelGAN's recipe, LSTM generator).

Data: `data.source = local:../shared/data/coco/train.txt`, `data.test_file = .../test.txt`
(one caption a line; paths relative to where you run). Word tokenizer over the whole training
vocabulary, captions up to 36 tokens plus `<eos>`. G: LSTM, MLE-pretrained, then trained
through D with Gumbel-softmax outputs (beta to 100); D: RelGAN's CNN; relativistic loss.
Metrics: BLEU-2..5 against the whole test set, self-BLEU-2..5, NLL_gen, uniqueness.

Variants: `runlocal` (seconds-long smoke run) and comma-separated `key=value` overrides.
"""

import pathlib

from gan_jax.config import load_module

_oracle = load_module(pathlib.Path(__file__).with_name("oracle_relgan.py"))


def base_config():
    c = _oracle.base_config()
    c.data.source = "local:../shared/data/coco/train.txt"
    c.data.test_file = "../shared/data/coco/test.txt"
    c.data.tokenizer = "word"
    c.data.vocab_size = 6_100  # every training word (6,095 with punctuation attached) + the 4 specials
    c.data.max_len = 36
    c.model.text.emb_dim = 32
    c.model.text.hidden_dim = 64
    c.eval.num_samples = 2_000
    return c


def finish(c, arg):
    return _oracle.finish(c, arg)


def get_config(arg=None):
    return finish(base_config(), arg)


