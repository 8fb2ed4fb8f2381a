"""The `gan-jax` command: `gan-jax train ...` (more subcommands arrive with their features)."""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

DEFAULT_EXPERIMENT = "grid25"


def _experiments_dir() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parent.parent / "experiments"


def resolve_config_path(spec: str) -> str:
    """`experiments/x.py[:arg]`, or a bare experiment name `x[:arg]`, relative to cwd or the repo."""
    path, sep, arg = spec.partition(":")
    candidates = [pathlib.Path(path), _experiments_dir() / path, _experiments_dir() / f"{path}.py",
                  _experiments_dir().parent / path]
    for candidate in candidates:
        if candidate.is_file():
            return f"{candidate}{sep}{arg}"
    return spec


def train_main(argv: list[str]) -> int:
    from gan_jax import config as config_lib

    parser = argparse.ArgumentParser(
        prog="gan-jax train", description="Train (or resume) one GAN run.",
        epilog="Any config key can be set with --config.KEY=VALUE, e.g. --config.optim.d_lr=2e-4.")
    parser.add_argument("--config", default=DEFAULT_EXPERIMENT,
                        help="experiment file (or name) with an optional :ARG, e.g. experiments/grid25.py:loss=hinge")
    parser.add_argument("--workdir", default=None, help="run directory; the same one resumes (default runs/NAME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    try:
        rest, overrides = config_lib.split_overrides(argv)
        args = parser.parse_args(rest)
        spec = resolve_config_path(args.config)
        config = config_lib.load_config(spec)
        config.unlock()
        config_lib.apply_overrides(config, overrides)
        config.lock()
    except config_lib.ConfigError as e:
        print(f"gan-jax: config error: {e}", file=sys.stderr)
        return 2
    name = pathlib.Path(spec.partition(":")[0]).stem
    workdir = pathlib.Path(args.workdir or pathlib.Path("runs") / name)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("gan_jax").setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)

    from gan_jax.data import DataError
    from gan_jax.data.tfds_images import DatasetFormatError, DatasetUnavailableError
    from gan_jax.train import train_and_evaluate

    try:
        summary = train_and_evaluate(config, workdir, progress=not args.quiet)
    except (config_lib.ConfigError, DataError, DatasetUnavailableError, DatasetFormatError) as e:
        print(f"gan-jax: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"gan-jax: the run diverged: {e}", file=sys.stderr)
        return 1
    print(report(config, summary, workdir))
    return 0


def report(config, summary, workdir) -> str:
    """The final numbers, with the published reference beside them where there is one."""
    from gan_jax.metrics import modes

    metrics = summary["metrics"]
    lines = [f"Finished {summary['step']} steps in {summary['wall_time_sec']:.1f} s -> {workdir}"]
    source = config.data.source
    if source.startswith("synthetic:"):
        lines.append(modes.format_table(source.split(":", 1)[1], metrics, config.eval.num_samples))
    else:
        shown = {k: v for k, v in metrics.items() if k.startswith("eval/")}
        if shown:
            lines.append("  ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    lines.append(f"Samples: {workdir / 'samples'}   Metrics: {workdir / 'metrics.jsonl'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_main}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"gan-jax: unknown command {argv[0]!r}", file=sys.stderr)
        print("usage: gan-jax {train} [options]   (gan-jax train --help)", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
