"""`gan-jax sweep`: run every configuration of an experiment's `get_sweep(arg)`, and tabulate them.

`gan-jax sweep --config experiments/grid25.py --workdir DIR [--mode local|vmap|ray|slurm]` writes
`DIR/sweep.json` and trains one run per entry in `DIR/runs/NAME` (`local`: N processes at a
time; `vmap`: runs that differ only in per-run values as one vmapped program per group, see
`vmap.py`; `ray`: the same runs as Ray tasks; `slurm`: writes a job-array script). Every mode is
resumable: finished runs are skipped and interrupted ones resume. The sweep directory is locked
while a sweep runs in it. `--evaluate fid,stacked_mnist,...` then measures every finished image run's
latest checkpoint as `gan-jax evaluate` would (see `evaluate.py`). `gan-jax sweep report DIR`
aggregates the final metrics, the measured ones included.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

from gan_jax import config as config_lib
from gan_jax.errors import GanJaxError
from gan_jax.tools.sweep.local import run_local
from gan_jax.tools.sweep.ray import run_ray
from gan_jax.tools.sweep.report import aggregate, report  # noqa: F401
from gan_jax.tools.sweep.slurm import write_slurm
from gan_jax.tools.sweep.spec import (  # noqa: F401
    expand,
    finished,
    run_name,
    train_command,
    write_sweep,
)


def main(argv: list[str] | None = None, prog: str = "gan-jax sweep") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("report", "--report"):
        return _report_main(argv[1:], prog + " report")
    if argv and argv[0] == "run-one":
        return _run_one_main(argv[1:])
    parser = argparse.ArgumentParser(prog=prog, description="Run every configuration of an experiment's get_sweep().",
                                     epilog=f"Results: {prog} report DIR.")
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
    parser.add_argument("--evaluate", default=None, metavar="METRICS",
                        help="after training, measure each finished image run's latest checkpoint with these "
                             "`gan-jax evaluate` metrics (e.g. stacked_mnist or fid,kid); the report includes them")
    parser.add_argument("--eval_num_samples", type=int, default=10_000, help="--evaluate: generated samples per run")
    parser.add_argument("--classifier", default=None,
                        help="--evaluate: trained MNIST classifier folder (gan-jax train-classifier)")
    parser.add_argument("--inception_weights", default=None, help="--evaluate: Inception weights file")
    args = parser.parse_args(argv)

    from gan_jax.loop.runguard import WorkdirLock

    spec = config_lib.resolve_config_path(args.config)
    workdir = pathlib.Path(args.workdir)
    metrics: list[str] = []
    try:
        if args.evaluate:
            from gan_jax.metrics.suite import parse_metrics
            from gan_jax.tools.sweep.evaluate import check_request

            metrics = parse_metrics(args.evaluate)
            check_request(metrics, args.classifier, args.eval_num_samples)  # before hours of training, not after
        runs = expand(spec, args.sweep_arg)
        workdir.mkdir(parents=True, exist_ok=True)
        with WorkdirLock(workdir):  # one sweep per directory, whatever the mode
            record = write_sweep(workdir, spec, args.sweep_arg, runs)
            if args.mode == "slurm":
                path = write_slurm(workdir, record, args.slurm_header)
                print(f"Wrote {path} ({len(runs)} array tasks); submit it with: sbatch {path}")
                if metrics:
                    print(f"Once the array has finished, measure its runs with: {prog} --config {args.config} "
                          f"--workdir {workdir} --mode local --evaluate {args.evaluate} (finished runs are not "
                          "trained again)")
                return 0
            if args.mode == "vmap":
                from gan_jax.tools.sweep.vmap import run_vmap

                stopped = run_vmap(record)
                if stopped:
                    print(f"{prog}: {stopped}", file=sys.stderr)
                    return 0
                failed = []
            elif args.mode == "ray":
                failed = run_ray(record, args.ray_address, args.ray_cpus_per_run, args.ray_gpus_per_run)
            else:
                failed = run_local(record, args.processes or _default_processes())
            if metrics:
                from gan_jax.tools.sweep.evaluate import evaluate_sweep

                evaluate_sweep(record, metrics, args.eval_num_samples, args.classifier, args.inception_weights)
    except (GanJaxError, FileNotFoundError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"{prog}: a run diverged: {e}", file=sys.stderr)
        return 1
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
    parser = argparse.ArgumentParser(prog="gan-jax sweep run-one")
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
    except (GanJaxError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
