"""BigGAN's orthogonal regularization and LeCam regularization: values and gradients against numpy and
hand computations, their config checks, and an exact resume with LeCam's averages in the state."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.errors import ConfigError
from gan_jax.objectives.terms import lecam, orthogonal


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "conv": {"kernel": rng.normal(size=(3, 3, 4, 5)).astype(np.float32),
                 "bias": rng.normal(size=(5,)).astype(np.float32)},
        "dense": {"kernel": rng.normal(size=(6, 7)).astype(np.float32)},
        "shared": {"embedding": rng.normal(size=(10, 4)).astype(np.float32)},
        "bn": {"scale": rng.normal(size=(5,)).astype(np.float32)},
    }


def _np_ortho(kernel):
    """(value, gradient) of 1/2 ||(W W^T)(1 - I)||_F^2, W [out, fan_in] with rows the output units, and the
    gradient as BigGAN's code writes its update: 2 ((W W^T)(1 - I)) W."""
    out = kernel.shape[-1]
    w = kernel.astype(np.float64).reshape(-1, out).T
    m = (w @ w.T) * (1 - np.eye(out))
    value = 0.5 * np.sum(m**2)
    # an independent check of the value: the off-diagonal dot products, pair by pair
    pairs = sum(float(w[i] @ w[j]) ** 2 for i in range(out) for j in range(out) if i != j)
    assert np.isclose(value, 0.5 * pairs)
    grad = (2 * m @ w).T.reshape(kernel.shape)
    return value, grad


def test_orthogonal_value_and_gradient_against_numpy():
    params = _params()
    value, grads = jax.value_and_grad(lambda p: orthogonal.orthogonal(types.SimpleNamespace(params=p)))(
        jax.tree.map(jnp.asarray, params))
    conv_value, conv_grad = _np_ortho(params["conv"]["kernel"])
    dense_value, dense_grad = _np_ortho(params["dense"]["kernel"])
    np.testing.assert_allclose(float(value), conv_value + dense_value, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grads["conv"]["kernel"]), conv_grad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(grads["dense"]["kernel"]), dense_grad, rtol=1e-4, atol=1e-4)
    for untouched in (grads["conv"]["bias"], grads["shared"]["embedding"], grads["bn"]["scale"]):
        assert not np.any(np.asarray(untouched))


def test_orthogonal_is_zero_for_orthogonal_rows_of_any_norm():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    kernel = (q[:, :5] * np.array([1.0, 2.0, 0.5, 3.0, 1.5])).astype(np.float32)  # columns: the rows of W
    assert abs(float(orthogonal.off_diagonal_penalty(jnp.asarray(kernel)))) < 1e-5


def _lecam_ctx(real, fake, state, update, start=2, decay=0.9):
    return types.SimpleNamespace(
        real_logits=jnp.asarray(real), fake_logits=jnp.asarray(fake), mean=jnp.mean, update=jnp.asarray(update),
        settings=types.SimpleNamespace(start=start), hparams={"decay": jnp.float32(decay)},
        state={k: jnp.float32(v) for k, v in state.items()})


def test_lecam_value_and_averages_by_hand():
    real, fake = np.array([1.0, -0.5, 2.0, 0.3]), np.array([-1.0, 0.2, -2.5, 0.1])
    state = {"real": 0.4, "fake": -0.6}
    out = lecam.lecam(_lecam_ctx(real, fake, state, update=5))
    ema_real = 0.9 * 0.4 + 0.1 * real.mean()
    ema_fake = 0.9 * -0.6 + 0.1 * fake.mean()
    expected = np.mean(np.maximum(real - ema_fake, 0) ** 2) + np.mean(np.maximum(ema_real - fake, 0) ** 2)
    np.testing.assert_allclose(float(out.value), expected, rtol=1e-6)
    np.testing.assert_allclose(float(out.state["real"]), ema_real, rtol=1e-6)
    np.testing.assert_allclose(float(out.state["fake"]), ema_fake, rtol=1e-6)
    # the gradient flows through D's outputs only, not through the averages
    grad = jax.grad(lambda r: lecam.lecam(_lecam_ctx(r, fake, state, update=5)).value)(jnp.asarray(real))
    np.testing.assert_allclose(np.asarray(grad), 2 * np.maximum(real - ema_fake, 0) / len(real), rtol=1e-5)


def test_lecam_before_its_start_follows_the_batch_and_is_zero():
    real, fake = np.array([1.0, 3.0]), np.array([-2.0, 0.0])
    out = lecam.lecam(_lecam_ctx(real, fake, {"real": 7.0, "fake": 7.0}, update=1, start=2))
    assert float(out.value) == 0.0
    assert float(out.state["real"]) == 2.0 and float(out.state["fake"]) == -1.0


@pytest.mark.parametrize("key, value, match", [
    ("reg.lecam.decay", 1.0, "reg.lecam.decay"),
    ("reg.lecam.start", -1, "reg.lecam.start"),
    ("reg.lecam.every", 2, "reg.lecam.every"),
    ("g_noise", "reuse", "reg.orthogonal"),
])
def test_config_checks_name_the_key(key, value, match):
    c = config_lib.default_config()
    c.reg.lecam.weight = 0.3
    c.reg.orthogonal.weight = 1e-4
    section, name = key.rsplit(".", 1) if "." in key else ("", key)
    target = c
    for part in filter(None, section.split(".")):
        target = target[part]
    target[name] = value
    with pytest.raises(ConfigError, match=match):
        config_lib.validate(c, 1)


# ----------------------------------------------------------------------------- end to end




def _run_config(npz: str, num_steps: int):
    c = config_lib.default_config()
    c.data.source = f"local:{npz}"
    c.model.generator = c.model.discriminator = "mlp"
    c.model.latent_dim = 16
    c.model.g_width = c.model.d_width = 32
    c.model.g_depth = c.model.d_depth = 1
    c.loss = "hinge"
    c.n_critic = 2
    c.update(dict(batch_size=50, num_steps=num_steps, steps_per_dispatch=2, log_every_steps=4,
                  eval_every_steps=10**6, ckpt_every_steps=8, writers="jsonl"))
    c.eval.num_samples = 16
    c.reg.lecam.update(dict(weight=0.3, decay=0.9, start=6))
    c.reg.orthogonal.weight = 1e-4
    return c




@pytest.mark.slow
def test_lecam_averages_are_checkpointed_and_a_resume_is_exact(tmp_path):
    from gan_jax.loop.trainer import train_and_evaluate

    npz = rh.digits_npz(tmp_path / "digits.npz")
    straight = _run_config(npz, 16)
    train_and_evaluate(straight, tmp_path / "straight", progress=False)
    train_and_evaluate(_run_config(npz, 8), tmp_path / "resumed", progress=False)
    half = rh.restore(tmp_path / "resumed", _run_config(npz, 8), shape=(28, 28, 1))[0]
    train_and_evaluate(straight, tmp_path / "resumed", progress=False, allow_config_change=("num_steps",))
    a = rh.restore(tmp_path / "straight", straight, shape=(28, 28, 1))[0]
    b = rh.restore(tmp_path / "resumed", straight, shape=(28, 28, 1))[0]
    ema = a.terms["reg"]["lecam"]
    assert set(ema) == {"real", "fake"} and float(ema["real"]) != 0.0 and float(ema["fake"]) != 0.0
    # the averages were saved mid-run and moved on after the resume
    assert float(half.terms["reg"]["lecam"]["real"]) != float(ema["real"])
    for x, y in zip(jax.tree.leaves((a.terms, a.d, a.g, a.step)), jax.tree.leaves((b.terms, b.d, b.g, b.step))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the orthogonal term reached G's update with G's parameters
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train/g_orthogonal"] > 0 for r in rows if "train/g_orthogonal" in r] == [True] * 4
