"""grid25: 25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (PacGAN Table 1), scored as in PacGAN.

The default recipe beats PacGAN4 on mode coverage, high-quality samples and reverse KL in under
three minutes of CPU instead of PacGAN's ~400,000 steps (docs/results/mixtures.md). It keeps
PacGAN's packing (4), its generator shape (Dense-BN-ReLU x 4) and maxout discriminator (3 maxout
layers), at widths 128 (G) and 96 (D) with 3 pieces per maxout unit (PacGAN: 400 / 200 wide, 5
pieces), and changes five things:

- the discriminator also sees 32 random Fourier features of each sample (scale 1 cycle/unit):
  a plain MLP resolves the std-0.05 clusters only after tens of thousands of steps (its spectral
  bias), so the generator gets no signal to concentrate its samples;
- the generator draws z uniformly from the square [-1, 1]^2 (the DCGAN paper's prior) and also
  sees 64 random Fourier features of it (scale 1 cycle per unit of z): to put 25 separate
  clusters on a continuous image of the square it must change steeply where its latent cells
  meet, which a ReLU MLP on raw z learns slowly; without the features a quarter of the samples
  stay on thin bridges between neighbouring modes, and a Gaussian z adds its tails (in one
  measured run, 29 % of the samples from |z| > 2 missed the modes, against 13 % of the rest);
- a Wasserstein critic with gradient penalty (weight 1, 2 critic steps per G step), whose
  gradients reach modes the generator has not found yet (with the Fourier features alone the
  non-saturating loss collapses to 7-10 modes);
- Adam (lr 1e-3, beta1 0.5) with a cosine decay to zero: the decay lets the samples settle onto
  the modes;
- many small steps: 25,000 of batch 200. What keeps samples off the modes is the border between
  two modes' cells in z (scripts/latent_map.py: 98 % of the misses lie within 0.01 of one), where
  G must cross from one mode to the next; the borders sharpen with every G update, so at a fixed
  budget more updates of half the batch miss less (10,000 steps of batch 400: 90.2 % high
  quality over seeds 0-4; 18,000 of 400: 93.8 %; 30,000 of 200: 95.4 %).

PacGAN's own networks and optimizer: `experiments/grid25.py:pacgan`. Other variants:
`experiments/grid25.py:loss=hinge,reg.gp.weight=0` (comma-separated key=value overrides of any
config key), and `runlocal` for a seconds-long smoke run.
"""

from gan_jax.config import arg_flags, default_config, lock, parse_arg, product, seeds, zip_

# PacGAN-Table-1-style study: four losses; the Wasserstein critic keeps its gradient penalty.
LOSSES = zip_(
    loss=["non_saturating", "hinge", "wasserstein", "least_squares"],
    **{"reg.gp.weight": [0.0, 0.0, 1.0, 0.0]},
)


def get_config(arg=None):
    c = default_config()
    c.data.source = "synthetic:grid25"
    c.model.generator = "pacgan_mlp"
    c.model.discriminator = "pacgan_maxout"
    c.model.latent_dim = 2
    c.pack = 4
    if "pacgan" in arg_flags(arg):
        # PacGAN's setup: G 4 x 400, D 3 x 200 maxout-5, non-saturating loss, Adam 1e-4 (beta1 0.8), batch 100.
        c.model.g_width, c.model.d_width = 400, 200
        c.model.maxout_pieces = 5
        c.batch_size = 100
        c.num_steps = 15_000
        c.loss = "non_saturating"
        c.n_critic = 1
        c.optim.g_lr = c.optim.d_lr = 1e-4
        c.optim.b1 = 0.8
    else:
        c.model.g_width, c.model.d_width = 128, 96
        c.model.maxout_pieces = 3
        c.model.d_fourier_features = 32
        c.model.d_fourier_scale = 1.0
        c.model.latent_dist = "uniform"
        c.model.g_fourier_features = 64
        c.model.g_fourier_scale = 1.0
        c.batch_size = 200
        c.num_steps = 25_000
        c.loss = "wasserstein"
        c.reg.gp.weight = 1.0
        c.n_critic = 2
        c.optim.g_lr = c.optim.d_lr = 1e-3
        c.optim.b1 = 0.5
        c.optim.schedule = "cosine"
    c.steps_per_dispatch = 50
    c.log_every_steps = 500
    c.eval_every_steps = 5_000
    c.ckpt_every_steps = 5_000
    parse_arg(c, arg, flags=("pacgan",))
    return lock(c)


def get_sweep(arg=None):
    """`N` (default 10): the four losses x N seeds (PacGAN Table 1's study); `seeds=N`: N seeds of the
    recipe alone (one vmap group: `gan-jax sweep --mode vmap`, scripts/benchmark_sweep.py)."""
    arg = arg or "10"
    if arg.startswith("seeds="):
        return seeds(int(arg.split("=", 1)[1]))
    return product(LOSSES, seeds(int(arg)))
