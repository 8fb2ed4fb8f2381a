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
    path, sep, arg = record["config"].partition(":")
    name = pathlib.Path(path).stem + sep + arg  # the experiment, not where it sits on this machine
    text = f"{name}: mean ± standard error over seeds (final eval metrics)\n\n" + "\n".join(md) + "\n"
    (workdir / "report.md").write_text(text)
    with open(workdir / "report.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys + ["runs"] + [x for n in names for x in (n, n + "_se")])
        for r in rows:
            writer.writerow([r["group"][k] for k in keys] + [r["n"]] +
                            [x for n in names for x in r["metrics"].get(n, (float("nan"), float("nan")))])
    if plot_metric:
        _plot(workdir / "report.png", plot_layout(record, keys, rows, plot_metric, plot_x), name)
    return text


def _depends_on(rows, key: str, x_key: str) -> bool:
    """Whether `key` takes one value for each value of `x_key` (swept with it, as `zip_` does)."""
    seen: dict[str, str] = {}
    return all(seen.setdefault(r["group"][x_key], r["group"][key]) == r["group"][key] for r in rows)


def plot_layout(record: dict, keys, rows, metric: str, x_key: str | None) -> dict:
    """What report.png draws: {"x_label", "metric", "ticks": [(position, label)], "series": [(label, [(position,
    mean, standard error, annotation)])], "lines": whether to join the points (numeric x only)}. Categorical values sit at fixed positions shared by every series
    (in the order the sweep lists them); a key swept together with the x key (`zip_`) does not split the
    series. A sweep of seeds alone plots each seed's value, and their mean as one more series."""
    metric = metric if metric.startswith("eval/") else f"eval/{metric}"
    if not keys:  # seeds only: one point a run
        if x_key not in (None, "seed"):
            raise ValueError(f"--plot_x {x_key!r}: this sweep varies only the seed; leave --plot_x out.")
        points, values = [], []
        for e in record["runs"]:
            final = _final_metrics(e)
            if final is not None and metric in final:
                seed = e["overrides"].get("seed", 0)
                points.append((float(seed), final[metric], float("nan"), f"{final[metric]:.3g}"))
                values.append(final[metric])
        if not points:
            raise ValueError(f"no run reports {metric!r}.")
        mean, se = rows[0]["metrics"][metric]
        series = [("runs", points)]
        ticks = [(x, str(int(x))) for x, *_ in points]
        mid = (ticks[0][0] + ticks[-1][0]) / 2
        series.append((f"mean ± s.e. over {len(values)} seeds", [(mid, mean, se, f"{mean:.3g} ± {se:.2g}")]))
        return {"x_label": "seed", "metric": metric, "ticks": ticks, "series": series, "lines": False}
    x_key = x_key or keys[0]
    if x_key not in keys:
        raise ValueError(f"--plot_x {x_key!r} is not a swept key; swept: {', '.join(keys)}.")
    others = [k for k in keys if k != x_key and not _depends_on(rows, k, x_key)]
    xs = list(dict.fromkeys(r["group"][x_key] for r in rows))
    try:
        numeric = {x: float(x) for x in xs}
    except ValueError:
        numeric = None
    position = numeric or {x: float(i) for i, x in enumerate(xs)}
    series: dict[tuple, list] = {}
    for r in rows:
        if metric in r["metrics"]:
            mean, se = r["metrics"][metric]
            label = tuple(r["group"][k] for k in others)
            series.setdefault(label, []).append((position[r["group"][x_key]], mean, se,
                                                 f"{mean:.3g}" + ("" if math.isnan(se) else f" ± {se:.2g}")))
    if not series:
        raise ValueError(f"no run reports {metric!r}.")
    return {"x_label": x_key, "metric": metric, "ticks": [(position[x], str(x)) for x in xs], "lines": bool(numeric),
            "series": [(", ".join(f"{k}={v}" for k, v in zip(others, label)), sorted(points))
                       for label, points in series.items()]}


def _plot(path: pathlib.Path, layout: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in layout["series"]:
        xs, means, ses = [p[0] for p in points], [p[1] for p in points], [0 if math.isnan(p[2]) else p[2] for p in points]
        ax.errorbar(xs, means, yerr=ses, marker="o", capsize=3, label=label or None,
                    linestyle="-" if layout["lines"] else "none")  # no lines between categories
        for x, mean, _, text in points:
            ax.annotate(text, (x, mean), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xticks([t[0] for t in layout["ticks"]], [t[1] for t in layout["ticks"]])
    ax.set_xlabel(layout["x_label"])
    ax.set_ylabel(layout["metric"])
    ax.set_title(f"{title}: {layout['metric']}, mean ± standard error over seeds", fontsize=9)
    if any(label for label, _ in layout["series"]):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
