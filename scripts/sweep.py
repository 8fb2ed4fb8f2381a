"""Run an experiment's sweep, or tabulate one; same as `gan-jax sweep`.

    python scripts/sweep.py --config experiments/grid25.py --workdir sweeps/grid25 [--mode local|slurm] [--processes N]
    python scripts/sweep.py --report sweeps/grid25 [--plot_metric modes --plot_x loss]
"""

import sys

from gan_jax.tools.sweep import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="scripts/sweep.py"))
