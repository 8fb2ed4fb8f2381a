"""Samples from a trained run: `gan-jax sample`.

    gan-jax sample --workdir runs/mnist_dcgan --num 1000 [--checkpoint latest|STEP]
        [--format png|npz] [--out DIR] [--raw] [--seed S]
    gan-jax sample --workdir runs/mnist_dcgan --num 1000 --by_class [--classifier DIR]
    gan-jax sample --workdir runs/mnist_biggan --num 1000 --by_class --truncation 1.0

Images go to PNG files (one per sample) or one `.npz` (uint8 images and, for conditional
models, their labels); 2-D points to a `.npz`; text models to a `.txt` with one decoded
sample a line. The EMA generator is used when the run has one (`--raw` for the online one).
`--truncation T` draws each latent entry from the normal truncated to [-T, T] (BigGAN's
truncation trick; Gaussian priors only).

`--by_class` writes one PNG with a row per class:
- a class-conditional generator is asked for each class in turn (`num` samples, class i % K
  for sample i); row c holds the first `per_class` samples drawn for class c. For 28x28 grey
  images gan_jax's MNIST classifier then reports, per requested class, the share of its
  samples it assigns to that class;
- an unconditional generator (28x28 grey images) has its `num` samples sorted by the digit the
  classifier sees, the most confidently classified first; it prints how many samples fall in
  each class and how many the classifier labels with probability >= 0.9.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import numpy as np

from gan_jax.core import sampling
from gan_jax.data import get_dataset
from gan_jax.errors import GanJaxError
from gan_jax.loop import blueprint, rundir
from gan_jax.loop.modalities import modality


class SampleError(GanJaxError, ValueError):
    """A workdir or request that cannot be sampled, with the reason and the fix."""


def load_run(workdir: pathlib.Path, checkpoint: str = "latest", use_ema: bool = True,
             standing_statistics: int | None = None):
    """(config, blueprint, restored state, step) of a run directory; the state with standing statistics
    for the generator that samples (`use_ema`) when `standing_statistics` (default eval.standing_statistics) > 0."""
    config = rundir.read_config(workdir)
    _, spec = get_dataset(config.data, min(config.batch_size, 1), config.seed)
    plan = blueprint.make_blueprint(config, spec, check=False)
    like = plan.init_state()
    checkpointer = rundir.open_checkpoints(workdir, config)
    steps = checkpointer.all_steps()
    step = max(steps) if checkpoint == "latest" else int(checkpoint)
    if step not in steps:
        checkpointer.close()
        raise SampleError(f"no checkpoint at step {step}; available: {', '.join(map(str, steps))}.")
    state, _ = checkpointer.restore(step, like)
    checkpointer.close()
    state = sampling.for_sampling(plan.g_model, state, config, plan.num_classes, use_ema, standing_statistics)
    return config, plan, state, step


def _suffix(raw: bool, truncation: float | None) -> str:
    # no dot in the name: the file's suffix is added with with_suffix
    return ("_raw" if raw else "") + (f"_trunc{truncation:g}".replace(".", "p") if truncation is not None else "")


def write_samples(workdir: pathlib.Path, num: int, out: pathlib.Path | None = None, fmt: str = "png",
                  checkpoint: str = "latest", use_ema: bool = True, seed: int | None = None,
                  truncation: float | None = None, standing_statistics: int | None = None) -> pathlib.Path:
    """Writes `num` samples of the run; returns the file or folder written."""
    config, plan, state, step = load_run(workdir, checkpoint, use_ema, standing_statistics)
    key = None if seed is None else jax.random.key(seed)
    raw = not use_ema and state.g_ema is not None  # the online G of a run that keeps an EMA: its own name
    out = out or workdir / "samples" / f"sample_{step:08d}{_suffix(raw, truncation)}"
    return modality(plan.spec.kind).write_samples(plan, state, config, num, out, fmt, use_ema, key, truncation)


def class_rows(probabilities: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [classes, per_class] of each class's most confident samples (-1 where a class has
    fewer), and the number of samples predicted as each class."""
    predicted = np.argmax(probabilities, axis=1)
    top = probabilities.max(axis=1)
    num_classes = probabilities.shape[1]
    rows = np.full((num_classes, per_class), -1, np.int64)
    for c in range(num_classes):
        members = np.flatnonzero(predicted == c)
        best = members[np.argsort(-top[members], kind="stable")][:per_class]
        rows[c, :len(best)] = best
    return rows, np.bincount(predicted, minlength=num_classes)


def requested_rows(labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """Indices [classes, per_class] of the first samples drawn for each class (-1 where a class has fewer)."""
    rows = np.full((num_classes, per_class), -1, np.int64)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)[:per_class]
        rows[c, :len(members)] = members
    return rows


def _save_rows(path: pathlib.Path, samples: np.ndarray, rows: np.ndarray, row_labels: list[str]) -> None:
    from gan_jax.loop import pictures

    blank = np.full((1,) + samples.shape[1:], -1.0, samples.dtype)
    tiles = np.concatenate([samples, blank])[rows.reshape(-1)]  # index -1 picks the blank tile
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = pictures.image_grid(tiles, columns=rows.shape[1])
    pictures.save_png(path, pictures.label_rows(grid, row_labels, samples.shape[1]))


def write_by_class(workdir: pathlib.Path, num: int, per_class: int = 10, out: pathlib.Path | None = None,
                   checkpoint: str = "latest", use_ema: bool = True, seed: int | None = None,
                   classifier_dir: str | None = None, truncation: float | None = None,
                   standing_statistics: int | None = None) -> tuple[pathlib.Path, str]:
    """The grid with a row per class (see the module docstring); returns (PNG path, summary)."""
    from gan_jax.metrics import classifier as classifier_lib

    config, plan, state, step = load_run(workdir, checkpoint, use_ema, standing_statistics)
    spec, g_model = plan.spec, plan.g_model
    key = None if seed is None else jax.random.key(seed)
    raw = not use_ema and state.g_ema is not None
    path = (out or workdir / "samples" / f"by_class_{step:08d}{_suffix(raw, truncation)}").with_suffix(".png")
    generator = "raw" if raw or state.g_ema is None else "EMA"
    if sampling.is_conditional(config.model):
        num_classes = spec.num_classes or 0
        labels = sampling.requested_labels(num, num_classes)
        samples = sampling.generate(g_model, state, num, config.model, use_ema, key=key, labels=labels,
                                    truncation=truncation)
        _save_rows(path, samples, requested_rows(labels, num_classes, per_class), [str(c) for c in range(num_classes)])
        summary = f"step {step}, {num} samples ({generator} G), classes requested in turn"
        if tuple(spec.shape) == (28, 28, 1):
            model = classifier_lib.MNISTClassifier.load(classifier_dir)
            overall, shares = classifier_lib.requested_class_shares(model.predict(samples), labels)
            summary += (f"; {model.name} assigns the requested class to {overall:.1%} (per class "
                        + " ".join(f"{c}:{s:.0%}" for c, s in shares.items()) + ")")
        return path, summary
    if tuple(spec.shape) != (28, 28, 1):
        raise SampleError(f"--by_class needs 28x28x1 images (the MNIST classifier's input); this run makes "
                          f"{spec.kind} of shape {tuple(spec.shape)}.")
    model = classifier_lib.MNISTClassifier.load(classifier_dir)
    samples = sampling.generate(g_model, state, num, config.model, use_ema, key=key, truncation=truncation)
    probabilities = model.probabilities(samples)
    rows, counts = class_rows(probabilities, per_class)
    _save_rows(path, samples, rows, [str(c) for c in range(len(rows))])
    confident = classifier_lib.confidence_statistics(probabilities)["confident"]
    summary = (f"step {step}, {num} samples ({generator} G), "
               f"{model.name}: per class " + " ".join(f"{c}:{n}" for c, n in enumerate(counts))
               + f"; labelled with probability >= 0.9: {confident:.1%}")
    return path, summary


def main(argv: list[str] | None = None, prog: str = "gan-jax sample") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Write samples of a trained run.")
    parser.add_argument("--workdir", required=True, help="the run directory that `gan-jax train` wrote")
    parser.add_argument("--num", type=int, default=64, help="number of samples")
    parser.add_argument("--checkpoint", default="latest", help="latest or a step number")
    parser.add_argument("--format", choices=("png", "npz"), default="png", help="images: PNG files or one .npz")
    parser.add_argument("--out", default=None, help="output folder / file stem (default WORKDIR/samples/sample_STEP)")
    parser.add_argument("--raw", action="store_true", help="use the online generator, not its EMA")
    parser.add_argument("--seed", type=int, default=None, help="noise seed (default: the run's fixed eval noise)")
    parser.add_argument("--by_class", action="store_true",
                        help="one PNG with a row per class (WORKDIR/samples/by_class_STEP.png): a conditional G "
                             "drawn for each class in turn; an unconditional one's 28x28 digits sorted by the class "
                             "the MNIST classifier sees, most confident first")
    parser.add_argument("--per_class", type=int, default=10, help="--by_class: samples shown per class")
    parser.add_argument("--truncation", type=float, default=None,
                        help="draw latents from the normal truncated to [-T, T] (BigGAN's truncation trick)")
    parser.add_argument("--standing_statistics", type=int, default=None, metavar="N",
                        help="batch-norm generators: recompute the statistics over N train-mode forwards first "
                             "(BigGAN's standing statistics; default eval.standing_statistics, 0: off)")
    parser.add_argument("--classifier", default=None,
                        help="--by_class: MNIST classifier folder (default: gan-jax train-classifier's)")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error("--num must be >= 1")
    if args.standing_statistics is not None and args.standing_statistics < 0:
        parser.error("--standing_statistics must be >= 0 (forwards; 0: off)")
    if args.truncation is not None and not args.truncation > 0:
        parser.error("--truncation must be > 0 (the latents are drawn from [-T, T])")
    try:
        if args.by_class:
            if args.per_class < 1:
                parser.error("--per_class must be >= 1")
            path, summary = write_by_class(pathlib.Path(args.workdir), args.num, args.per_class,
                                           pathlib.Path(args.out) if args.out else None, args.checkpoint,
                                           not args.raw, args.seed, args.classifier, args.truncation,
                                           args.standing_statistics)
            print(summary)
            print(f"Wrote {path}")
            return 0
        path = write_samples(pathlib.Path(args.workdir), args.num, pathlib.Path(args.out) if args.out else None,
                             args.format, args.checkpoint, not args.raw, args.seed, args.truncation,
                             args.standing_statistics)
    except (GanJaxError, ValueError, FileNotFoundError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {args.num} samples to {path}")
    return 0
