"""Class-conditional sampling: `gan-jax sample --by_class` asks a conditional generator for each class, the
`class_share` metric scores the share of samples in the requested class, and `--truncation` draws BigGAN's
truncated latents."""

import numpy as np
import pytest
import reliability_helpers as rh
import scipy.stats

from gan_jax import config as config_lib
from gan_jax.core import sampling
from gan_jax.metrics import base as metrics_base
from gan_jax.metrics import classifier as classifier_lib


def test_truncated_latents_follow_the_truncated_normal():
    import jax

    model = config_lib.default_config().model
    model.latent_dim = 50
    z = np.asarray(sampling.truncated_latent(jax.random.key(0), 4000, model, 0.5))
    assert z.shape == (4000, 50) and np.abs(z).max() <= 0.5
    # 200,000 draws: the variance of N(0, 1) truncated to [-0.5, 0.5] (scipy), to 1 %.
    np.testing.assert_allclose(z.var(), scipy.stats.truncnorm(-0.5, 0.5).var(), rtol=0.01)
    assert scipy.stats.kstest(z[:, 0], scipy.stats.truncnorm(-0.5, 0.5).cdf).pvalue > 1e-3
    model.latent_dist = "uniform"
    with pytest.raises(ValueError, match="prior is 'uniform'"):
        sampling.truncated_latent(jax.random.key(0), 2, model, 1.0)


class _ByMean:
    """A stand-in classifier: the class of an image is its mean pixel's decile (a rule a test can compute)."""

    name = "by_mean"

    def predict(self, images):
        return np.clip(((images.mean(axis=(1, 2, 3)) + 1.0) * 5.0).astype(np.int64), 0, 9)


def test_class_share_by_hand():
    # Six samples whose mean pixels give the classes 0, 1, 1, 9, 5, 5; requested 0, 1, 2, 9, 5, 6.
    means = np.array([-0.95, -0.75, -0.65, 0.95, 0.05, 0.15])
    samples = np.broadcast_to(means[:, None, None, None], (6, 28, 28, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 9, 5, 6])
    inputs = metrics_base.MetricInputs(samples, classifier=_ByMean(), labels=labels)
    records = {r["metric"]: r["value"] for r in metrics_base.compute(["class_share"], inputs)}
    assert records["class_share"] == pytest.approx(4 / 6)  # 0, 1, 9 and 5 hit; 2 and 6 miss
    assert records["class_share/worst_class"] == 0.0  # classes 2 and 6 have no hit
    with pytest.raises(metrics_base.MetricError, match="unconditional"):
        metrics_base.check(["class_share"], metrics_base.MetricInputs(samples[:0], classifier=_ByMean()))


def test_requested_labels_cycle_over_the_classes():
    np.testing.assert_array_equal(sampling.requested_labels(7, 3), [0, 1, 2, 0, 1, 2, 0])
    from gan_jax.tools.sample import requested_rows

    np.testing.assert_array_equal(requested_rows(np.array([0, 1, 2, 0, 1, 2, 0]), 3, 2), [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(requested_rows(np.array([0, 1, 0]), 3, 2), [[0, 2], [1, -1], [-1, -1]])


@pytest.mark.slow
def test_a_conditional_run_is_sampled_and_scored_by_requested_class(tmp_path, monkeypatch, capsys):
    import jax
    from PIL import Image

    from gan_jax.loop.trainer import train_and_evaluate
    from gan_jax.tools import cli
    from gan_jax.tools import evaluate as evaluate_checkpoints
    from gan_jax.tools.sample import load_run

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "digits.npz", x=rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8),
             label=np.arange(40) % 10)
    c = config_lib.load_config(str(rh.ROOT / "experiments" / "mnist_biggan.py") + ":runlocal")
    c = config_lib.apply_overrides(c, {"data.source": f"local:{tmp_path / 'digits.npz'}", "num_steps": "2",
                                       "batch_size": "8", "writers": "jsonl", "actions.gif.enabled": "False"})
    workdir = tmp_path / "run"
    train_and_evaluate(c, workdir, progress=False)
    monkeypatch.setattr(classifier_lib.MNISTClassifier, "load", classmethod(lambda cls, d=None: _ByMean()))

    # The samples as the generator makes them for explicitly chosen labels, drawn outside the tools.
    config, plan, state, step = load_run(workdir)
    z = sampling.sample_latent(jax.random.key(3), 30, config.model)
    labels = np.arange(30) % 10
    variables = {"params": state.g_ema, **state.g.model_state}
    expected = np.asarray(plan.g_model.apply(variables, z, jax.numpy.asarray(labels), train=False))
    share = np.mean(_ByMean().predict(expected) == labels)

    code = cli.main(["sample", "--workdir", str(workdir), "--num", "30", "--by_class", "--per_class", "3",
                     "--seed", "3", "--out", str(tmp_path / "rows")])
    out = capsys.readouterr().out
    assert code == 0 and f"assigns the requested class to {share:.1%}" in out
    picture = np.asarray(Image.open(tmp_path / "rows.png")).astype(np.float64)
    # Row c, column j holds sample 10 j + c (the j-th drawn for class c); tiles of 28 px with 2 px gaps
    # after a 14 px label margin.
    for c_, j in ((0, 0), (7, 2)):
        tile = picture[2 + 30 * c_: 30 + 30 * c_, 16 + 30 * j: 44 + 30 * j]
        tile = tile[..., 0] if tile.ndim == 3 else tile
        np.testing.assert_allclose(tile, np.clip(np.rint((expected[10 * j + c_, ..., 0] + 1) * 127.5), 0, 255),
                                   atol=1)

    records = evaluate_checkpoints.evaluate_workdir(workdir, ["class_share"], num_samples=30, log=lambda s: None)
    fixed = sampling.generate(plan.g_model, state, 30, config.model, labels=labels)  # the eval noise, by label
    got = {r["metric"]: r["value"] for r in records}
    assert got["class_share"] == pytest.approx(np.mean(_ByMean().predict(fixed) == labels))
    standing = evaluate_checkpoints.evaluate_workdir(workdir, ["class_share"], num_samples=30, log=lambda s: None,
                                                     standing_statistics=2)
    assert standing[0]["protocol"]["standing_statistics"] == "2 x 64"
    assert cli.main(["sample", "--workdir", str(workdir), "--num", "4", "--standing_statistics", "1"]) == 0
    code = cli.main(["sample", "--workdir", str(workdir), "--num", "4", "--truncation", "0.5", "--format", "npz"])
    assert code == 0 and (workdir / "samples" / f"sample_{step:08d}_trunc0p5.npz").exists()
    with pytest.raises(SystemExit) as stop:
        cli.main(["sample", "--workdir", str(workdir), "--truncation", "0"])
    assert stop.value.code == 2 and "--truncation must be > 0" in capsys.readouterr().err


class _TwoNorms(__import__("flax").linen.Module):
    """z -> BN(momentum 0.9)(z W) -> BN(momentum 0.5)(relu(.) + 1): two batch norms of different momenta."""

    @__import__("flax").linen.compact
    def __call__(self, z, train=True):
        import flax.linen as nn

        h = nn.Dense(3, kernel_init=nn.initializers.constant(0.5))(z)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="first")(h)
        return nn.BatchNorm(use_running_average=not train, momentum=0.5, name="second")(nn.relu(h) + 1.0)


def test_standing_statistics_average_the_batch_statistics_whatever_the_momentum():
    import jax
    import jax.numpy as jnp

    from gan_jax.core.state import GANState, TrainState

    model, cfg = _TwoNorms(), config_lib.default_config().model
    cfg.latent_dim = 4
    variables = model.init(jax.random.key(0), jnp.zeros((2, 4)), train=False)
    state = GANState(step=0, rng=jax.random.key(1), g=TrainState(variables["params"], None,
                                                                    {"batch_stats": variables["batch_stats"]}),
                     d=None, g_ema=None, hparams={}, terms={})
    key = jax.random.key(5)
    out = sampling.standing_statistics(model, state, cfg, 0, passes=3, batch=16, key=key)
    # numpy: the same latents through the same layers, each batch normalised by its own statistics.
    means1, vars1, means2, vars2 = [], [], [], []
    for i in range(3):
        z = np.asarray(sampling.sample_latent(jax.random.split(jax.random.fold_in(key, i))[0], 16, cfg), np.float64)
        h = z @ np.full((4, 3), 0.5)
        means1.append(h.mean(0)), vars1.append(h.var(0))
        h2 = np.maximum((h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5), 0) + 1.0
        means2.append(h2.mean(0)), vars2.append(h2.var(0))
    got = out.g.model_state["batch_stats"]
    np.testing.assert_allclose(got["first"]["mean"], np.mean(means1, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["first"]["var"], np.mean(vars1, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["second"]["mean"], np.mean(means2, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["second"]["var"], np.mean(vars2, 0), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no batch norm"):
        sampling.standing_statistics(model, state.replace(g=state.g.replace(model_state={})), cfg, 0, 1, 2)


def test_standing_statistics_keys_are_checked():
    c = config_lib.load_config("mnist_biggan")
    c.unlock()
    c.eval.standing_statistics = -1
    with pytest.raises(config_lib.ConfigError, match="eval.standing_statistics"):
        config_lib.validate(c, 1)
    c.eval.standing_statistics, c.eval.standing_batch = 2, 0
    with pytest.raises(config_lib.ConfigError, match="eval.standing_batch"):
        config_lib.validate(c, 1)
