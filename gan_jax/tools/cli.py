"""The `gan-jax` command: train, evaluate, sweep, sample, benchmark.

Every error a user can fix (`gan_jax.errors.GanJaxError`) is printed as one message and exits
with code 2; a diverged run exits with code 1.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from gan_jax.errors import GanJaxError

DEFAULT_EXPERIMENT = "grid25"


def train_main(argv: list[str]) -> int:
    from gan_jax import config as config_lib
    from gan_jax.loop.writers import quiet_when_gone

    quiet_when_gone()  # a reader that goes away (`| tee`, then Ctrl-C) must not stop the run before it saves

    parser = argparse.ArgumentParser(
        prog="gan-jax train", description="Train (or resume) one GAN run.",
        epilog="Any config key can be set with --config.KEY=VALUE, e.g. --config.optim.d_lr=2e-4.")
    parser.add_argument("--config", default=DEFAULT_EXPERIMENT,
                        help="experiment file (or name) with an optional :ARG, e.g. experiments/grid25.py:loss=hinge")
    parser.add_argument("--workdir", default=None,
                        help="run directory; the same one resumes (default runs/NAME, or runs/NAME-ARG for NAME:ARG)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no_compilation_cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (default dir ~/.cache/gan_jax/jax, "
                             "or $GAN_JAX_CACHE_DIR; GAN_JAX_COMPILATION_CACHE=0 also turns it off)")
    parser.add_argument("--allow_config_change", default="", metavar="KEYS",
                        help="comma-separated config keys that may differ from the workdir's config on resume")
    parser.add_argument("--allow_fresh_start", action="store_true",
                        help="if no checkpoint in the workdir is readable, move them aside and start from step 0 "
                             "(default: refuse)")
    parser.add_argument("--on_divergence", choices=("stop", "rollback"), default=None,
                        help="on a non-finite loss or gradient: stop, or roll back to the last checkpoint and "
                             "continue with lower learning rates (sets --config.guard.on_divergence; default stop)")
    parser.add_argument("--rollback_lr_factor", type=float, default=None,
                        help="learning-rate multiplier applied at each rollback (sets --config.guard.rollback_lr_factor;"
                             " default 0.5)")
    hosts = parser.add_argument_group(
        "multi-process jobs (jax.distributed; every process runs the same command, see docs/launching.md)")
    hosts.add_argument("--distributed", choices=("auto", "on", "off"), default="auto",
                       help="auto: join a job when the flags below, $JAX_COORDINATOR_ADDRESS / $JAX_NUM_PROCESSES / "
                            "$JAX_PROCESS_ID, or an srun / mpirun launch of several tasks say there is one; on: always "
                            "(a Cloud TPU slice, where JAX finds the rest itself); off: never")
    hosts.add_argument("--coordinator_address", default=None, metavar="HOST:PORT",
                       help="process 0's address and a free port, the same for every process")
    hosts.add_argument("--num_processes", type=int, default=None, help="how many processes the job has")
    hosts.add_argument("--process_id", type=int, default=None, help="this process's index, 0 to num_processes-1")
    try:
        rest, overrides = config_lib.split_overrides(argv)
        args = parser.parse_args(rest)
        for flag in ("on_divergence", "rollback_lr_factor"):  # shorthands of guard.* (recorded in config.json)
            if getattr(args, flag) is not None:
                overrides.setdefault(f"guard.{flag}", str(getattr(args, flag)))
        from gan_jax.loop import distributed  # before anything touches a device

        distributed.initialize(args.distributed, args.coordinator_address, args.num_processes, args.process_id)
        spec = config_lib.resolve_config_path(args.config)
        config = config_lib.load_config(spec)
        config.unlock()
        config_lib.apply_overrides(config, overrides)
        config.lock()
    except GanJaxError as e:
        print(f"gan-jax: config error: {e}", file=sys.stderr)
        return 2
    workdir = pathlib.Path(args.workdir or pathlib.Path("runs") / default_run_name(args.config))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("gan_jax").setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)

    from gan_jax.tools import startup

    if not args.no_compilation_cache:
        startup.enable_compilation_cache()
    from gan_jax.loop.trainer import train_and_evaluate

    allowed = [k.strip() for k in args.allow_config_change.split(",") if k.strip()]
    try:
        summary = train_and_evaluate(config, workdir, progress=not args.quiet, allow_config_change=allowed,
                                     allow_fresh_start=args.allow_fresh_start)
    except GanJaxError as e:
        print(f"gan-jax: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"gan-jax: the run diverged: {e}", file=sys.stderr)
        return 1
    if summary.get("stopped_by"):
        print(f"gan-jax: {summary['message']}", file=sys.stderr)
        return 0
    print(report(config, summary, workdir))
    return 0


def default_run_name(config_spec: str) -> str:
    """The default workdir's name: the experiment's, plus its ARG when there is one, so that a variant
    (`grid25:runlocal`) never lands in the plain run's folder (`runs/grid25` vs `runs/grid25-runlocal`)."""
    import hashlib
    import re

    path, _, arg = config_spec.partition(":")
    name = pathlib.Path(path).stem
    if not arg:
        return name
    slug = re.sub(r"[^A-Za-z0-9._=,+-]", "_", arg)
    if len(slug) > 60:  # long override lists: readable head, a hash of the whole
        slug = f"{slug[:48]}-{hashlib.sha1(arg.encode()).hexdigest()[:8]}"
    return f"{name}-{slug}"


def report(config, summary, workdir) -> str:
    """The final numbers, as the run's modality reports them (with published references where there are)."""
    from gan_jax.loop.modalities import modality

    lines = [f"Finished {summary['step']} steps in {summary['wall_time_sec']:.1f} s -> {workdir}"]
    lines += modality(summary["data_kind"]).report(config, summary["metrics"])
    lines.append(f"Samples: {workdir / 'samples'}   Metrics: {workdir / 'metrics.jsonl'}")
    return "\n".join(lines)


def evaluate_main(argv: list[str]) -> int:
    from gan_jax.tools.evaluate import main as evaluate

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return evaluate(argv)


def benchmark_main(argv: list[str]) -> int:
    from gan_jax.tools.benchmark import main as benchmark

    return benchmark(argv)


def sweep_main(argv: list[str]) -> int:
    from gan_jax.tools.sweep import main as sweep

    return sweep(argv)


def sample_main(argv: list[str]) -> int:
    from gan_jax.tools.sample import main as sample

    return sample(argv)


def train_classifier_main(argv: list[str]) -> int:
    from gan_jax.tools.train_classifier import main as train_classifier

    return train_classifier(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_main, "evaluate": evaluate_main, "benchmark": benchmark_main, "sample": sample_main,
                "sweep": sweep_main, "train-classifier": train_classifier_main}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"gan-jax: unknown command {argv[0]!r}", file=sys.stderr)
        print("usage: gan-jax {train,evaluate,sweep,sample,benchmark,train-classifier} [options]   (gan-jax train --help)",
              file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
