"""R3GAN's loss study on Stacked MNIST (its Table 2: RpGAN + R1 + R2, GAN + R1 + R2, RpGAN + R1, GAN + R1),
sized for a CPU; evaluate with `--metrics stacked_mnist` (modes out of 1000, KL to uniform).

Data: `stacked:mnist`, three MNIST digits as the RGB channels (data.num_train images drawn once with the
seed), 28x28, as stacked_mnist_dcgan. Networks: mnist_r3gan's (R3GAN's config E narrowed to 32, 32, 16, 8
channels, one block a stage, 16 channels per group; D pads the 28x28 images with black to 32x32, G's output
is cropped to 28x28), with 3 channels in and out. The default objective is R3GAN's, RpGAN with R1 and R2 at
gamma 0.05; Adam 2e-4, beta = (0, 0.99), batch 64, an EMA of G (decay 0.999). `get_sweep` runs the four
objectives of R3GAN's Table 2 ("GAN" is the non-saturating loss; without R2, reg.r2.weight = 0):

    python scripts/train_classifier.py --manual_dir /path/to/mnist --out runs/mnist_cnn
    gan-jax sweep --config stacked_mnist_r3gan:data.manual_dir=/path/to/mnist --workdir runs/stacked_r3gan \\
        --mode local --sweep_arg 3 --evaluate stacked_mnist --eval_num_samples 26000 --classifier runs/mnist_cnn

trains the 12 runs, measures each one's modes and KL on 26,000 samples, and writes the table
(mean ± standard error over seeds) to runs/stacked_r3gan/report.md.

`--mode vmap` trains the seeds of each objective as one vmapped program (the objectives differ in the
program: the loss, and R2 on or off); on a 2-core CPU it is the slower choice here (three seeds stacked
made 1.3-1.6 run-steps/s, one run alone 2.5 steps/s: XLA's CPU grouped convolutions under vmap).

Variants: `runlocal`, and `key=value` overrides of any config key.
"""

import pathlib

from gan_jax.config import load_module, lock, parse_arg, product, seeds, zip_

_mnist = load_module(pathlib.Path(__file__).with_name("mnist_r3gan.py"))

GAMMA = 0.05
# R3GAN's Table 2 rows: (loss, R1 weight, R2 weight).
OBJECTIVES = {
    "rpgan_r1_r2": ("rpgan", GAMMA, GAMMA),
    "gan_r1_r2": ("non_saturating", GAMMA, GAMMA),
    "rpgan_r1": ("rpgan", GAMMA, 0.0),
    "gan_r1": ("non_saturating", GAMMA, 0.0),
}


def get_config(arg=None):
    """mnist_r3gan's networks and optimizer (3 channels in and out) on Stacked MNIST."""
    c = _mnist.get_config()
    c.unlock()
    c.data.source = "stacked:mnist"
    c.data.num_train = 100_000
    c.num_steps = 20_000
    c.loss = "rpgan"
    c.reg.r1.weight = c.reg.r2.weight = GAMMA
    parse_arg(c, arg)
    return lock(c)


def get_sweep(arg=None):
    """The four objectives x seeds; `arg` is the number of seeds (default 3)."""
    losses, r1, r2 = zip(*OBJECTIVES.values())
    return product(seeds(int(arg) if arg else 3), zip_(**{"loss": list(losses), "reg.r1.weight": list(r1),
                                                          "reg.r2.weight": list(r2)}))
