"""R3GAN's loss study on Stacked MNIST (its Table 2: RpGAN + R1 + R2, GAN + R1 + R2, RpGAN + R1, GAN + R1),
sized for a CPU; evaluate with `--metrics stacked_mnist` (modes out of 1000, KL to uniform).

Data: `stacked:mnist`, three MNIST digits as the RGB channels (data.num_train images drawn once with the
seed), 28x28, as stacked_mnist_dcgan. Networks, objective, optimizer, batch and length: mnist_r3gan's
(R3GAN's config E at two blocks a stage, narrowed to 64, 32, 16 channels on a 7x7 base; RpGAN with R1 and R2 at
gamma 25 on every 4th D step; 8,800 steps of batch 16, Adam's learning rates constant at 2e-4 for G and
4e-4 for D and its beta2 0.9 -> 0.99; an EMA whose half-life grows to 1,000 images), with 3 channels in and
out; `decay`, `batch64`, `base4` and `narrow` are mnist_r3gan's variants. `get_sweep` runs the four objectives
of R3GAN's Table 2 ("GAN" is the non-saturating loss; without R2, reg.r2.weight = 0):

    gan-jax train-classifier --manual_dir /path/to/mnist --out runs/mnist_cnn
    gan-jax sweep --config stacked_mnist_r3gan:data.manual_dir=/path/to/mnist --workdir runs/stacked_r3gan \\
        --mode local --sweep_arg 3 --evaluate stacked_mnist --eval_num_samples 26000 --classifier runs/mnist_cnn

trains the 12 runs, measures each one's modes and KL on 26,000 samples, and writes the table
(mean ± standard error over seeds) to runs/stacked_r3gan/report.md.

`--mode vmap` trains the seeds of each objective as one vmapped program (the objectives differ in the
program: the loss, and R2 on or off); on a 2-core CPU it is the slower choice here (three seeds stacked
of the earlier one-block networks made 1.3-1.6 run-steps/s, one run alone 2.5 steps/s; three runs of
mnist_r3gan's two-block networks 0.35 run-steps/s, one alone 1.4: XLA's CPU convolutions whose kernels
are vmapped become grouped convolutions).

`dcgan_nets` runs the same four objectives on stacked_mnist_dcgan's networks and optimizer instead (the
DCGAN G with batch norm and D without, Adam 2e-4 with beta1 0.5, fresh noise for G, no EMA): R1 and R2 at
gamma 10, lazily on every 16th D step (weight 10 / 2 * |grad|^2 scaled by 16, the strength of that recipe's
R1), 3,000 steps. Here R3GAN's objectives fit the networks, where gamma 0.05 on the earlier one-block
32, 32, 16, 8 networks collapsed; the same sweep with `--config stacked_mnist_r3gan:data.manual_dir=...,dcgan_nets`
gives this table.

Variants: `dcgan_nets`, `decay`, `batch64`, `base4` and `narrow` (mnist_r3gan's), `runlocal`, and `key=value`
overrides of any config key.
"""

import pathlib

from gan_jax.config import arg_flags, load_module, lock, parse_arg, product, seeds

_mnist = load_module(pathlib.Path(__file__).with_name("mnist_r3gan.py"))
_stacked_dcgan = load_module(pathlib.Path(__file__).with_name("stacked_mnist_dcgan.py"))

# R3GAN's Table 2 rows: (loss, with R2); R1 is on in all four.
OBJECTIVES = {
    "rpgan_r1_r2": ("rpgan", True),
    "gan_r1_r2": ("non_saturating", True),
    "rpgan_r1": ("rpgan", False),
    "gan_r1": ("non_saturating", False),
}


def get_config(arg=None):
    """mnist_r3gan's networks and optimizer (3 channels in and out) on Stacked MNIST, or with `dcgan_nets`
    stacked_mnist_dcgan's; RpGAN with R1 and R2."""
    if "dcgan_nets" in arg_flags(arg):
        c = _stacked_dcgan.get_config()
        c.unlock()
        c.reg.r2.weight, c.reg.r2.every = c.reg.r1.weight, c.reg.r1.every  # R2 as that recipe's lazy R1
        c.num_steps = 3_000
        c.log_every_steps = 500
        c.eval_every_steps = c.ckpt_every_steps = 1_000
        c.keep_checkpoints = 3
    else:
        c = _mnist.get_config(",".join(sorted(arg_flags(arg) & set(_mnist.VARIANTS))) or None)
        c.unlock()
        c.data.source = "stacked:mnist"
        c.data.num_train = 100_000
    c.loss = "rpgan"
    parse_arg(c, arg, flags=("dcgan_nets", *_mnist.VARIANTS))
    return lock(c)


def get_sweep(arg=None):
    """Seeds x the four objectives, seed by seed; `arg` is the number of seeds (default 3). The rows
    without R2 set reg.r2.weight = 0; the others keep the config's R1 and R2 weights."""
    rows = [{"loss": loss} | ({} if with_r2 else {"reg.r2.weight": 0.0}) for loss, with_r2 in OBJECTIVES.values()]
    return product(seeds(int(arg) if arg else 3), rows)
