"""`gan-jax train-classifier`: trains the MNIST CNN that the classifier metrics (fid_mnist, labels,
stacked_mnist) and `gan-jax sample --by_class` use, and saves it.

    gan-jax train-classifier --manual_dir /path/to/mnist [--out DIR] [--steps 2000]

Saved with Orbax to DIR (default: the cache directory that `gan-jax evaluate` reads).
"""

from __future__ import annotations

import argparse
import time

from gan_jax.data.tfds_images import load_tfds_arrays
from gan_jax.metrics import classifier


def main(argv: list[str] | None = None, prog: str = "gan-jax train-classifier") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--manual_dir", default=None, help="folder with the four MNIST IDX .gz files (offline)")
    parser.add_argument("--data_dir", default=None, help="tfds data_dir")
    parser.add_argument("--out", default=None, help=f"output folder (default {classifier.cache_dir()}/mnist_cnn)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    train_x, train_y, _ = load_tfds_arrays("mnist", "train", data_dir=args.data_dir, manual_dir=args.manual_dir)
    test_x, test_y, _ = load_tfds_arrays("mnist", "test", data_dir=args.data_dir, manual_dir=args.manual_dir)
    start = time.perf_counter()
    params = classifier.train_classifier(train_x, train_y, num_steps=args.steps, seed=args.seed)
    seconds = time.perf_counter() - start
    model = classifier.MNISTClassifier(params)
    accuracy = model.accuracy(test_x, test_y)
    model.meta = {"name": classifier.DEFAULT_NAME, "dataset": "mnist", "train_steps": args.steps, "batch_size": 128,
                  "seed": args.seed, "test_accuracy": accuracy}
    out = model.save(args.out or classifier.cache_dir() / classifier.DEFAULT_NAME)
    print(f"trained {args.steps} steps in {seconds:.1f} s; MNIST test accuracy {accuracy:.4f} (10,000 images); "
          f"saved to {out}")
    return 0
