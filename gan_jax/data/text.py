"""Text sources: token-id arrays for training and held-out evaluation, and their tokenizer.

- `synthetic:oracle`: the oracle LSTM's samples (gan_jax/data/oracle.py); token ids as they are.
- `local:PATH`: a UTF-8 file with one sentence a line (`data.test_file` holds the test sentences).
- `tfds:NAME`: the lines of a tfds text dataset (`data.split` to train, `data.test_split` to test).

Real text is returned as int32 ids [N, max_len]; the discriminator one-hot encodes them.
"""

from __future__ import annotations

import os
import pathlib

import ml_collections

from gan_jax.data import oracle
from gan_jax.data.tokenizer import IdentityTokenizer, Tokenizer
from gan_jax.errors import DataError

# The oracle's training and held-out sets are fixed streams, the same for every run seed.
ORACLE_TRAIN_STREAM = 0
ORACLE_TEST_STREAM = 1


class TextDataError(DataError):
    """A text source that cannot be used; the message names the file or key and the fix."""


def read_sentences(path: str | pathlib.Path, what: str) -> list[str]:
    """The non-blank lines of a UTF-8 file, stripped; refuses a missing, empty or all-blank file."""
    file = pathlib.Path(path)
    if not file.is_file():
        raise TextDataError(f"Text file {str(file)!r} ({what}) does not exist; give a file with one sentence a line.")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TextDataError(f"Text file {str(file)!r} ({what}) is not UTF-8 text ({e}); convert it to UTF-8.") from e
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise TextDataError(f"Text file {str(file)!r} ({what}) is empty or holds only blank lines; "
                            "it needs one sentence a line.")
    return sentences


def load_text(data_config: ml_collections.ConfigDict):
    """(train_ids [N, T], test_ids [M, T], tokenizer) for a text source."""
    kind, _, name = data_config.source.partition(":")
    if kind == "synthetic" and name == "oracle":
        params = oracle.cached_params()
        train = oracle.sample(params, data_config.num_train, ORACLE_TRAIN_STREAM, data_config.max_len)
        test = oracle.sample(params, data_config.num_test, ORACLE_TEST_STREAM, data_config.max_len)
        return train, test, IdentityTokenizer(oracle.VOCAB_SIZE, data_config.max_len)
    if kind == "local":
        about = f" {data_config.about}" if data_config.about else ""
        if not name:
            raise TextDataError(f"data.source 'local:' needs a path: 'local:/path/to/train.txt'.{about}")
        try:
            train_sentences = read_sentences(name, "data.source")
            if data_config.test_file is None:
                raise TextDataError("Text source 'local:' needs a held-out file for BLEU and NLL_gen: set "
                                    "--config.data.test_file=/path/to/test.txt (one sentence a line).")
            test_sentences = read_sentences(data_config.test_file, "data.test_file")
        except TextDataError as e:
            raise TextDataError(f"{e}{about}") from None
    elif kind == "tfds":
        from gan_jax.data import tfds_text

        def load(split):
            sentences = tfds_text.load_tfds_sentences(name, split, data_config.data_dir, data_config.manual_dir)
            if not sentences:
                raise TextDataError(f"tfds dataset {name!r} split {split!r} holds no non-blank text.")
            return sentences

        train_sentences, test_sentences = load(data_config.split), load(data_config.test_split)
    else:
        raise TextDataError(f"{data_config.source!r} is not a text source; use synthetic:oracle, local:PATH "
                            "or tfds:NAME.")
    tokenizer = Tokenizer.build(train_sentences, data_config.tokenizer, data_config.max_len,
                                data_config.vocab_size)
    return tokenizer.encode_all(train_sentences), tokenizer.encode_all(test_sentences), tokenizer


def is_text_source(data_config: ml_collections.ConfigDict) -> bool:
    """Text: the oracle, a `local:` file, or a tfds source with `data.tokenizer` set (not "none")."""
    kind, _, name = data_config.source.partition(":")
    local_text = kind == "local" and not (name.endswith(".npz") or os.path.isdir(name))  # else local images
    return (kind == "synthetic" and name == "oracle") or local_text or (
        kind == "tfds" and data_config.tokenizer != "none")
