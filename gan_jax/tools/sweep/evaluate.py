"""`gan-jax sweep --evaluate METRICS`: once the runs have trained, each finished image run's latest
checkpoint measured as `gan-jax evaluate --metrics METRICS` would (records appended to the run's
eval.jsonl), so that the sweep's report tabulates them beside the training-time metrics.

A run whose eval.jsonl already holds every requested metric at its final step, from the same number
of samples, is not measured again: rerunning the sweep command resumes an interrupted evaluation.
"""

from __future__ import annotations

import json
import pathlib
from typing import Callable

from gan_jax.metrics import suite
from gan_jax.tools.sweep.report import records_at
from gan_jax.tools.sweep.spec import finished

def check_request(metrics: list[str], classifier_dir: str | None, num_samples: int = 10_000) -> None:
    """Fails before any training when the request cannot be measured: an unknown metric, too few
    samples, or the classifier metrics without a trained classifier."""
    suite.parse_metrics(",".join(metrics), kind="image")
    if num_samples < 2:
        raise suite.MetricError(f"--eval_num_samples must be at least 2, got {num_samples}.")
    if "classifier" in suite.needed(metrics):
        from gan_jax.metrics import classifier

        classifier.trained_dir(classifier_dir)


def _covered(metric: str, names: set[str]) -> bool:
    plugin = suite.METRICS.get(metric)
    if plugin.records:
        return all(n in names for n in plugin.records)
    return any(plugin.writes(n) for n in names)


def already_evaluated(workdir: pathlib.Path, metrics: list[str], num_samples: int) -> bool:
    """Whether eval.jsonl holds every metric at the run's final step from `num_samples` samples."""
    summary = workdir / "summary.json"
    if not summary.is_file():
        return False
    records = records_at(workdir, json.loads(summary.read_text()).get("step"))
    names = {r.get("metric", "") for r in records if r.get("protocol", {}).get("num_samples") == num_samples}
    return all(_covered(m, names) for m in metrics)


def evaluate_sweep(record: dict, metrics: list[str], num_samples: int = 10_000, classifier_dir: str | None = None,
                   inception_weights: str | None = None, log: Callable[[str], None] = print) -> int:
    """Measures the finished runs of `record` not yet measured; returns how many it measured."""
    from gan_jax.tools.evaluate import evaluate_workdir

    check_request(metrics, classifier_dir, num_samples)
    runs = [e for e in record["runs"] if finished(e)]
    todo = [e for e in runs if not already_evaluated(pathlib.Path(e["workdir"]), metrics, num_samples)]
    log(f"sweep --evaluate {','.join(metrics)} ({num_samples} samples): {len(runs) - len(todo)} of {len(runs)} "
        f"finished run(s) already measured, {len(todo)} to measure")
    for i, entry in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {entry['name']}")
        evaluate_workdir(entry["workdir"], metrics, "latest", num_samples, classifier_dir=classifier_dir,
                         inception_weights=inception_weights, log=lambda s: log("  " + s))
    return len(todo)
