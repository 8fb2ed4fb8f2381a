"""Sweeps: expand an experiment's `get_sweep(arg)`, run every configuration, and tabulate the results.

An experiment file may define `get_sweep(arg=None)` returning a list of override dicts
(`{"loss": "hinge", "seed": 3}`), built with `product`, `zip_` and `seeds`:

    def get_sweep(arg=None):
        return product(zip_(loss=["hinge", "wasserstein"], **{"reg.gp_weight": [0.0, 10.0]}), seeds(10))

`gan-jax sweep --config experiments/grid25.py --workdir DIR [--mode local|vmap|ray|slurm]` writes
`DIR/sweep.json` and trains one run per entry in `DIR/runs/NAME` (`local`: N processes at a
time, resumable: finished runs are skipped, interrupted ones resume; `ray`: the same runs as
Ray tasks, on a local instance or a cluster; `slurm`: writes a job-array script instead;
`vmap`: see gan_jax/sweep_vmap.py). `gan-jax sweep report DIR` aggregates the final metrics of every run into a
Markdown and a CSV table grouped by the swept values, mean ± standard error over seeds, and
plots a chosen metric against a swept value.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import pathlib
import re
import shlex
import subprocess
import sys
import time
from typing import Any, Iterable, Sequence

Overrides = dict[str, Any]


def _as_runs(part: Iterable[Overrides] | Overrides) -> list[Overrides]:
    return [part] if isinstance(part, dict) else list(part)


def product(*parts: Iterable[Overrides], **axes: Sequence[Any]) -> list[Overrides]:
    """Cartesian product of lists of overrides and of named value lists: product(seeds(2), loss=[a, b])."""
    lists = [_as_runs(p) for p in parts] + [[{key: v} for v in values] for key, values in axes.items()]
    return [{k: v for d in combo for k, v in d.items()} for combo in itertools.product(*lists)]


def zip_(**axes: Sequence[Any]) -> list[Overrides]:
    """Values taken together: zip_(loss=[a, b], n_critic=[1, 5]) -> [{loss: a, n_critic: 1}, {loss: b, ...}]."""
    lengths = {len(v) for v in axes.values()}
    if len(lengths) > 1:
        raise ValueError(f"zip_ needs value lists of one length, got {({k: len(v) for k, v in axes.items()})}.")
    return [dict(zip(axes, values)) for values in zip(*axes.values())]


def seeds(n: int, start: int = 0) -> list[Overrides]:
    return [{"seed": s} for s in range(start, start + n)]


def run_name(overrides: Overrides) -> str:
    """A readable, filesystem-safe name: 'loss=hinge,seed=3'."""
    text = ",".join(f"{k}={v}" for k, v in overrides.items()) or "default"
    return re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", text)


def expand(config_spec: str, sweep_arg: str | None = None) -> list[Overrides]:
    """The override dicts of `PATH[:ARG]`'s get_sweep(sweep_arg), each checked against the config."""
    from gan_jax import config as config_lib

    path, _, arg = config_spec.partition(":")
    module = config_lib.load_module(path)
    if not hasattr(module, "get_sweep"):
        raise config_lib.ConfigError(f"{path} defines no get_sweep(arg); add one that returns a list of "
                                     "override dicts (see gan_jax/sweep.py).")
    runs = [dict(r) for r in module.get_sweep(sweep_arg)]
    if not runs:
        raise config_lib.ConfigError(f"{path}: get_sweep({sweep_arg!r}) returned no runs.")
    names = [run_name(r) for r in runs]
    if len(set(names)) != len(names):
        raise config_lib.ConfigError(f"{path}: get_sweep returned duplicate runs.")
    for r in runs:  # a misspelt key fails here, before any run starts
        config_lib.apply_overrides(config_lib.load_config(config_spec), {k: str(v) for k, v in r.items()})
    return runs


def write_sweep(workdir: pathlib.Path, config_spec: str, sweep_arg: str | None, runs: list[Overrides]) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    entries = [{"name": run_name(r), "overrides": r, "workdir": str(workdir / "runs" / run_name(r))} for r in runs]
    record = {"config": config_spec, "sweep_arg": sweep_arg, "runs": entries}
    path = workdir / "sweep.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous.get("config") != config_spec or [e["name"] for e in previous["runs"]] != [e["name"] for e in entries]:
            raise ValueError(f"{workdir} holds a different sweep ({previous.get('config')}, {len(previous['runs'])} "
                             "runs); use another --workdir or the same sweep to resume it.")
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def train_command(config_spec: str, entry: dict) -> list[str]:
    cmd = [sys.executable, "-m", "gan_jax.cli", "train", "--config", config_spec, "--workdir", entry["workdir"],
           "--quiet"]
    return cmd + [f"--config.{k}={v}" for k, v in entry["overrides"].items()]


def finished(entry: dict) -> bool:
    return (pathlib.Path(entry["workdir"]) / "summary.json").is_file()


def run_local(record: dict, processes: int, log=print) -> list[str]:
    """Trains every unfinished run, `processes` at a time; returns the names of failed runs."""
    todo = [e for e in record["runs"] if not finished(e)]
    done = len(record["runs"]) - len(todo)
    log(f"sweep: {len(record['runs'])} runs, {done} already finished, {len(todo)} to run, {processes} at a time")
    running: list[tuple[dict, subprocess.Popen, Any]] = []
    failed = []
    start = time.time()
    while todo or running:
        while todo and len(running) < processes:
            entry = todo.pop(0)
            pathlib.Path(entry["workdir"]).mkdir(parents=True, exist_ok=True)
            out = open(pathlib.Path(entry["workdir"]) / "train.log", "a")
            running.append((entry, subprocess.Popen(train_command(record["config"], entry), stdout=out,
                                                    stderr=subprocess.STDOUT), out))
        time.sleep(0.2)
        for item in list(running):
            entry, proc, out = item
            if proc.poll() is None:
                continue
            out.close()
            running.remove(item)
            done += 1
            if proc.returncode != 0:
                failed.append(entry["name"])
            log(_done_line(entry, proc.returncode, done, len(record["runs"]), start))
    return failed


def _done_line(entry: dict, code: int, done: int, total: int, start: float) -> str:
    """The progress line of a finished run (local and Ray modes)."""
    status = "ok" if code == 0 else f"FAILED (exit {code}, see {entry['workdir']}/train.log)"
    return f"[{done}/{total}] {entry['name']}: {status}  ({time.time() - start:.0f} s)"


def _train_task(config_spec: str, entry: dict) -> tuple[str, int]:
    """One run as a subprocess, its output appended to RUN/train.log: the body of a Ray task."""
    workdir = pathlib.Path(entry["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "train.log", "a") as out:
        code = subprocess.call(train_command(config_spec, entry), stdout=out, stderr=subprocess.STDOUT)
    return entry["name"], code


def run_ray(record: dict, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
            log=print) -> list[str]:
    """Trains every unfinished run as a Ray task; returns the names of failed runs.

    `address=None` starts a local Ray instance; "auto" or "HOST:PORT" joins a running cluster,
    whose nodes must all see the sweep directory (a shared filesystem) and have gan_jax installed.
    Each task trains its run in a fresh process, exactly as `--mode local` does, so a run can be
    interrupted and resumed by rerunning the sweep.
    """
    try:
        import ray
    except ImportError:
        raise ValueError("--mode ray needs Ray: pip install 'gan-jax[ray]' (or pip install ray).") from None
    todo = [e for e in record["runs"] if not finished(e)]
    done = len(record["runs"]) - len(todo)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    log(f"sweep: {len(record['runs'])} runs, {done} already finished, {len(todo)} to run as Ray tasks "
        f"({cpus_per_run:g} CPU{f', {gpus_per_run:g} GPU' if gpus_per_run else ''} each; cluster: "
        f"{ray.cluster_resources().get('CPU', 0):g} CPUs)")
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_train_task)
    pending = [task.remote(record["config"], e) for e in todo]
    by_name = {e["name"]: e for e in todo}
    failed, start = [], time.time()
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            name, code = ray.get(ready[0])
            done += 1
            if code != 0:
                failed.append(name)
            log(_done_line(by_name[name], code, done, len(record["runs"]), start))
    finally:
        if started_here:
            ray.shutdown()
    return failed


def write_slurm(workdir: pathlib.Path, record: dict, extra: str = "") -> pathlib.Path:
    """A job-array script: task i trains run i of sweep.json (resumes if resubmitted)."""
    lines = ["#!/bin/bash", f"#SBATCH --array=0-{len(record['runs']) - 1}", "#SBATCH --job-name=gan_jax_sweep",
             f"#SBATCH --output={workdir}/runs/slurm-%A_%a.out"] + ([extra] if extra else []) + [
        "set -euo pipefail",
        f"exec {shlex.quote(sys.executable)} -m gan_jax.sweep run-one --workdir {shlex.quote(str(workdir))} "
        "--index \"$SLURM_ARRAY_TASK_ID\""]
    path = workdir / "sweep.sbatch"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- results


def _final_metrics(entry: dict) -> dict[str, float] | None:
    path = pathlib.Path(entry["workdir"]) / "summary.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text()).get("metrics", {})
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k.startswith("eval/")}


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


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None, prog: str = "gan-jax sweep") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("report", "--report"):
        return _report_main(argv[1:], prog + " report")
    if argv and argv[0] == "run-one":
        return _run_one_main(argv[1:])
    parser = argparse.ArgumentParser(prog=prog, description="Run every configuration of an experiment's get_sweep().",
                                     epilog=f"Results: {prog} report DIR (or scripts/sweep.py --report DIR).")
    parser.add_argument("--config", required=True, help="experiment file (or name) with an optional :ARG")
    parser.add_argument("--sweep_arg", default=None, help="argument passed to get_sweep(arg)")
    parser.add_argument("--workdir", required=True, help="sweep directory: sweep.json and runs/NAME/")
    parser.add_argument("--mode", choices=("local", "vmap", "ray", "slurm"), default="local",
                        help="local: one process per run; vmap: runs differing only in state-held values "
                             "(seed, learning rates, betas, loss weights, EMA decay) as one vmapped program; "
                             "ray: one Ray task per run (a local Ray instance, or --ray_address); "
                             "slurm: write a job-array script")
    parser.add_argument("--ray_address", default=None,
                        help="ray mode: a running cluster ('auto' or HOST:PORT); default: start a local instance")
    parser.add_argument("--ray_cpus_per_run", type=float, default=1.0, help="ray mode: CPUs reserved per run")
    parser.add_argument("--ray_gpus_per_run", type=float, default=0.0, help="ray mode: GPUs reserved per run")
    parser.add_argument("--processes", type=int, default=None,
                        help="local mode: runs at a time (default: 1, or one per accelerator)")
    parser.add_argument("--slurm_header", default="", help="extra #SBATCH lines for --mode slurm")
    args = parser.parse_args(argv)

    from gan_jax import config as config_lib
    from gan_jax.cli import resolve_config_path

    spec = resolve_config_path(args.config)
    workdir = pathlib.Path(args.workdir)
    try:
        runs = expand(spec, args.sweep_arg)
        record = write_sweep(workdir, spec, args.sweep_arg, runs)
    except (config_lib.ConfigError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    if args.mode == "slurm":
        path = write_slurm(workdir, record, args.slurm_header)
        print(f"Wrote {path} ({len(runs)} array tasks); submit it with: sbatch {path}")
        return 0
    if args.mode == "vmap":
        from gan_jax.sweep_vmap import run_vmap

        try:
            run_vmap(record)
        except (config_lib.ConfigError, FloatingPointError) as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 1
        print(report(workdir))
        return 0
    if args.mode == "ray":
        try:
            failed = run_ray(record, args.ray_address, args.ray_cpus_per_run, args.ray_gpus_per_run)
        except ValueError as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 2
    else:
        failed = run_local(record, args.processes or _default_processes())
    print(report(workdir))
    if failed:
        print(f"{prog}: {len(failed)} run(s) failed: {', '.join(failed)}; rerun the same command to retry them.",
              file=sys.stderr)
        return 1
    return 0


def _default_processes() -> int:
    import jax

    return jax.device_count() if jax.default_backend() != "cpu" else 1


def _run_one_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gan_jax.sweep run-one")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--index", type=int, required=True)
    args = parser.parse_args(argv)
    record = json.loads((pathlib.Path(args.workdir) / "sweep.json").read_text())
    entry = record["runs"][args.index]
    if finished(entry):
        print(f"{entry['name']} already finished")
        return 0
    return subprocess.call(train_command(record["config"], entry))


def _report_main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Tabulate a sweep's final metrics.")
    parser.add_argument("workdir")
    parser.add_argument("--plot_metric", default=None, help="metric to plot, e.g. modes or eval/high_quality")
    parser.add_argument("--plot_x", default=None, help="swept key on the x axis (default: the first swept key)")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir)
    if not (workdir / "sweep.json").is_file():
        print(f"{prog}: {workdir} has no sweep.json (give the --workdir of `gan-jax sweep`).", file=sys.stderr)
        return 2
    try:
        print(report(workdir, args.plot_metric, args.plot_x))
    except ValueError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
