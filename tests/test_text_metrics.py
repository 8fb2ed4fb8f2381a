"""BLEU and self-BLEU against NLTK's sentence_bleu (smoothing method 1), and the uniqueness ratios."""

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gan_jax.metrics import text as text_metrics

SMOOTH = SmoothingFunction().method1


def random_sentences(rng, count, vocab, max_len):
    words = [f"w{i}" for i in range(vocab)]
    return [[words[j] for j in rng.integers(0, vocab, rng.integers(0, max_len + 1))] for _ in range(count)]


def nltk_bleu(refs, hyp, n):
    return sentence_bleu(refs, hyp, weights=tuple(1.0 / n for _ in range(n)), smoothing_function=SMOOTH)


@pytest.mark.parametrize("seed,vocab", [(0, 4), (1, 8), (2, 30)])
def test_bleu_equals_nltk(seed, vocab):
    rng = np.random.default_rng(seed)
    refs = random_sentences(rng, 40, vocab, 12)
    hyps = random_sentences(rng, 30, vocab, 12) + [[], ["w0"], refs[3]]
    scorer = text_metrics.BleuScorer(refs)
    for hyp in hyps:
        ours = scorer.sentence_bleu(hyp)
        for n in (2, 3, 4, 5):
            assert abs(ours[n] - nltk_bleu(refs, hyp, n)) <= 1e-9, (hyp, n)
    means = scorer.corpus_mean(hyps)
    assert abs(means[3] - np.mean([nltk_bleu(refs, h, 3) for h in hyps])) <= 1e-9


@pytest.mark.parametrize("seed,vocab", [(3, 3), (4, 10)])
def test_self_bleu_equals_nltk_leave_one_out(seed, vocab):
    rng = np.random.default_rng(seed)
    sentences = random_sentences(rng, 25, vocab, 9) + [["w1", "w2", "w1"]] * 2 + [[]]
    ours = text_metrics.self_bleu(sentences)
    for n in (2, 3, 4, 5):
        expected = np.mean([nltk_bleu(sentences[:i] + sentences[i + 1:], s, n) for i, s in enumerate(sentences)])
        assert abs(ours[n] - expected) <= 1e-9, n


def test_unique_ratios_by_hand():
    sentences = [["a", "b", "a", "b"], ["a", "b", "a", "b"], ["c"]]
    r = text_metrics.unique_ratios(sentences, orders=(1, 2))
    assert r["unique_sentences"] == pytest.approx(2 / 3)
    assert r["unique_1grams"] == pytest.approx(3 / 9)  # a, b, c of 9 tokens
    assert r["unique_2grams"] == pytest.approx(2 / 6)  # (a b), (b a) of 6 bigrams


def test_format_table_shows_texygen_rows_only_when_asked():
    from gan_jax.metrics.text import format_table

    metrics = {f"eval/{k}{n}": 0.5 for k in ("bleu", "self_bleu") for n in (2, 3, 4, 5)}
    metrics["eval/nll_gen"] = 3.0
    assert "Texygen MLE      0.731/0.497/0.305/0.189" in format_table(metrics, 10)
    assert "Texygen" not in format_table(metrics, 10, published=False)
