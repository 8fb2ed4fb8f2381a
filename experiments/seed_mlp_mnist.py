"""The seed article's system: its MLP GAN on MNIST from tfds, non-saturating loss, Adam 2e-4.

G: z 100 -> 128 -> 128 -> 784 (leaky ReLU 0.2, tanh); D: 784 -> 128 -> 128 -> 1.
Offline, point tfds at the original files: --config.data.manual_dir=/path/to/mnist
(the four IDX .gz files). Variants: `runlocal`, and `key=value` overrides.
"""

from gan_jax.config import default_config, lock, parse_arg, product, seeds


def get_config(arg=None):
    c = default_config()
    c.data.source = "tfds:mnist"
    c.data.split = "train"
    c.model.generator = "mlp"
    c.model.discriminator = "mlp"
    c.model.latent_dim = 100
    c.model.g_width = 128
    c.model.g_depth = 2
    c.model.d_width = 128
    c.model.d_depth = 2
    c.batch_size = 64
    c.num_steps = 20_000
    c.steps_per_dispatch = 50
    c.log_every_steps = 500
    c.eval_every_steps = 2_000
    c.ckpt_every_steps = 2_000
    c.loss = "non_saturating"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.eval.num_samples = 64
    parse_arg(c, arg)
    return lock(c)


def get_sweep(arg=None):
    """Learning rate (both networks) x seeds; `arg` is the number of seeds (default 3)."""
    lrs = [5e-5, 1e-4, 2e-4, 4e-4]
    return product([{"optim.g_lr": lr, "optim.d_lr": lr} for lr in lrs], seeds(int(arg) if arg else 3))
