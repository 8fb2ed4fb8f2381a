"""BLEU-2..5 and self-BLEU speed against NLTK's sentence_bleu, measured in one run.

    python scripts/benchmark_bleu.py --train ../shared/data/coco/train.txt --test ../shared/data/coco/test.txt

Hypotheses are the first `--num_hypotheses` training sentences, references the whole test
file. NLTK is timed on `--nltk_hypotheses` of them (it takes seconds per sentence against
10,000 references); the per-sentence times are compared, and the scores on those sentences
must agree to 1e-9.
"""

import argparse
import time

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gan_jax.metrics import text as text_metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--num_hypotheses", type=int, default=2000)
    parser.add_argument("--nltk_hypotheses", type=int, default=10)
    args = parser.parse_args()
    read = lambda path: [line.split() for line in open(path, encoding="utf-8") if line.strip()]  # noqa: E731
    hyps, refs = read(args.train)[:args.num_hypotheses], read(args.test)
    orders = (2, 3, 4, 5)

    start = time.perf_counter()
    scorer = text_metrics.BleuScorer(refs)
    ours = [scorer.sentence_bleu(h, orders) for h in hyps]
    ours_time = time.perf_counter() - start

    smooth = SmoothingFunction().method1
    start = time.perf_counter()
    worst = 0.0
    for h, mine in zip(hyps[:args.nltk_hypotheses], ours):
        for n in orders:
            ref = sentence_bleu(refs, h, weights=tuple(1.0 / n for _ in range(n)), smoothing_function=smooth)
            worst = max(worst, abs(ref - mine[n]))
    nltk_time = time.perf_counter() - start

    ours_per = ours_time / len(hyps)
    nltk_per = nltk_time / args.nltk_hypotheses
    print(f"{len(hyps)} hypotheses x {len(refs)} references, BLEU-2..5")
    print(f"gan_jax: {ours_time:.3f} s total (reference tables included), {ours_per * 1e3:.3f} ms/sentence")
    print(f"nltk:    {nltk_time:.3f} s for {args.nltk_hypotheses} sentences, {nltk_per * 1e3:.1f} ms/sentence")
    print(f"speed-up per sentence: {nltk_per / ours_per:.0f}x; max |difference| {worst:.2e}")
    print(f"BLEU-2..5 of the {len(hyps)} hypotheses:",
          {n: round(sum(o[n] for o in ours) / len(ours), 4) for n in orders})

    start = time.perf_counter()
    sb = text_metrics.self_bleu(hyps, orders)
    print(f"self-BLEU-2..5 of the {len(hyps)} (leave-one-out): {time.perf_counter() - start:.3f} s,",
          {n: round(v, 4) for n, v in sb.items()})


if __name__ == "__main__":
    main()
