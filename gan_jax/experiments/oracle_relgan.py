"""Oracle benchmark (BENCHMARKS.md section 4), Gumbel-softmax GAN (RelGAN's recipe with an LSTM generator).

Data: 10,000 samples of the oracle LSTM (vocabulary 5000, length 20) to train on, 10,000
held-out. G: LSTM (embedding 32, hidden 32), MLE-pretrained, then trained through D with
Gumbel-softmax outputs, beta annealed exponentially to 100. D: RelGAN's CNN with several
embedded representations; relativistic loss; Adam 1e-4. Metrics: NLL_oracle (quality),
NLL_gen (coverage), the oracle floor.

Variants: `runlocal` (a seconds-long smoke run: small data, few steps), and comma-separated
`key=value` overrides of any config key. A `num_steps=N` given here also anneals beta over N
steps unless `model.text.beta_anneal_steps` is given too (a `--config.num_steps` flag does not).
"""

from gan_jax.config import default_config, lock, parse_arg


def base_config():
    c = default_config()
    c.data.source = "synthetic:oracle"
    c.data.num_train = 10_000
    c.data.num_test = 10_000
    c.data.max_len = 20
    c.model.generator = "lstm"
    c.model.discriminator = "relgan_cnn"
    c.model.latent_dim = 2  # the latent only seeds the Gumbel noise
    c.model.text.emb_dim = 32
    c.model.text.hidden_dim = 32
    c.model.text.beta_max = 100.0
    c.model.text.beta_anneal = "exp"
    c.model.text.d_num_rep = 64
    c.model.text.d_emb_dim = 64
    c.model.text.d_num_filters = 100
    c.batch_size = 64
    c.num_steps = 5_000
    c.model.text.beta_anneal_steps = c.num_steps
    c.steps_per_dispatch = 10
    c.log_every_steps = 100
    c.eval_every_steps = 500
    c.ckpt_every_steps = 1_000
    c.loss = "relativistic"
    c.optim.g_lr = 1e-4
    c.optim.d_lr = 1e-4
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.text.pretrain_steps = 3_000
    c.text.pretrain_lr = 1e-2
    c.eval.num_samples = 2_000
    c.eval.use_ema = False
    return c


def finish(c, arg):
    """Applies `arg`; `runlocal` also shrinks the data, the pretraining and the discriminator."""
    items = [a.strip() for a in (arg or "").split(",")]
    runlocal = "runlocal" in items
    parse_arg(c, arg)
    if not any(a.startswith("model.text.beta_anneal_steps=") for a in items):
        c.model.text.beta_anneal_steps = c.num_steps  # beta reaches beta_max at the last step
    if runlocal:
        c.data.num_train = min(c.data.num_train, 640)
        c.data.num_test = min(c.data.num_test, 200)
        c.text.pretrain_steps = min(c.text.pretrain_steps, 20)
        c.model.text.d_num_rep = min(c.model.text.d_num_rep, 4)
        c.model.text.d_emb_dim = min(c.model.text.d_emb_dim, 16)
        c.model.text.d_num_filters = min(c.model.text.d_num_filters, 16)
        c.eval.num_samples = min(c.eval.num_samples, 200)
    return lock(c)


def get_config(arg=None):
    return finish(base_config(), arg)
