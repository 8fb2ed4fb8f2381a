"""The same sweep run as one vmapped program and run one by one, back to back: wall times and per-run results.

    python scripts/benchmark_sweep.py                      # grid25, 16 seeds of the main job's recipe
    python scripts/benchmark_sweep.py --config experiments/grid25.py:num_steps=2000 --sweep_arg seeds=16

Both halves are `gan-jax sweep` processes (`--mode vmap`, then `--mode local --processes 1`) on
fresh sweep directories under --workdir, so each includes everything a user waits for: start-up,
compilation (the persistent cache serves the sequential runs after the first), evaluation and
checkpoints. The report gives both wall times, their ratio, every run's final metrics from both
modes, and the largest difference between the two modes' final parameters.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
METRICS = ("eval/modes", "eval/high_quality", "eval/reverse_kl")


def _sweep(spec: str, sweep_arg: str, workdir: pathlib.Path, mode: list[str]) -> float:
    cmd = [sys.executable, "-m", "gan_jax", "sweep", "--config", spec, "--sweep_arg", sweep_arg,
           "--workdir", str(workdir), *mode]
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.time() - start


def _final_params(workdir: pathlib.Path):
    from gan_jax.tools.sample import load_run

    _, _, state, _ = load_run(workdir)  # the latest checkpoint
    return state.g.params, state.d.params


def compare(vmap_dir: pathlib.Path, seq_dir: pathlib.Path) -> list[dict]:
    """Per run: both modes' final metrics and the largest parameter difference relative to the parameters' scale."""
    import jax

    record = json.loads((vmap_dir / "sweep.json").read_text())
    rows = []
    for entry in record["runs"]:
        row = {"run": entry["name"]}
        for mode, base in (("vmap", vmap_dir), ("sequential", seq_dir)):
            summary = json.loads((base / "runs" / entry["name"] / "summary.json").read_text())
            row[mode] = {k: summary["metrics"].get(k) for k in METRICS}
        a = jax.tree.leaves(_final_params(vmap_dir / "runs" / entry["name"]))
        b = jax.tree.leaves(_final_params(seq_dir / "runs" / entry["name"]))
        row["max_param_diff"] = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))
        row["max_param_abs"] = max(float(np.max(np.abs(np.asarray(y)))) for y in b)
        rows.append(row)
    return rows


def format_report(spec: str, sweep_arg: str, t_vmap: float, t_seq: float, rows: list[dict]) -> str:
    lines = [f"sweep {spec} --sweep_arg {sweep_arg}: {len(rows)} runs",
             f"- vmap (one process): {t_vmap:.1f} s wall",
             f"- one by one (`--mode local --processes 1`): {t_seq:.1f} s wall",
             f"- speed-up: {t_seq / t_vmap:.2f}x", "",
             "| run | vmap modes / HQ % / rKL | one by one modes / HQ % / rKL | max abs param diff (max abs param) |",
             "|---|---|---|---|"]

    def cell(m):
        if any(m.get(k) is None for k in METRICS):
            return "n/a"
        return f"{m['eval/modes']:.0f} / {100 * m['eval/high_quality']:.1f} / {m['eval/reverse_kl']:.3f}"

    for r in rows:
        lines.append(f"| {r['run']} | {cell(r['vmap'])} | {cell(r['sequential'])} | "
                     f"{r['max_param_diff']:.2e} ({r['max_param_abs']:.2f}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="experiments/grid25.py", help="experiment PATH[:ARG]")
    parser.add_argument("--sweep_arg", default="seeds=16", help="argument of the experiment's get_sweep")
    parser.add_argument("--workdir", default="runs/benchmark_sweep",
                        help="holds vmap/ and sequential/ sweep directories and the report")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing --workdir first")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir).resolve()
    if workdir.exists() and any(workdir.iterdir()):
        if not args.overwrite:
            print(f"{workdir} is not empty: both sweeps must start fresh for the timing to mean anything. "
                  "Give another --workdir, or --overwrite to delete it.", file=sys.stderr)
            return 2
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t_vmap = _sweep(args.config, args.sweep_arg, workdir / "vmap", ["--mode", "vmap"])
    t_seq = _sweep(args.config, args.sweep_arg, workdir / "sequential", ["--mode", "local", "--processes", "1"])
    rows = compare(workdir / "vmap", workdir / "sequential")
    text = format_report(args.config, args.sweep_arg, t_vmap, t_seq, rows)
    (workdir / "report.md").write_text(text)
    (workdir / "report.json").write_text(json.dumps(
        {"config": args.config, "sweep_arg": args.sweep_arg, "vmap_wall_s": t_vmap, "sequential_wall_s": t_seq,
         "speedup": t_seq / t_vmap, "runs": rows}, indent=2) + "\n")
    print(text + f"Written: {workdir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
