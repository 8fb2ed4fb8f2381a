"""COCO captions (Texygen's 10k/10k split), RelGAN's protocol (Nie et al. 2019, its COCO script).

Data: the COCO captions split RelGAN and Texygen use (`image_coco.txt`, 10,000 training captions, and
`testdata/test_coco.txt`, 10,000 held out; one caption a line), given as
`--config.data.source=local:/path/to/image_coco.txt --config.data.test_file=/path/to/test_coco.txt`. Word tokenizer over the whole training
vocabulary, captions up to 36 tokens plus `<eos>`. G: the relational memory generator
(embedding 32, 1 slot, 2 heads of 256, starting from `<bos>`), MLE-pretrained for 150 epochs
(23,400 steps), then 2000 adversarial steps with Gumbel-softmax outputs, beta = 100 ** (step /
5000) (RelGAN(100), the paper's best BLEU); D: RelGAN's CNN with 64 representations; RSGAN
loss, 5 D updates per G update, as `oracle_relgan.py`. Metrics: BLEU-2..5 against the whole
test set, self-BLEU-2..5, NLL_gen, uniqueness; `gan-jax evaluate` adds the temperature sweep.

`base_config()` is the shared COCO base with the LSTM generator; `relgan_config()` adds
RelGAN's protocol. Variants: `runlocal` (seconds-long smoke run) and `key=value` overrides.
"""

import pathlib

from gan_jax.config import load_module
from gan_jax.data.tokenizer import BOS_ID

_oracle = load_module(pathlib.Path(__file__).with_name("oracle_relgan.py"))


def base_config():
    c = _oracle.base_config()
    c.data.source = "local:"  # the files are the user's to give: see `about`
    c.data.test_file = None
    c.data.about = ("COCO captions: RelGAN's and Texygen's split, image_coco.txt (10,000 training captions) and "
                    "testdata/test_coco.txt (10,000 held out), one caption a line; give them with "
                    "--config.data.source=local:/path/to/image_coco.txt "
                    "--config.data.test_file=/path/to/test_coco.txt.")
    c.data.tokenizer = "word"
    c.data.vocab_size = 6_100  # every training word (6,095 with punctuation attached) + the 4 specials
    c.data.max_len = 36
    c.model.text.emb_dim = 32
    c.model.text.hidden_dim = 64
    c.eval.num_samples = 2_000
    return c


def relgan_config():
    c = _oracle.relgan_protocol(base_config())
    c.model.relational.start_token = BOS_ID
    c.num_steps = 2_000  # nadv_steps
    c.keep_checkpoints = 5  # every 500 steps of 2000
    return c


def finish(c, arg, anneal_over_run: bool = True):
    return _oracle.finish(c, arg, anneal_over_run)


def get_config(arg=None):
    return finish(relgan_config(), arg, anneal_over_run=False)
