"""Text metrics: BLEU-n against a reference set, leave-one-out self-BLEU, uniqueness ratios.

BLEU follows NLTK's `sentence_bleu(references, hypothesis, weights=(1/n,)*n,
smoothing_function=SmoothingFunction().method1)` to the last bit of its definition:
clipped n-gram precisions against the maximum count of each n-gram over *all* references,
a zero precision replaced by 0.1 / (number of hypothesis n-grams), the brevity penalty
from the reference length closest to the hypothesis (the shorter on a tie), and 0 when no
unigram matches. What makes it fast is that the per-n-gram maximum counts and the set of
reference lengths are built once for the whole reference set instead of once per
hypothesis; for self-BLEU the two largest counts of every n-gram give the maximum over all
sentences but one.
"""

from __future__ import annotations

import collections
import math
from typing import Iterable, Sequence

import numpy as np

Sentence = Sequence[str]
EPSILON = 0.1  # NLTK SmoothingFunction().method1


def ngram_counts(tokens: Sentence, n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _bleu_from_counts(matches: Sequence[int], totals: Sequence[int], hyp_len: int, ref_len: int,
                      max_n: int) -> float:
    """NLTK's sentence BLEU with uniform weights over 1..max_n, smoothing method 1."""
    if matches[0] == 0:
        return 0.0
    if hyp_len > ref_len:
        bp = 1.0
    elif hyp_len == 0:
        bp = 0.0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    weight = 1 / max_n
    logs = []
    for m, d in zip(matches[:max_n], totals[:max_n]):
        p = (m + EPSILON) / d if m == 0 else m / d
        logs.append(weight * math.log(p))
    return bp * math.exp(math.fsum(logs))


def _closest(lengths: np.ndarray, hyp_len: int) -> int:
    """The length closest to hyp_len, the smaller on a tie (NLTK's closest_ref_length)."""
    distance = np.abs(lengths - hyp_len) * 2 + (lengths > hyp_len)  # ties go to the shorter
    return int(lengths[np.argmin(distance)])


class BleuScorer:
    """BLEU-2..max_n of hypotheses against one fixed reference set (e.g. the whole test set)."""

    def __init__(self, references: Iterable[Sentence], max_n: int = 5):
        self.max_n = max_n
        self.max_counts: list[dict] = [{} for _ in range(max_n)]
        lengths = set()
        count = 0
        for ref in references:
            count += 1
            lengths.add(len(ref))
            for n in range(1, max_n + 1):
                table = self.max_counts[n - 1]
                for gram, c in ngram_counts(ref, n).items():
                    if c > table.get(gram, 0):
                        table[gram] = c
        if count == 0:
            raise ValueError("BLEU needs at least one reference sentence.")
        self.lengths = np.array(sorted(lengths))

    def sentence_bleu(self, hypothesis: Sentence, orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
        """{n: BLEU-n} of one hypothesis."""
        matches, totals = [], []
        for n in range(1, max(orders) + 1):
            counts = ngram_counts(hypothesis, n)
            table = self.max_counts[n - 1]
            matches.append(sum(min(c, table.get(g, 0)) for g, c in counts.items()))
            totals.append(max(1, sum(counts.values())))
        ref_len = _closest(self.lengths, len(hypothesis))
        return {n: _bleu_from_counts(matches, totals, len(hypothesis), ref_len, n) for n in orders}

    def corpus_mean(self, hypotheses: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
        """{n: mean over hypotheses of their sentence BLEU-n} (Texygen's BLEU-n)."""
        if not hypotheses:
            raise ValueError("BLEU needs at least one hypothesis.")
        scores = [self.sentence_bleu(h, orders) for h in hypotheses]
        return {n: float(np.mean([s[n] for s in scores])) for n in orders}


def self_bleu(sentences: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """{n: mean over i of BLEU-n(sentences[i], references = all other sentences)} (leave-one-out)."""
    if len(sentences) < 2:
        raise ValueError("self-BLEU needs at least two sentences.")
    max_n = max(orders)
    # Per n-gram: the largest count over sentences, how many sentences reach it, and the second largest.
    top: list[dict] = [{} for _ in range(max_n)]
    per_sentence = []
    for s in sentences:
        counts_n = [ngram_counts(s, n) for n in range(1, max_n + 1)]
        per_sentence.append(counts_n)
        for table, counts in zip(top, counts_n):
            for g, c in counts.items():
                best, holders, second = table.get(g, (0, 0, 0))
                if c > best:
                    table[g] = (c, 1, best)
                elif c == best:
                    table[g] = (best, holders + 1, second)
                elif c > second:
                    table[g] = (best, holders, c)
    length_counts = collections.Counter(len(s) for s in sentences)
    lengths = np.array(sorted(length_counts))
    results = {n: [] for n in orders}
    for s, counts_n in zip(sentences, per_sentence):
        matches, totals = [], []
        for table, counts in zip(top, counts_n):
            m = 0
            for g, c in counts.items():
                best, holders, second = table[g]
                others = second if (c == best and holders == 1) else best
                m += min(c, others)
            matches.append(m)
            totals.append(max(1, sum(counts.values())))
        own = len(s)
        candidates = lengths if length_counts[own] > 1 else lengths[lengths != own]
        ref_len = _closest(candidates, own)
        for n in orders:
            results[n].append(_bleu_from_counts(matches, totals, own, ref_len, n))
    return {n: float(np.mean(v)) for n, v in results.items()}


def unique_ratios(sentences: Sequence[Sentence], orders: Sequence[int] = (1, 2, 3, 4)) -> dict[str, float]:
    """Distinct sentences / sentences, and distinct n-grams / n-grams (distinct-n) for each order."""
    out = {"unique_sentences": len({tuple(s) for s in sentences}) / max(len(sentences), 1)}
    for n in orders:
        grams = [g for s in sentences for g in (tuple(s[i:i + n]) for i in range(len(s) - n + 1))]
        out[f"unique_{n}grams"] = len(set(grams)) / max(len(grams), 1)
    return out


ORACLE_PUBLISHED = {"SeqGAN": 8.736, "RelGAN": 6.680, "MLE (about)": 9.0}
COCO_PUBLISHED = {  # Texygen's table: BLEU-2..5 ; self-BLEU-2..5
    "Texygen MLE": ((0.731, 0.497, 0.305, 0.189), (0.916, 0.769, 0.583, 0.408)),
    "Texygen SeqGAN": ((0.745, 0.498, 0.294, 0.180), (0.950, 0.840, 0.670, 0.489)),
    "Texygen LeakGAN": ((0.746, 0.528, 0.355, 0.230), (0.966, 0.913, 0.848, 0.780)),
}


def format_table(metrics: dict[str, float], num_samples: int, published: bool = True) -> str:
    """This run's text metrics beside the published numbers docs/results/text.md cites.

    `published=False` leaves out Texygen's COCO rows (for other corpora they compare nothing).
    """
    if "eval/nll_oracle" in metrics:
        rows = [f"Oracle, length 20, {num_samples} samples: NLL_oracle (NLL_gen)",
                f"  this run      {metrics['eval/nll_oracle']:.3f} ({metrics['eval/nll_gen']:.3f})",
                f"  oracle floor  {metrics['eval/nll_oracle_floor']:.3f}"]
        rows += [f"  {name:<13} {value:.3f}" for name, value in ORACLE_PUBLISHED.items()]
        return "\n".join(rows)
    if "eval/bleu2" in metrics:
        def fmt(values):
            return "/".join(f"{v:.3f}" for v in values)

        rows = [f"BLEU-2/3/4/5 ; self-BLEU-2/3/4/5 ({num_samples} samples, the whole test set as references)",
                f"  this run         {fmt(metrics[f'eval/bleu{n}'] for n in (2, 3, 4, 5))} ; "
                f"{fmt(metrics[f'eval/self_bleu{n}'] for n in (2, 3, 4, 5))}   NLL_gen {metrics['eval/nll_gen']:.3f}"]
        if published:
            rows += [f"  {name:<16} {fmt(b)} ; {fmt(s)}" for name, (b, s) in COCO_PUBLISHED.items()]
        return "\n".join(rows)
    return "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("eval/"))


def token_mask(ids: np.ndarray, real_text: bool) -> np.ndarray:
    """Which positions count as tokens: for real text up to and including the first `<eos>`."""
    from gan_jax.data.tokenizer import EOS_ID

    if not real_text:
        return np.ones(ids.shape, bool)
    is_eos = ids == EOS_ID
    before = np.cumsum(is_eos, axis=1) - is_eos  # eos tokens strictly before each position
    return before == 0


def mean_nll(log_probs: np.ndarray, ids: np.ndarray, real_text: bool) -> float:
    """Mean per-token negative log-likelihood, over the tokens `token_mask` counts."""
    mask = token_mask(ids, real_text)
    return float(-(log_probs * mask).sum() / mask.sum())


class SampleScorer:
    """The text metrics of sampled ids against a run's held-out set, its reference statistics built once.

    Real text (a tokenizer with words): BLEU-2..5 of every sample against the whole held-out
    set, leave-one-out self-BLEU-2..5, unique-n-gram ratios. The oracle: NLL_oracle of the
    samples beside `nll_oracle_floor`, the oracle's NLL of its own held-out samples.
    """

    def __init__(self, tokenizer, test_ids: np.ndarray):
        from gan_jax.data.tokenizer import IdentityTokenizer

        self.tokenizer = tokenizer
        self.test_ids = test_ids
        self.real_text = not isinstance(tokenizer, IdentityTokenizer)
        self._bleu = None
        self._floor = None

    def __call__(self, ids: np.ndarray) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.real_text:
            words = [self.tokenizer.decode(row).split() for row in ids]
            if self._bleu is None:
                self._bleu = BleuScorer([self.tokenizer.decode(row).split() for row in self.test_ids])
            for n, v in self._bleu.corpus_mean(words).items():
                metrics[f"bleu{n}"] = v
            for n, v in self_bleu(words).items():
                metrics[f"self_bleu{n}"] = v
            metrics.update(unique_ratios(words, orders=(2, 3, 4)))
        else:
            from gan_jax.data import oracle

            metrics["nll_oracle"] = oracle.nll(oracle.cached_params(), ids)
            if self._floor is None:
                self._floor = oracle.nll(oracle.cached_params(), self.test_ids)
            metrics["nll_oracle_floor"] = self._floor
            metrics.update(unique_ratios([list(map(str, row)) for row in ids.tolist()], orders=(2, 3, 4)))
        return metrics

