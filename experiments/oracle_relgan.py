"""Oracle benchmark (docs/results/text.md), RelGAN's protocol (Nie et al. 2019, its oracle script).

Data: 10,000 samples of the oracle LSTM (vocabulary 5000, length `data.max_len`: 20, or 40
with `data.max_len=40`) to train on, 10,000 held-out. G: the relational memory generator
(embedding 32, 1 memory slot, 2 heads of 256), pretrained by MLE for 150 epochs (156 batches
of 64 an epoch: 23,400 steps, Adam 1e-2, clipping 5), then 3000 adversarial steps through D
with Gumbel-softmax outputs, the inverse temperature annealed as 100 ** (step / 5000) (RelGAN
fixes the horizon at 5000 steps, so it ends at 100 ** 0.6). D: RelGAN's CNN, 64 embedded
representations of one feature each (64 in all), 300 filters per window 2..5; 5 D updates per
G update; RSGAN loss; Adam 1e-4 (0.9, 0.999) and clipping 5 on both. Metrics: NLL_oracle
(quality), NLL_gen (coverage), the oracle floor; `gan-jax evaluate` adds the temperature sweep.

`base_config()` is the shared oracle base of the LSTM recipes (`oracle_seqgan.py`,
`shakespeare_char.py`: LSTM generator, 3000 pretraining steps); `relgan_config()` is it with
RelGAN's protocol. Variants: `runlocal` (a seconds-long smoke run: small data, networks and
pretraining) and comma-separated `key=value` overrides of any config key.
"""

from gan_jax.config import default_config, lock, parse_arg

RELGAN_PRETRAIN_EPOCHS = 150
RELGAN_BATCH = 64
RELGAN_TRAIN_SENTENCES = 10_000
RELGAN_ANNEAL_HORIZON = 5_000  # RelGAN's get_fixed_temperature: N = 5000 whatever the number of steps


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


def relgan_protocol(c):
    """RelGAN's generator, discriminator and schedule (its oracle and COCO scripts) on a base config."""
    c.model.generator = "relational"
    c.model.relational.mem_slots = 1
    c.model.relational.num_heads = 2
    c.model.relational.head_size = 256
    c.model.text.emb_dim = 32  # gen_emb_dim
    c.model.text.beta_max = 100.0  # the best of the paper's maxima (RelGAN(100))
    c.model.text.beta_anneal = "exp"
    c.model.text.beta_anneal_steps = RELGAN_ANNEAL_HORIZON
    c.model.text.d_num_rep = 64
    c.model.text.d_emb_dim = 1  # dis_emb_dim 64 is the total over the 64 representations
    c.model.text.d_num_filters = 300
    c.batch_size = RELGAN_BATCH
    c.num_steps = 3_000  # nadv_steps
    c.n_critic = 5  # dsteps per gsteps = 1
    c.loss = "relativistic_standard"  # RSGAN
    c.optim.name = "adam"
    c.optim.g_lr = 1e-4  # gadv_lr
    c.optim.d_lr = 1e-4
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.grad_clip = 5.0  # RelGAN clips G's and D's adversarial gradients too
    c.text.pretrain_steps = RELGAN_PRETRAIN_EPOCHS * (RELGAN_TRAIN_SENTENCES // RELGAN_BATCH)  # 23,400
    c.text.pretrain_lr = 1e-2  # gpre_lr
    c.steps_per_dispatch = 5
    c.log_every_steps = 20
    c.eval_every_steps = 100
    c.ckpt_every_steps = 500
    c.keep_checkpoints = 7  # every 500 steps of 3000: `gan-jax evaluate --checkpoint all` sweeps them all
    return c


def relgan_config():
    return relgan_protocol(base_config())


def finish(c, arg, anneal_over_run: bool = True):
    """Applies `arg`; `runlocal` also shrinks the data, the pretraining and the networks.

    With `anneal_over_run`, beta reaches beta_max at the last step (a `num_steps=N` given in
    `arg` moves it) unless `model.text.beta_anneal_steps` is given too; without it the recipe's
    horizon stays.
    """
    items = [a.strip() for a in (arg or "").split(",")]
    runlocal = "runlocal" in items
    parse_arg(c, arg)
    if anneal_over_run and not any(a.startswith("model.text.beta_anneal_steps=") for a in items):
        c.model.text.beta_anneal_steps = c.num_steps  # beta reaches beta_max at the last step
    if runlocal:
        c.data.num_train = min(c.data.num_train, 640)
        c.data.num_test = min(c.data.num_test, 200)
        c.text.pretrain_steps = min(c.text.pretrain_steps, 20)
        c.model.text.d_num_rep = min(c.model.text.d_num_rep, 4)
        c.model.text.d_emb_dim = min(c.model.text.d_emb_dim, 16)
        c.model.text.d_num_filters = min(c.model.text.d_num_filters, 16)
        c.model.relational.head_size = min(c.model.relational.head_size, 16)
        c.eval.num_samples = min(c.eval.num_samples, 200)
    return lock(c)


def get_config(arg=None):
    return finish(relgan_config(), arg, anneal_over_run=False)
