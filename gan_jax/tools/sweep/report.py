"""`gan-jax sweep report DIR`: the final metrics of every run, grouped by the swept values other than
the seed, as mean ± standard error (report.md, report.csv, and report.png for a chosen metric).

A run's final metrics are the `eval/` values of its summary.json and, where `gan-jax evaluate` (or
`gan-jax sweep --evaluate`) has measured it after training, the records of its eval.jsonl at the
run's final step, as `eval/METRIC` (the last record of a metric wins; records of earlier checkpoints
are not final, and a text run's temperature sweep is left to `gan-jax evaluate report`)."""

from __future__ import annotations

import csv
import json
import math
import pathlib
from typing import Sequence


def _final_metrics(entry: dict) -> dict[str, float] | None:
    path = pathlib.Path(entry["workdir"]) / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    metrics = summary.get("metrics", {})
    final = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k.startswith("eval/")}
    return final | evaluated_metrics(pathlib.Path(entry["workdir"]), summary.get("step"))


def records_at(workdir: pathlib.Path, step: int | None) -> list[dict]:
    """The records of WORKDIR/eval.jsonl at checkpoint `step` (none: [])."""
    path = workdir / "eval.jsonl"
    if step is None or not path.is_file():
        return []
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [r for r in records if r.get("step") == step]


def evaluated_metrics(workdir: pathlib.Path, step: int | None) -> dict[str, float]:
    """{"eval/METRIC": value} of the eval.jsonl records at `step`, the run's final one (none: {})."""
    # A text run's temperature sweep has one value per temperature, not one final value: left to
    # `gan-jax evaluate report`.
    return {f"eval/{r['metric']}": float(r["value"]) for r in records_at(workdir, step)
            if "metric" in r and isinstance(r.get("value"), (int, float))
            and "temperature" not in r and "temperature" not in r.get("protocol", {})}


def aggregate(record: dict, group_keys: Sequence[str] | None = None) -> tuple[list[str], list[dict]]:
    """Groups runs by their swept values except `seed`; mean and standard error of each eval metric."""
    entries = record["runs"]
    swept = list(dict.fromkeys(k for e in entries for k in e["overrides"]))
    group_keys = list(group_keys) if group_keys else [k for k in swept if k != "seed"]
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        metrics = _final_metrics(e)
        key = tuple(str(e["overrides"].get(k, "")) for k in group_keys)
        groups.setdefault(key, [])
        if metrics is not None:
            groups[key].append(metrics)
    rows = []
    for key, runs in groups.items():
        row = {"group": dict(zip(group_keys, key)), "n": len(runs), "metrics": {}}
        for name in sorted({m for r in runs for m in r}):
            values = [r[name] for r in runs if name in r]
            mean = sum(values) / len(values)
            se = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))
                  if len(values) > 1 else float("nan"))
            row["metrics"][name] = (mean, se)
        rows.append(row)
    return group_keys, rows


def report(workdir: pathlib.Path, plot_metric: str | None = None, plot_x: str | None = None) -> str:
    """Writes report.md, report.csv (and report.png) in the sweep directory; returns the Markdown."""
    record = json.loads((workdir / "sweep.json").read_text())
    keys, rows = aggregate(record)
    names = sorted({m for r in rows for m in r["metrics"]})
    header = keys + ["runs"] + [n.removeprefix("eval/") for n in names]
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["group"][k] for k in keys] + [str(r["n"])]
        for n in names:
            mean, se = r["metrics"].get(n, (float("nan"), float("nan")))
            cells.append(f"{mean:.3g} ± {se:.2g}" if not math.isnan(se) else f"{mean:.3g}")
        md.append("| " + " | ".join(cells) + " |")
    text = f"{record['config']}: mean ± standard error over seeds (final eval metrics)\n\n" + "\n".join(md) + "\n"
    (workdir / "report.md").write_text(text)
    with open(workdir / "report.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys + ["runs"] + [x for n in names for x in (n, n + "_se")])
        for r in rows:
            writer.writerow([r["group"][k] for k in keys] + [r["n"]] +
                            [x for n in names for x in r["metrics"].get(n, (float("nan"), float("nan")))])
    if plot_metric:
        _plot(workdir / "report.png", keys, rows, plot_metric, plot_x or (keys[0] if keys else None))
    return text


def _plot(path: pathlib.Path, keys, rows, metric: str, x_key: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x_key not in keys:
        raise ValueError(f"--plot_x {x_key!r} is not a swept key; swept: {', '.join(keys) or 'only seeds'}.")
    metric = metric if metric.startswith("eval/") else f"eval/{metric}"
    others = [k for k in keys if k != x_key]
    series: dict[tuple, list] = {}
    for r in rows:
        if metric in r["metrics"]:
            series.setdefault(tuple(r["group"][k] for k in others), []).append((r["group"][x_key], *r["metrics"][metric]))
    if not series:
        raise ValueError(f"no run reports {metric!r}.")
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        xs = [p[0] for p in points]
        try:
            xs = [float(x) for x in xs]
        except ValueError:
            pass
        ax.errorbar(range(len(xs)) if isinstance(xs[0], str) else xs, [p[1] for p in points],
                    yerr=[0 if math.isnan(p[2]) else p[2] for p in points], marker="o", capsize=3,
                    label=", ".join(f"{k}={v}" for k, v in zip(others, label)) or None)
        if isinstance(xs[0], str):
            ax.set_xticks(range(len(xs)), xs)
    ax.set_xlabel(x_key)
    ax.set_ylabel(metric)
    if others:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
