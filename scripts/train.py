"""Train (or resume) one run: python scripts/train.py --config experiments/X.py[:arg] --workdir DIR.

With no arguments it runs the default experiment (grid25) into runs/grid25.
"""

import sys

from gan_jax.tools.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1:]))
