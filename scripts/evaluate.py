"""Metrics of a trained run's checkpoints (FID, KID, IS, precision/recall, classifier metrics).

    python scripts/evaluate.py --workdir runs/mnist_dcgan --metrics fid,kid,is,pr [--checkpoint latest|all|STEP]
        [--num_samples 10000]

Same as `gan-jax evaluate`; writes WORKDIR/eval.jsonl and prints a table.
"""

import sys

from gan_jax.tools.evaluate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="scripts/evaluate.py"))
