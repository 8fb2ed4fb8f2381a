"""Character- and word-level tokenizers with a vocabulary built from the training text.

Ids 0..3 are the special tokens `<pad>`, `<bos>`, `<eos>`, `<unk>`; the rest are the most
frequent tokens of the training text (ties broken alphabetically, so a vocabulary is a pure
function of the text). A sentence encodes to exactly `max_len` ids: its tokens, then `<eos>`
if it fits, then `<pad>`. A tokenizer saves to and loads from JSON, so samples of a run
decode back to text after the fact.
"""

from __future__ import annotations

import collections
import json
import pathlib
from typing import Iterable, Sequence

import numpy as np

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
LEVELS = ("word", "char")


class Tokenizer:
    """Maps sentences to fixed-length id arrays and back."""

    def __init__(self, tokens: Sequence[str], level: str, max_len: int):
        if level not in LEVELS:
            raise ValueError(f"Unknown tokenizer level {level!r} (config key 'data.tokenizer'); use word or char.")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len} (config key 'data.max_len').")
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"A vocabulary must start with {SPECIALS}, got {tuple(tokens[:4])}.")
        self.tokens = list(tokens)
        self.level = level
        self.max_len = max_len
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, sentences: Iterable[str], level: str = "word", max_len: int = 20,
              vocab_size: int | None = None) -> "Tokenizer":
        """The vocabulary of `sentences`: the specials, then the `vocab_size - 4` most frequent tokens."""
        if vocab_size is not None and vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must exceed the {len(SPECIALS)} special tokens, got {vocab_size} "
                             "(config key 'data.vocab_size').")
        counts = collections.Counter()
        for sentence in sentences:
            counts.update(split(sentence, level))
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        if vocab_size is not None:
            ranked = ranked[:vocab_size - len(SPECIALS)]
        return cls(list(SPECIALS) + ranked, level, max_len)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, sentence: str) -> np.ndarray:
        """int32 [max_len]: the tokens (cut at max_len), `<eos>` if room is left, `<pad>` after."""
        ids = [self.index.get(t, UNK_ID) for t in split(sentence, self.level)][:self.max_len]
        if len(ids) < self.max_len:
            ids.append(EOS_ID)
        ids += [PAD_ID] * (self.max_len - len(ids))
        return np.asarray(ids, np.int32)

    def encode_all(self, sentences: Sequence[str]) -> np.ndarray:
        """int32 [N, max_len]."""
        out = np.empty((len(sentences), self.max_len), np.int32)
        for i, sentence in enumerate(sentences):
            out[i] = self.encode(sentence)
        return out

    def tokens_of(self, ids: Sequence[int]) -> list[str]:
        """The tokens up to the first `<eos>` (or `<pad>`), specials other than `<unk>` dropped."""
        out = []
        for i in np.asarray(ids).tolist():
            if i in (EOS_ID, PAD_ID):
                break
            if i == BOS_ID:
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return join(self.tokens_of(ids), self.level)

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "max_len": self.max_len, "tokens": self.tokens})

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        d = json.loads(text)
        return cls(d["tokens"], d["level"], d["max_len"])

    def save(self, path: str | pathlib.Path) -> None:
        pathlib.Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "Tokenizer":
        return cls.from_json(pathlib.Path(path).read_text())


class IdentityTokenizer:
    """For data that is already ids (the oracle): a token prints as its number."""

    level = "word"

    def __init__(self, vocab_size: int, max_len: int):
        self.vocab_size = vocab_size
        self.max_len = max_len

    def tokens_of(self, ids: Sequence[int]) -> list[str]:
        return [str(i) for i in np.asarray(ids).tolist()]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.tokens_of(ids))

    def to_json(self) -> str:
        return json.dumps({"level": "ids", "max_len": self.max_len, "vocab_size": self.vocab_size})

    def save(self, path: str | pathlib.Path) -> None:
        pathlib.Path(path).write_text(self.to_json() + "\n")


def load(path: str | pathlib.Path) -> "Tokenizer | IdentityTokenizer":
    """Either kind of tokenizer from its saved JSON."""
    d = json.loads(pathlib.Path(path).read_text())
    if d["level"] == "ids":
        return IdentityTokenizer(d["vocab_size"], d["max_len"])
    return Tokenizer(d["tokens"], d["level"], d["max_len"])


def split(sentence: str, level: str) -> list[str]:
    """Word level: whitespace-separated tokens; char level: every character of the line."""
    if level == "char":
        return list(sentence)
    return sentence.split()


def join(tokens: Sequence[str], level: str) -> str:
    return "".join(tokens) if level == "char" else " ".join(tokens)
