"""Metrics of a finished (or running) run, after the fact: `gan-jax evaluate`.

`evaluate_workdir(workdir, metrics)` restores an image run's checkpoints read-only from its
`config.json` and `checkpoints/`, draws `num_samples` samples from the (EMA) generator on
the fixed evaluation noise, computes the metrics against a split of the run's dataset, and
appends one JSON line per metric to `WORKDIR/eval.jsonl`, each with its protocol. A text run
gets the quality-diversity temperature sweep instead (`--temperatures`, see
`gan_jax.tools.quality_diversity`), and `gan-jax evaluate report DIR...` plots sweeps together.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any

import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.core import sampling
from gan_jax.errors import GanJaxError
from gan_jax.loop import blueprint, rundir
from gan_jax.loop.rundir import select_steps
from gan_jax.metrics import suite


class EvaluationError(GanJaxError, ValueError):
    """A workdir or request that cannot be evaluated, with the reason and the fix."""


def _trains_on_local(config) -> bool:
    """Whether the run's images come from a local `.npz`, an image folder or `digits`."""
    return config.data.source.partition(":")[0] == "local" or config.data.source == "digits"


def load_real_split(config, split: str, data_dir: str | None, manual_dir: str | None, real: str | None = None
                    ) -> tuple[str, np.ndarray, int]:
    """(dataset name, images of the split in [-1, 1] as the run saw them, number of classes or 0).

    `real` (a `.npz`, an image folder or `digits`) replaces the split: its images, fitted to the
    run's resolution like a `local:` source. A run trained on a local source or `digits` is
    compared with `real`, or else with its own training images.
    """
    from gan_jax.data import text

    kind, _, name = config.data.source.partition(":")
    if text.is_text_source(config.data):
        raise EvaluationError(f"image metrics need an image dataset; this run trains on text "
                              f"({config.data.source!r}): its text metrics are in metrics.jsonl, and "
                              "quality_diversity.evaluate_workdir (`gan-jax evaluate --temperatures`) sweeps them.")
    if real is not None or _trains_on_local(config):
        return _load_local_real(config, real)
    if config.data.source == "stacked:mnist":
        from gan_jax.data import stacked

        data = ml_collections.ConfigDict({"data_dir": data_dir or config.data.data_dir,
                                          "manual_dir": manual_dir or config.data.manual_dir,
                                          "num_train": config.data.num_train})
        images, _ = stacked.load_stacked_mnist(data, split, config.seed)
        return "stacked_mnist", images.astype(np.float32) / 127.5 - 1.0, 1000
    if kind != "tfds":
        raise EvaluationError(f"image metrics need an image dataset; this run trains on {config.data.source!r} "
                              "(its mode metrics are in metrics.jsonl).")
    from gan_jax.data.tfds_images import load_tfds_arrays

    kwargs = {k: config.data[k] for k in ("resolution", "crop") if k in config.data}
    images, _, info = load_tfds_arrays(name, split, data_dir=data_dir or config.data.data_dir,
                                       manual_dir=manual_dir or config.data.manual_dir, **kwargs)
    return name, images.astype(np.float32) / 127.5 - 1.0, info.get("num_classes") or 0


def _load_local_real(config, real: str | None) -> tuple[str, np.ndarray, int]:
    """Images of a `.npz`, an image folder or `digits` (default: the run's own local source)."""
    import hashlib

    from gan_jax import data as data_lib

    if real is None:
        source = config.data.source
    elif real == "digits":
        source = real
    else:
        if not (real.endswith(".npz") or pathlib.Path(real).is_dir()):
            raise EvaluationError(f"--real {real!r} is neither a .npz file nor a folder of images "
                                  "(or 'digits'); give the real images to compare with.")
        source = f"local:{real}"
    arrays, spec = data_lib.local_images(config.data, source, source.partition(":")[2])
    images = arrays["x"]
    # The name keys the reference-feature cache: the file's content, not only its path.
    digest = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:10]
    label = "digits" if source == "digits" else pathlib.Path(source.partition(":")[2]).name
    num_classes = spec.num_classes or 0
    if source != config.data.source and _trains_on_local(config) and config.model.conditioning != "none":
        # A class-conditional generator takes the class count of the data it was trained on.
        num_classes = data_lib.local_images(config.data, config.data.source,
                                             config.data.source.partition(":")[2])[1].num_classes or 0
    return f"{label}-{digest}", images.astype(np.float32) / 127.5 - 1.0, num_classes


def evaluate_workdir(workdir: str | pathlib.Path, metrics: list[str], checkpoint: str = "latest",
                     num_samples: int = 10_000, split: str = "test", num_real: int | None = None,
                     data_dir: str | None = None, manual_dir: str | None = None,
                     inception_weights: str | None = None, classifier_dir: str | None = None,
                     use_ema: bool = True, log=print, real: str | None = None,
                     standing_statistics: int | None = None) -> list[dict[str, Any]]:
    """Evaluates the selected checkpoints of `workdir`; appends to and returns the eval.jsonl records.

    `real`: a `.npz`, an image folder or `digits` to compare with instead of the dataset's `split`.
    `standing_statistics`: forwards for a batch-norm generator's standing statistics (default
    eval.standing_statistics; 0: the trained running statistics).
    """
    workdir = pathlib.Path(workdir)
    config = rundir.read_config(workdir)
    dataset, real_images, num_classes = load_real_split(config, split, data_dir, manual_dir, real)
    if real is not None or _trains_on_local(config):
        split = "all"
    real = real_images
    num_real = min(num_real or num_samples, len(real))
    plan = blueprint.read_back(config, real.shape[1:], num_classes)
    g_model, like = plan.g_model, plan.init_state()
    checkpointer = rundir.open_checkpoints(workdir, config)
    steps = select_steps(checkpointer.all_steps(), checkpoint)

    extractor = classifier = None
    needs = suite.needed(metrics)
    if "inception" in needs:
        from gan_jax.metrics import inception

        extractor = inception.FeatureExtractor.from_file(inception_weights)
    if "classifier" in needs:
        from gan_jax.metrics.classifier import MNISTClassifier

        classifier = MNISTClassifier.load(classifier_dir)
    labels = (sampling.requested_labels(num_samples, num_classes) if sampling.is_conditional(config.model)
              else None)
    suite.check(metrics, suite.MetricInputs(np.zeros((0, *real.shape[1:]), np.float32), extractor=extractor,
                                            classifier=classifier, labels=labels))

    passes = config.eval.get("standing_statistics", 0) if standing_statistics is None else standing_statistics
    records = []
    for step in steps:
        state, _ = checkpointer.restore(step, like)
        start = time.perf_counter()
        state = sampling.for_sampling(g_model, state, config, num_classes, use_ema, passes)
        samples = sampling.generate(g_model, state, num_samples, config.model, use_ema, labels=labels,
                                    num_classes=num_classes)
        step_records = suite.compute(metrics, suite.MetricInputs(samples, real, num_real, dataset, split,
                                                                 config.data.source, extractor, classifier,
                                                                 labels=labels))
        generator = "ema" if (use_ema and state.g_ema is not None) else "raw"
        for record in step_records:
            record.update(step=step, generator=generator, seconds=round(time.perf_counter() - start, 1))
            if passes:
                record["protocol"]["standing_statistics"] = f"{passes} x {config.eval.get('standing_batch', 64)}"
        records += step_records
        with open(workdir / "eval.jsonl", "a") as f:
            for record in step_records:
                f.write(json.dumps(record, sort_keys=True) + "\n")
        log(f"step {step}: " + ", ".join(f"{r['metric']} {r['value']:.4g}" for r in step_records))
    checkpointer.close()
    return records


def format_table(records: list[dict[str, Any]]) -> str:
    """One row per (step, metric), with the protocol that makes the number comparable."""
    rows = [f"{'step':>8}  {'metric':<26} {'value':>10} {'± std':>9}  protocol"]
    for r in records:
        p = r["protocol"]
        parts = [f"N={p['num_samples']} {r['generator']} G"]
        if "num_real" in p:
            parts[0] += f" vs {p['num_real']} {p['dataset']} {p['split']}"
        parts.append(p["network"])
        if "resizer" in p:
            parts.append(f"resize {p['resizer'].split(' ')[0]}")
        std = f"{r['std']:.3g}" if "std" in r else ""
        rows.append(f"{r['step']:>8}  {r['metric']:<26} {r['value']:>10.4f} {std:>9}  {', '.join(parts)}")
    return "\n".join(rows)


def _is_text_run(workdir: str) -> bool:
    from gan_jax.data import text

    try:
        return text.is_text_source(rundir.read_config(pathlib.Path(workdir)).data)
    except rundir.RunDirError:
        return False  # the image path reports the missing config


def main(argv: list[str], prog: str = "gan-jax evaluate") -> int:
    """Command line: `gan-jax evaluate --workdir DIR --metrics fid,kid,is,pr [...]` (image runs),
    `gan-jax evaluate --workdir DIR --temperatures 0.5,0.7,1.0 [...]` (text runs), or
    `gan-jax evaluate report [LABEL=]DIR[,DIR...] ... --out PREFIX` (text sweeps on one plot)."""
    import argparse

    from gan_jax.tools import quality_diversity

    if argv and argv[0] == "report":
        return quality_diversity.report_main(argv[1:], prog=f"{prog} report")
    parser = argparse.ArgumentParser(
        prog=prog, description="Metrics of a trained run's checkpoints; appends to WORKDIR/eval.jsonl. Image runs: "
                               "--metrics; text runs: a sampling-temperature sweep (--temperatures). "
                               f"`{prog} report DIR...` plots text runs' sweeps together.")
    parser.add_argument("--workdir", required=True, help="run directory written by `gan-jax train`")
    parser.add_argument("--metrics", default="fid",
                        help=f"image runs, comma-separated, of: {', '.join(suite.names_for('image'))} (pr = "
                             "precision/recall, dc = density/coverage; --list_metrics describes each)")
    parser.add_argument("--list_metrics", action="store_true",
                        help="print every registered metric: its data kinds, what it needs, its protocol")
    parser.add_argument("--temperatures", default=None,
                        help="text runs: comma-separated sampling temperatures (default "
                             f"{','.join(map(str, quality_diversity.DEFAULT_TEMPERATURES))})")
    parser.add_argument("--checkpoint", default="latest", help="latest | all | STEP")
    parser.add_argument("--num_samples", type=int, default=None,
                        help="generated samples (default: 10000 for images, the run's eval.num_samples for text)")
    parser.add_argument("--num_real", type=int, default=None, help="real images of the split (default num_samples)")
    parser.add_argument("--split", default="test", help="real split to compare with (default test)")
    parser.add_argument("--real", default=None,
                        help="compare with these images instead of a split: a .npz (key x|images|image|arr_0), a "
                             "folder of PNG/JPEG files, or 'digits'; runs on a local source default to their "
                             "own training images")
    parser.add_argument("--data_dir", default=None, help="tfds data_dir (default: the run's data.data_dir)")
    parser.add_argument("--manual_dir", default=None, help="tfds manual_dir (default: the run's data.manual_dir)")
    parser.add_argument("--inception_weights", default=None, help="Inception weights file (see gan_jax/metrics/inception.py)")
    parser.add_argument("--classifier", default=None, help="trained MNIST classifier folder (gan-jax train-classifier)")
    parser.add_argument("--no_ema", action="store_true", help="evaluate the raw generator, not its EMA")
    parser.add_argument("--standing_statistics", type=int, default=None, metavar="N",
                        help="batch-norm generators: recompute the statistics over N train-mode forwards first "
                             "(BigGAN's standing statistics; default eval.standing_statistics, 0: off)")
    if "--list_metrics" in argv:
        print(suite.describe())
        return 0
    args = parser.parse_args(argv)

    if _is_text_run(args.workdir):
        try:
            records = quality_diversity.evaluate_workdir(args.workdir, args.checkpoint, args.temperatures,
                                                         args.num_samples, use_ema=not args.no_ema)
        except (quality_diversity.QualityDiversityError, EvaluationError, rundir.RunDirError, errors.DataError,
                FileNotFoundError) as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 2
        print(quality_diversity.format_records(records))
        print(f"Written to {pathlib.Path(args.workdir) / 'eval.jsonl'}")
        return 0
    from gan_jax.data import DataError
    from gan_jax.data.tfds_images import DatasetFormatError, DatasetUnavailableError
    from gan_jax.metrics.inception import InceptionWeightsError

    try:
        metrics = suite.parse_metrics(args.metrics, kind="image")
        if args.temperatures is not None:
            raise EvaluationError("--temperatures sweeps text runs; this is an image run (use --metrics).")
        num_samples = 10_000 if args.num_samples is None else args.num_samples
        if num_samples < 2:
            raise EvaluationError("--num_samples must be at least 2.")
        if args.standing_statistics is not None and args.standing_statistics < 0:
            raise EvaluationError("--standing_statistics must be >= 0 (forwards; 0: off).")
        records = evaluate_workdir(args.workdir, metrics, args.checkpoint, num_samples, args.split,
                                   args.num_real, args.data_dir, args.manual_dir, args.inception_weights,
                                   args.classifier, use_ema=not args.no_ema, real=args.real,
                                   standing_statistics=args.standing_statistics)
    except (EvaluationError, rundir.RunDirError, suite.MetricError, InceptionWeightsError, FileNotFoundError,
            DatasetUnavailableError, DatasetFormatError, DataError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    print(format_table(records))
    print(f"Written to {pathlib.Path(args.workdir) / 'eval.jsonl'}")
    return 0
