"""Benchmark the train step: python scripts/benchmark.py --arch all --compare-torch (see --help)."""

import sys

from gan_jax.tools.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
