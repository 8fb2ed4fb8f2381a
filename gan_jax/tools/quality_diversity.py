"""Quality-diversity evaluation of text runs (Caccia et al., 'Language GANs Falling Short', ICLR 2020).

A model's softmax temperature T trades sample quality for diversity, so one number at T = 1
compares nothing: a GAN beats MLE only if its point lies beyond MLE's whole temperature curve.
`gan-jax evaluate --workdir RUN --temperatures 0.5,0.7,1.0,...` sweeps T over a text run's
checkpoints and appends one record per (checkpoint, T, metric) to RUN/eval.jsonl:

- the oracle: quality NLL_oracle(T), the oracle's per-token NLL of `num_samples` sequences
  drawn from softmax(logits / T); diversity NLL_gen(T), the per-token NLL of the held-out
  oracle samples under the same temperature-scaled model. This is Caccia et al.'s NLL_test: their
  evaluation scales the logits for teacher forcing as for sampling, so both axes move with T
  (at T = 1 it is the usual NLL_gen).
- real text: BLEU-2..5 of the samples against the whole held-out set (quality), self-BLEU-2..5
  among them (diversity, lower is more diverse), and NLL_gen(T) as above (up to `<eos>`).

The samples of every T share the run's fixed evaluation noise, so the curve is smooth in T.
`gan-jax evaluate report [LABEL=]DIR[,DIR...] ... --out PREFIX` puts every run's curve (runs
that share a label are seeds: mean and standard error) on the same axes in PREFIX.png, writes
the table behind it to PREFIX.md and PREFIX.csv, and the training curves (NLL_oracle or BLEU
against step, from metrics.jsonl) to PREFIX_steps.png and PREFIX_steps.csv.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import pathlib
import sys
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.core import sampling
from gan_jax.errors import GanJaxError
from gan_jax.metrics import text as text_metrics

DEFAULT_TEMPERATURES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
PROTOCOL = "temperature_sweep"
ORDERS = (2, 3, 4, 5)
_CHUNK = 100  # held-out sequences per teacher-forced call (all temperatures at once: K x chunk x T x V logits)

# Published points for the same axes (RelGAN: Nie et al. 2019, Tables 1-2, inverse temperature 100).
RELGAN_ORACLE_NLL = {20: 6.680}
RELGAN_COCO_BLEU = {2: 0.849, 3: 0.687, 4: 0.502}


class QualityDiversityError(GanJaxError, ValueError):
    """A sweep or report request that cannot be served, with the reason and the fix."""


def parse_temperatures(text: str | Sequence[float] | None) -> list[float]:
    """'0.5,0.7,1.0' -> [0.5, 0.7, 1.0]; None -> DEFAULT_TEMPERATURES. Every temperature must be > 0."""
    if text is None:
        return list(DEFAULT_TEMPERATURES)
    if isinstance(text, str):
        try:
            values = [float(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise QualityDiversityError(f"--temperatures must be comma-separated numbers, got {text!r}.") from None
    else:
        values = [float(t) for t in text]
    if not values or any(not (t > 0 and math.isfinite(t)) for t in values):
        raise QualityDiversityError(f"--temperatures must be positive numbers, e.g. 0.5,0.7,1.0; got {text!r}.")
    return values


@functools.partial(jax.jit, static_argnums=0)
def _log_probs(g_model: nn.Module, params, model_state, ids, temperatures):
    return g_model.apply({"params": params, **model_state}, ids, temperatures, method="log_prob")


def log_probs_at(g_model: nn.Module, params, model_state, ids: np.ndarray, temperatures: Sequence[float]
                 ) -> np.ndarray:
    """float [K, N, T]: log p_T(ids_t | ids_<t) of `ids` [N, T] under softmax(logits / T) for each of the K
    temperatures, from one teacher-forced pass per chunk."""
    temps = jnp.asarray(temperatures, jnp.float32)
    return np.concatenate([np.asarray(_log_probs(g_model, params, model_state, ids[s:s + _CHUNK], temps))
                           for s in range(0, len(ids), _CHUNK)], axis=1)


def sweep(g_model: nn.Module, state, config, temperatures: Sequence[float], num_samples: int,
          held_out: np.ndarray, score: Callable[[np.ndarray], dict[str, float]], real_text: bool,
          use_ema: bool = False) -> list[dict[str, Any]]:
    """One record {"temperature", "metric", "value"} per temperature and metric of one state.

    `score(ids)` gives the sample metrics of `num_samples` ids drawn at each temperature (on the
    run's fixed evaluation noise); `nll_gen` is the temperature-scaled model's mean per-token NLL
    of `held_out` (up to `<eos>` for real text).
    """
    params = sampling.generator_params(state, use_ema)
    log_probs = log_probs_at(g_model, params, state.g.model_state, held_out, temperatures)
    records = []
    for k, t in enumerate(temperatures):
        ids = sampling.sample_ids(g_model, state, num_samples, config, use_ema, temperature=t)
        metrics = {**score(ids), "nll_gen": text_metrics.mean_nll(log_probs[k], held_out, real_text)}
        records += [{"temperature": float(t), "metric": name, "value": float(value)}
                    for name, value in sorted(metrics.items())]
    return records


def dataset_name(config) -> str:
    """The data a text run's numbers are about: its source and sequence length."""
    return f"{config.data.source}:len{config.data.max_len}"


def evaluate_workdir(workdir: str | pathlib.Path, checkpoint: str = "latest", temperatures=None,
                     num_samples: int | None = None, use_ema: bool = True, log=print) -> list[dict[str, Any]]:
    """Sweeps the temperatures over the selected checkpoints of a text run; appends to and returns the
    records of WORKDIR/eval.jsonl (protocol: temperature, samples, held-out size, dataset)."""
    from gan_jax.data import text as text_data
    from gan_jax.data import tokenizer as tokenizer_lib
    from gan_jax.loop import blueprint, rundir

    workdir = pathlib.Path(workdir)
    config = rundir.read_config(workdir)
    temperatures = parse_temperatures(temperatures)
    num_samples = int(num_samples or config.eval.num_samples)
    if num_samples < 2:
        raise QualityDiversityError("--num_samples must be at least 2 (self-BLEU compares samples).")
    _, held_out, tokenizer = text_data.load_text(config.data)
    saved = workdir / "tokenizer.json"
    if saved.is_file() and tokenizer_lib.load(saved).to_json() != tokenizer.to_json():
        raise QualityDiversityError(f"the data of {workdir}'s config no longer give the vocabulary the run trained "
                                    f"with ({saved}); restore data.source / data.test_file as they were.")
    held_out = np.ascontiguousarray(held_out, np.int32)
    scorer = text_metrics.SampleScorer(tokenizer, held_out)
    plan = blueprint.read_back(config, (config.data.max_len, tokenizer.vocab_size))
    g_model, like = plan.g_model, plan.init_state()
    checkpointer = rundir.open_checkpoints(workdir, config)
    steps = rundir.select_steps(checkpointer.all_steps(), checkpoint)
    protocol = {"kind": PROTOCOL, "num_samples": num_samples, "num_held_out": len(held_out),
                "dataset": dataset_name(config)}
    records = []
    try:
        for step in steps:
            state, _ = checkpointer.restore(step, like)
            start = time.perf_counter()
            generator = "ema" if (use_ema and state.g_ema is not None) else "raw"
            step_records = sweep(g_model, state, config, temperatures, num_samples, held_out, scorer,
                                 scorer.real_text, use_ema)
            seconds = round(time.perf_counter() - start, 1)
            for r in step_records:
                r["protocol"] = {**protocol, "temperature": r.pop("temperature")}
                r.update(step=step, generator=generator, seconds=seconds)
            with open(workdir / "eval.jsonl", "a") as f:
                for r in step_records:
                    f.write(json.dumps(r, sort_keys=True) + "\n")
            records += step_records
            log(f"step {step}: swept {len(temperatures)} temperatures in {seconds:.0f} s")
    finally:
        checkpointer.close()
    return records


def _columns(names: set[str]) -> list[str]:
    if "nll_oracle" in names:
        return ["nll_oracle", "nll_gen"]
    return [f"bleu{n}" for n in ORDERS] + [f"self_bleu{n}" for n in ORDERS] + ["nll_gen"]


def format_records(records: list[dict[str, Any]]) -> str:
    """The sweep of each step as a table: one row per temperature."""
    by_point: dict[tuple, dict[str, float]] = {}
    for r in records:
        by_point.setdefault((r["step"], r["protocol"]["temperature"]), {})[r["metric"]] = r["value"]
    if not by_point:
        return "(no records)"
    columns = _columns({m for values in by_point.values() for m in values})
    lines = [f"{'step':>8} {'T':>5}  " + " ".join(f"{c:>11}" for c in columns)]
    for (step, t), values in sorted(by_point.items()):
        lines.append(f"{step:>8} {t:>5.2f}  " + " ".join(f"{values.get(c, float('nan')):>11.4f}" for c in columns))
    p = records[0]["protocol"]
    lines.append(f"({p['num_samples']} samples a temperature, {p['num_held_out']} held-out sequences, "
                 f"{p['dataset']}, {records[0]['generator']} G)")
    return "\n".join(lines)


# The report.

def read_sweep(workdir: pathlib.Path, step: int | None = None) -> tuple[int, str, dict[float, dict[str, float]]]:
    """(step, dataset, {temperature: {metric: value}}) of a run's sweep at `step` (default: its latest swept
    step); the newest record wins when a point was evaluated twice."""
    path = workdir / "eval.jsonl"
    if not path.is_file():
        raise QualityDiversityError(f"{workdir} has no eval.jsonl: run `gan-jax evaluate --workdir {workdir} "
                                    "--temperatures ...` first.")
    records = [r for r in map(json.loads, path.read_text().splitlines())
               if r.get("protocol", {}).get("kind") == PROTOCOL]
    if not records:
        raise QualityDiversityError(f"{path} holds no temperature sweep: run `gan-jax evaluate --workdir "
                                    f"{workdir} --temperatures ...` first.")
    steps = sorted({r["step"] for r in records})
    chosen = steps[-1] if step is None else step
    if chosen not in steps:
        raise QualityDiversityError(f"{workdir} has no sweep at step {step}; swept: {', '.join(map(str, steps))}.")
    points: dict[float, dict[str, float]] = {}
    for r in records:
        if r["step"] == chosen:
            points.setdefault(r["protocol"]["temperature"], {})[r["metric"]] = r["value"]
    return chosen, records[-1]["protocol"]["dataset"], points


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return mean, se


def aggregate(groups: dict[str, list[pathlib.Path]], step: int | None = None) -> tuple[str, list[dict]]:
    """(dataset, rows): per label and temperature, the mean and standard error over the label's runs of each
    metric ({"label", "temperature", "runs", "steps", "metrics": {name: (mean, se)}})."""
    datasets, rows = {}, []
    for label, workdirs in groups.items():
        sweeps = []
        for wd in workdirs:
            s, dataset, points = read_sweep(wd, step)
            datasets[str(wd)] = dataset
            sweeps.append((s, points))
        temps = sorted(set.intersection(*(set(points) for _, points in sweeps)))
        if not temps:
            raise QualityDiversityError(f"the runs of {label!r} share no swept temperature; sweep them alike.")
        for t in temps:
            names = set.intersection(*(set(points[t]) for _, points in sweeps))
            rows.append({"label": label, "temperature": t, "runs": len(sweeps),
                         "steps": sorted({s for s, _ in sweeps}),
                         "metrics": {n: _mean_se([points[t][n] for _, points in sweeps]) for n in sorted(names)}})
    if len(set(datasets.values())) > 1:
        raise QualityDiversityError("the runs were evaluated on different data: " +
                                    ", ".join(f"{wd}: {d}" for wd, d in datasets.items()) + ".")
    return next(iter(datasets.values())), rows


def _cell(mean_se: tuple[float, float] | None) -> str:
    if mean_se is None:
        return ""
    mean, se = mean_se
    return f"{mean:.3f} ± {se:.3f}" if not math.isnan(se) else f"{mean:.3f}"


def _max_len(dataset: str) -> int | None:
    tail = dataset.rsplit(":len", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


def write_table(rows: list[dict], dataset: str, md_path: pathlib.Path, csv_path: pathlib.Path) -> str:
    """The Markdown (with the published rows of the same benchmark) and CSV tables; returns the Markdown."""
    columns = _columns({n for r in rows for n in r["metrics"]})
    header = ["run", "seeds", "step", "T"] + columns
    md = [f"Temperature sweep on {dataset}: mean ± standard error over seeds", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        md.append("| " + " | ".join([r["label"], str(r["runs"]), "/".join(map(str, r["steps"])),
                                     f"{r['temperature']:g}"] + [_cell(r["metrics"].get(c)) for c in columns]) + " |")
    if "nll_oracle" in columns:
        floors = [r["metrics"]["nll_oracle_floor"][0] for r in rows if "nll_oracle_floor" in r["metrics"]]
        if floors:
            md.append(f"| oracle's own held-out samples | | | | {floors[0]:.3f} | {floors[0]:.3f} |")
        if _max_len(dataset) == 20:
            md += [f"| {name} (published, T = 1) | | | | {value:.3f} | |"
                   for name, value in text_metrics.ORACLE_PUBLISHED.items()]
    else:
        md.append("| RelGAN(100) (published) | | | | " + " | ".join(
            [f"{RELGAN_COCO_BLEU[n]:.3f}" if n in RELGAN_COCO_BLEU else "" for n in ORDERS] + [""] * 5) + " |")
        for name, (bleu, self_bleu) in text_metrics.COCO_PUBLISHED.items():
            md.append(f"| {name} (published) | | | | " + " | ".join(f"{v:.3f}" for v in (*bleu, *self_bleu)) + " | |")
    text = "\n".join(md) + "\n"
    md_path.write_text(text)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "seeds", "steps", "temperature"] + [x for c in columns for x in (c, c + "_se")])
        for r in rows:
            writer.writerow([r["label"], r["runs"], "/".join(map(str, r["steps"])), r["temperature"]] +
                            [x for c in columns for x in r["metrics"].get(c, (float("nan"), float("nan")))])
    return text


def _series(rows: list[dict], x: str, y: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for r in rows:
        if x in r["metrics"] and y in r["metrics"]:
            out.setdefault(r["label"], []).append((r["temperature"], *r["metrics"][x], *r["metrics"][y]))
    return out


def _draw(ax, series: dict[str, list[tuple]]) -> None:
    for i, (label, points) in enumerate(series.items()):
        points.sort()
        t, x, xe, y, ye = (np.array(v, float) for v in zip(*points))
        color = f"C{i % 10}"
        ax.errorbar(x, y, xerr=np.nan_to_num(xe), yerr=np.nan_to_num(ye), marker="o", ms=3, lw=1, capsize=2,
                    color=color, label=label)
        at_one = np.isclose(t, 1.0)
        ax.plot(x[at_one], y[at_one], marker="*", ms=11, color=color, ls="none")
        for ti, xi, yi in zip(t, x, y):
            ax.annotate(f"{ti:g}", (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=6, color=color)


def plot(rows: list[dict], dataset: str, path: pathlib.Path) -> None:
    """Every run's temperature curve on one set of axes per metric pair (the star marks T = 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {n for r in rows for n in r["metrics"]}
    if "nll_oracle" in names:
        fig, ax = plt.subplots(figsize=(6.5, 5))
        _draw(ax, _series(rows, "nll_gen", "nll_oracle"))
        floors = [r["metrics"]["nll_oracle_floor"][0] for r in rows if "nll_oracle_floor" in r["metrics"]]
        if floors:
            ax.plot([floors[0]], [floors[0]], marker="D", color="k", ls="none", label="the oracle itself")
        if _max_len(dataset) in RELGAN_ORACLE_NLL:
            ax.axhline(RELGAN_ORACLE_NLL[_max_len(dataset)], color="grey", ls="--", lw=1,
                       label="RelGAN(100), published NLL_oracle")
        ax.set_xlabel("NLL_gen(T): held-out NLL of the temperature-scaled model (diversity, lower better)")
        ax.set_ylabel("NLL_oracle(T) of samples (quality, lower better)")
        ax.set_title(f"Quality-diversity, {dataset} (numbers: temperature)", fontsize=9)
        ax.legend(fontsize=7)
    else:
        fig, axes = plt.subplots(2, 2, figsize=(10, 8))
        for ax, n in zip(axes.flat, ORDERS):
            _draw(ax, _series(rows, f"self_bleu{n}", f"bleu{n}"))
            for i, (name, (bleu, self_bleu)) in enumerate(text_metrics.COCO_PUBLISHED.items()):
                ax.plot([self_bleu[n - 2]], [bleu[n - 2]], marker="s", ls="none", color=f"C{(7 + i) % 10}",
                        mfc="none", label=f"{name} (published)")
            if n in RELGAN_COCO_BLEU:
                ax.axhline(RELGAN_COCO_BLEU[n], color="grey", ls="--", lw=1, label="RelGAN(100) BLEU (published)")
            ax.set_xlabel(f"self-BLEU-{n} (diversity, lower better)")
            ax.set_ylabel(f"BLEU-{n} (quality, higher better)")
            ax.set_title(f"BLEU-{n} vs self-BLEU-{n}", fontsize=9)
        axes.flat[0].legend(fontsize=6)
        fig.suptitle(f"Quality-diversity, {dataset} (numbers: temperature; star: T = 1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def training_curves(groups: dict[str, list[pathlib.Path]], png: pathlib.Path, csv_path: pathlib.Path) -> None:
    """NLL_oracle (oracle) or BLEU-2..5 (real text) of the training evaluations against step, mean over a
    label's runs, from each run's metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, dict[int, list[float]]]] = {}
    for label, workdirs in groups.items():
        for wd in workdirs:
            path = wd / "metrics.jsonl"
            if not path.is_file():
                continue
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                for name, value in entry.items():
                    if name in ("eval/nll_oracle", "eval/nll_gen") or name.startswith("eval/bleu"):
                        curves.setdefault(name, {}).setdefault(label, {}).setdefault(entry["step"], []).append(value)
    if not curves:
        return
    names = sorted(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", "run", "step", "runs", "mean", "se"])
        for ax, name in zip(axes[0], names):
            for label, by_step in curves[name].items():
                steps = sorted(by_step)
                stats = [_mean_se(by_step[s]) for s in steps]
                for s, (m, se) in zip(steps, stats):
                    writer.writerow([name, label, s, len(by_step[s]), m, se])
                ax.errorbar(steps, [m for m, _ in stats], yerr=[0 if math.isnan(se) else se for _, se in stats],
                            marker="o", ms=2, lw=1, capsize=2, label=label)
            ax.set_xlabel("adversarial step")
            ax.set_title(name.removeprefix("eval/"), fontsize=9)
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def parse_runs(items: Sequence[str]) -> dict[str, list[pathlib.Path]]:
    """['MLE=a,b,c', 'd'] -> {'MLE': [a, b, c], 'd': [d]}: a label names its runs (seeds), or a workdir itself."""
    groups: dict[str, list[pathlib.Path]] = {}
    for item in items:
        label, sep, dirs = item.partition("=")
        paths = [pathlib.Path(d) for d in (dirs if sep else label).split(",") if d]
        if not paths:
            raise QualityDiversityError(f"{item!r} names no workdir; use LABEL=DIR[,DIR...] or DIR.")
        groups.setdefault(label if sep else paths[0].name, []).extend(paths)
    return groups


def report(items: Sequence[str], out: str | pathlib.Path, step: int | None = None) -> str:
    """Writes OUT.png, OUT.md, OUT.csv (the sweeps) and OUT_steps.png / .csv (training curves); returns the
    Markdown table."""
    groups = parse_runs(items)
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset, rows = aggregate(groups, step)
    text = write_table(rows, dataset, out.with_name(out.name + ".md"), out.with_name(out.name + ".csv"))
    plot(rows, dataset, out.with_name(out.name + ".png"))
    training_curves(groups, out.with_name(out.name + "_steps.png"), out.with_name(out.name + "_steps.csv"))
    return text


def report_main(argv: list[str], prog: str = "gan-jax evaluate report") -> int:
    """Command line: `gan-jax evaluate report [LABEL=]DIR[,DIR...] ... --out PREFIX [--step N]`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog, description="One quality-diversity plot and table over text runs' temperature sweeps.")
    parser.add_argument("runs", nargs="+", help="LABEL=DIR[,DIR...] (runs of one label are seeds) or DIR")
    parser.add_argument("--out", required=True, help="output prefix: writes PREFIX.png, .md, .csv, _steps.png/.csv")
    parser.add_argument("--step", type=int, default=None, help="the swept step of every run (default: each one's "
                                                                "latest)")
    args = parser.parse_args(argv)
    try:
        text = report(args.runs, args.out, args.step)
    except (QualityDiversityError, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    print(text)
    print(f"Written {args.out}.png, .md, .csv and {args.out}_steps.png")
    return 0
