"""Write samples of a trained run (images, 2-D points or text); same as `gan-jax sample`.

    python scripts/sample.py --workdir runs/mnist_dcgan --num 1000 [--checkpoint latest|STEP] [--format png|npz]
"""

import sys

from gan_jax.tools.sample import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="scripts/sample.py"))
