"""StyleGAN2's path-length regularization and style mixing: the penalty and its gradient against a numpy
implementation with finite differences, the running mean by hand, the lazy schedule in the step, style
mixing's cutoff, the config checks, and an exact resume of a tiny StyleGAN2-ADA run with both on."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.errors import ConfigError
from gan_jax.models import stylegan2 as sg2
from gan_jax.objectives.terms import path_length as pl

# ----------------------------------------------------------------------------- the penalty

B, NUM_WS, W_DIM, Z_DIM, H, W, C = 4, 3, 5, 2, 2, 3, 2


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return dict(a=rng.normal(size=(NUM_WS, W_DIM, H * W * C)), m=rng.normal(size=(Z_DIM, W_DIM)),
                z=rng.normal(size=(B, Z_DIM)), noise=rng.normal(size=(B, H, W, C)))


def _ctx(a, m, z, noise, pl_mean, decay=0.01, shrink=2, calls=None, shape=(H, W, C)):
    """A G context whose "generator" maps z to ws = z @ m (the same w for every layer) and synthesises
    img[b] = sum over layers l of (ws[b, l]^2) @ a[l] (a [num_ws, w_dim, H * W * C]), so the gradient of
    sum(img * n) in ws[b, l] is 2 ws[b, l] * (a[l] @ n_b)."""

    def apply_generator(method, *args, rngs=None, **kwargs):
        if calls is not None:
            calls.append((method, args, kwargs))
        if method == "map":
            z_rows, _ = args
            return jnp.repeat((z_rows @ m)[:, None, :], NUM_WS, axis=1)
        (ws,) = args
        return jnp.einsum("blw,lwp->bp", ws**2, a).reshape((ws.shape[0],) + shape)

    return types.SimpleNamespace(
        z=jnp.asarray(z, jnp.float32), fake_labels=None, fake=jnp.zeros((z.shape[0],) + shape),
        apply_generator=apply_generator, per_sample=lambda key, draw: jnp.asarray(noise, jnp.float32),
        mean=jnp.mean, settings=types.SimpleNamespace(batch_shrink=shrink),
        hparams={"decay": jnp.float32(decay)}, state={"mean": jnp.float32(pl_mean)}, key=jax.random.key(0))


def _np_value(a, m, z, noise, pl_mean, decay=0.01, shrink=2):
    """(value, lengths, new mean) in float64, from the formula as the issue writes it."""
    z, noise = z[::shrink], noise[::shrink] / np.sqrt(H * W)
    ws = np.repeat((z @ m)[:, None, :], NUM_WS, axis=1)
    grad = np.stack([[2 * ws[b, l] * (a[l] @ noise[b].reshape(-1)) for l in range(NUM_WS)]
                     for b in range(len(z))])  # [b, num_ws, w_dim]
    lengths = np.sqrt(np.mean(np.sum(grad**2, axis=2), axis=1))
    new_mean = pl_mean + decay * (lengths.mean() - pl_mean)
    return np.mean((lengths - new_mean) ** 2), lengths, new_mean


def test_value_and_gradient_against_numpy_and_finite_differences():
    p = _problem()
    pl_mean = 0.7

    def value(a, m):
        return pl.path_length(_ctx(a, m, p["z"], p["noise"], pl_mean)).value

    out = pl.path_length(_ctx(jnp.asarray(p["a"], jnp.float32), jnp.asarray(p["m"], jnp.float32), p["z"],
                              p["noise"], pl_mean))
    expected, lengths, new_mean = _np_value(p["a"], p["m"], p["z"], p["noise"], pl_mean)
    np.testing.assert_allclose(float(out.value), expected, rtol=1e-5)
    np.testing.assert_allclose(float(out.state["mean"]), new_mean, rtol=1e-6)
    np.testing.assert_allclose(float(out.metrics["pl_mean"]), new_mean, rtol=1e-6)
    # the lengths themselves, by the closed form
    ws = jnp.repeat((jnp.asarray(p["z"][::2], jnp.float32) @ p["m"])[:, None, :], NUM_WS, axis=1)
    got = pl.path_lengths(lambda w: _ctx(p["a"], p["m"], p["z"], p["noise"], 0).apply_generator("synthesize", w),
                          ws, jnp.asarray(p["noise"][::2] / np.sqrt(H * W), jnp.float32))
    np.testing.assert_allclose(np.asarray(got), lengths, rtol=1e-5)

    grads = jax.grad(value, argnums=(0, 1))(jnp.asarray(p["a"], jnp.float32), jnp.asarray(p["m"], jnp.float32))
    eps = 1e-6
    for which, grad in zip(("a", "m"), grads):
        numeric = np.zeros_like(p[which])
        for index in np.ndindex(p[which].shape):
            up, down = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
            up[which][index] += eps
            down[which][index] -= eps
            numeric[index] = (_np_value(up["a"], up["m"], p["z"], p["noise"], pl_mean)[0]
                              - _np_value(down["a"], down["m"], p["z"], p["noise"], pl_mean)[0]) / (2 * eps)
        np.testing.assert_allclose(np.asarray(grad), numeric, rtol=2e-3, atol=2e-4 * np.abs(numeric).max(),
                                   err_msg=which)


def test_the_new_mean_is_differentiated_as_the_reference_does():
    """The penalty uses the updated mean without a stop-gradient: with decay 1 the mean is this batch's mean
    length, so the value is the lengths' variance (and its gradient that of the variance)."""
    p = _problem(1)
    a, m = jnp.asarray(p["a"], jnp.float32), jnp.asarray(p["m"], jnp.float32)
    _, lengths, _ = _np_value(p["a"], p["m"], p["z"], p["noise"], 5.0, decay=1.0)
    out = pl.path_length(_ctx(a, m, p["z"], p["noise"], 5.0, decay=1.0))
    np.testing.assert_allclose(float(out.value), np.var(lengths), rtol=1e-5)


def test_it_maps_every_shrink_th_row_as_a_training_forward():
    p = _problem()
    calls = []
    pl.path_length(_ctx(p["a"], p["m"], p["z"], p["noise"], 0.0, calls=calls))
    (method, args, kwargs), (synth, _, _) = calls
    assert (method, synth, kwargs) == ("map", "synthesize", {"train": True})
    np.testing.assert_array_equal(np.asarray(args[0]), p["z"][::2].astype(np.float32))


def test_the_running_mean_over_three_updates_by_hand():
    """One pixel, unit rows in `a`: each length is |noise| / sqrt(1) exactly. Lengths (3, 1), (2, 4), (5, 1)."""
    a = np.zeros((NUM_WS, W_DIM, 1))
    a[:, 0, 0] = 1.0
    m = np.zeros((Z_DIM, W_DIM))
    m[0, 0] = 0.5  # ws[b, l, 0] = z[b, 0] / 2 = 1 / 2, so 2 ws * a n = n
    z = np.ones((B, Z_DIM))
    state, means, values = 0.0, [], []
    for rows in ((3.0, 1.0), (2.0, -4.0), (-5.0, 1.0)):
        noise = np.array([rows[0], 9.0, rows[1], 9.0]).reshape(B, 1, 1, 1)  # rows 1 and 3 are not used
        out = pl.path_length(_ctx(a, m, z, noise, state, shape=(1, 1, 1)))
        state = out.state["mean"]
        means.append(float(state))
        values.append(float(out.value))
    # 0 + 0.01 * (2 - 0) = 0.02; 0.02 + 0.01 * (3 - 0.02) = 0.0498; 0.0498 + 0.01 * (3 - 0.0498) = 0.079302
    np.testing.assert_allclose(means, [0.02, 0.0498, 0.079302], rtol=1e-6)
    np.testing.assert_allclose(values, [((3 - 0.02) ** 2 + (1 - 0.02) ** 2) / 2,
                                        ((2 - 0.0498) ** 2 + (4 - 0.0498) ** 2) / 2,
                                        ((5 - 0.079302) ** 2 + (1 - 0.079302) ** 2) / 2], rtol=1e-5)


def test_the_lengths_equal_the_reference_codes_on_its_fixture():
    """The term's lengths, with the StyleGAN2 networks of the fixture and its noise, equal the path lengths that
    NVlabs/stylegan2-ada-pytorch computed (tests/test_stylegan2.py holds the networks to the same fixture)."""
    from test_stylegan2 import FIXTURE, _fixture_networks

    f = np.load(FIXTURE)
    for name in ("cond_resnet", "uncond_orig"):
        _, g, _, gv, _, labels = _fixture_networks(f, name)
        z = jnp.asarray(f[f"{name}/z"])
        ws = g.apply(gv, z, labels.get("y"), train=False, truncation_psi=1.0, method="map")
        lengths = pl.path_lengths(lambda w: g.apply(gv, w, method="synthesize"), ws, jnp.asarray(f[f"{name}/pl_noise"]))
        np.testing.assert_allclose(np.asarray(lengths), f[f"{name}/pl_lengths"], rtol=1e-4, err_msg=name)


# ----------------------------------------------------------------------------- in the step


def _tiny(**overrides):
    c = config_lib.default_config()
    c.model.generator = c.model.discriminator = "stylegan2"
    c.model.latent_dim = 8
    s = c.model.stylegan2
    s.update(dict(w_dim=8, mapping_layers=1, channel_base=32, channel_max=4, mbstd_group=2, d_mapping_layers=1))
    c.batch_size = 4
    c.loss = "non_saturating"
    c.optim.name = "adam"
    c.optim.b1, c.optim.b2 = 0.0, 0.99
    for key, value in overrides.items():
        section, name = key.rsplit("__", 1) if "__" in key else ("", key)
        target = c
        for part in filter(None, section.split("__")):
            target = target[part]
        target[name] = value
    return c


def _step_setup(c, due=None, shape=(8, 8, 1)):
    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.core.step import make_train_step
    from gan_jax.models import build_models

    config_lib.validate(c, 1)
    g, d = build_models(c.model, shape)
    g_tx, d_tx = optim.make_optimizers(c)
    state = create_state(c, g, d, shape, g_tx, d_tx)
    return g, d, jax.jit(make_train_step(c, g, d, g_tx, d_tx, due=due)), state


def test_lazy_schedule_applies_on_every_kth_g_update_with_weight_times_k():
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, size=(1, 4, 8, 8, 1)), jnp.float32)
    batch = {"x": x}
    _, _, off_step, state = _step_setup(_tiny())
    _, off = off_step(state, batch)
    losses = {}
    for every in (1, 3):
        _, _, step, state = _step_setup(_tiny(reg__path_length__weight=0.5, reg__path_length__every=every))
        pl_means, applied = [], []
        for i in range(7):
            new, metrics = step(state, batch)
            if i == 0:
                losses[every] = (float(metrics["g_loss"]), float(metrics["g_path_length"]))
            applied.append(float(metrics.get("applied/g_path_length", 1.0)))
            pl_means.append(float(new.terms["reg"]["path_length"]["mean"]))
            state = new
        due = [i % every == 0 for i in range(7)]
        assert applied == [float(d) for d in due]
        # the running mean moves on the due updates only
        moved = [pl_means[0] != 0.0] + [pl_means[i] != pl_means[i - 1] for i in range(1, 7)]
        assert moved == due, (every, pl_means)
    # at step 0 the states agree but for the weight: G's loss grows by weight * every * value
    for every, (g_loss, value) in losses.items():
        assert value > 0
        np.testing.assert_allclose(g_loss - float(off["g_loss"]), 0.5 * every * value, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- style mixing


def _generator(style_mixing, num_classes=0, resolution=16):
    g = sg2.StyleGAN2Generator((resolution, resolution, 1), resolution, w_dim=4, mapping_layers=2,
                               num_classes=num_classes, channel_base=64, channel_max=4, noise_mode="const",
                               style_mixing=style_mixing)
    y = {"y": jnp.array([0, 1, 2, 0])} if num_classes else {}
    variables = g.init(jax.random.key(0), jnp.zeros((4, 6)), train=False, **y)
    return g, variables, y


def _map(g, variables, z, key, y=None):
    return _jitted_map(g)(variables, z, key, y)


_MAPS = {}


def _jitted_map(g):
    if id(g) not in _MAPS:  # the module is kept with its function, so its id is not reused
        _MAPS[id(g)] = (g, jax.jit(lambda variables, z, key, y: g.apply(
            variables, z, y, train=True, method="map", rngs={"mixing": key}, mutable=[sg2.BUFFERS])[0]))
    return _MAPS[id(g)][1]


def test_with_probability_1_the_ws_after_the_cutoff_come_from_the_second_z_only():
    g, variables, _ = _generator(1.0)
    plain, _, _ = _generator(0.0)
    n = sg2.num_ws(16)
    za, zb = jax.random.normal(jax.random.key(1), (2, 4, 6))
    cutoffs = []
    for seed in range(40):
        key = jax.random.key(100 + seed)
        wa, wb = _map(g, variables, za, key), _map(g, variables, zb, key)
        unmixed = _map(plain, variables, za, key)
        same = [bool(jnp.all(wa[:, i] == wb[:, i])) for i in range(n)]
        cutoff = same.index(True)
        assert same == [False] * cutoff + [True] * (n - cutoff)  # from the cutoff on: the second z's ws only
        np.testing.assert_array_equal(wa[:, :cutoff], unmixed[:, :cutoff])  # before it: the first z's
        assert not np.allclose(wa[:, cutoff:], unmixed[:, cutoff:])
        # by gradients: the ws from the cutoff on do not depend on the first z
        jac = jax.jacobian(lambda z: _map(g, variables, z, key))(za)  # [4, n, w, 4, 6]
        assert np.all(np.asarray(jac[:, cutoff:]) == 0) and np.any(np.asarray(jac[:, :cutoff]) != 0)
        cutoffs.append(cutoff)
    assert set(cutoffs) == set(range(1, n))  # uniform over [1, num_ws): every cutoff shows up in 40 draws


def test_the_second_mapping_takes_the_same_labels_and_leaves_w_avg_alone():
    g, variables, y = _generator(1.0, num_classes=3)
    z = jax.random.normal(jax.random.key(2), (4, 6))
    key = jax.random.key(7)
    n = sg2.num_ws(16)
    wa = _map(g, variables, z, key, y["y"])
    wb = _map(g, variables, z, key, (y["y"] + 1) % 3)
    assert not np.allclose(wa[:, n - 1], wb[:, n - 1])  # the last w is always the second z's: it sees the labels
    _, mixed = g.apply(variables, z, y["y"], train=True, method="map", rngs={"mixing": key}, mutable=[sg2.BUFFERS])
    plain, _, _ = _generator(0.0, num_classes=3)
    _, unmixed = plain.apply(variables, z, y["y"], train=True, method="map", mutable=[sg2.BUFFERS])
    np.testing.assert_array_equal(mixed[sg2.BUFFERS]["mapping"]["w_avg"], unmixed[sg2.BUFFERS]["mapping"]["w_avg"])


def test_mixing_probability_and_never_when_sampling():
    g, variables, _ = _generator(0.5)
    plain, _, _ = _generator(0.0)
    z = jax.random.normal(jax.random.key(3), (4, 6))
    unmixed = _map(plain, variables, z, jax.random.key(0))
    mixed = [not np.array_equal(_map(g, variables, z, jax.random.key(s)), unmixed) for s in range(200)]
    assert 70 < sum(mixed) < 130  # Binomial(200, 0.5): 100 +- 30 is beyond 4 standard deviations
    # sampling (train=False) never mixes and needs no "mixing" rng
    np.testing.assert_array_equal(g.apply(variables, z, train=False), plain.apply(variables, z, train=False))


def test_the_step_mixes_its_training_fakes():
    from gan_jax.core.step import TrainStep

    fakes = {}
    for p in (0.0, 1.0):
        c = _tiny(model__stylegan2__style_mixing=p)
        g, d, _, state = _step_setup(c)
        step = TrainStep(c, g, d, None, None, None, 1, 0, None)
        fakes[p] = step._generate(state.g.params, state.g.model_state, jax.random.key(5))[0]
    assert not np.allclose(fakes[0.0], fakes[1.0])


# ----------------------------------------------------------------------------- config checks


@pytest.mark.parametrize("overrides, match", [
    ({"model__generator": "dcgan", "model__discriminator": "dcgan"}, r"model\.generator=stylegan2"),
    ({"reg__path_length__batch_shrink": 0}, r"reg\.path_length\.batch_shrink"),
    ({"reg__path_length__batch_shrink": 3}, r"reg\.path_length\.batch_shrink.*batch_size"),
    ({"reg__path_length__decay": 1.5}, r"reg\.path_length\.decay"),
    ({"g_noise": "reuse"}, r"g_noise"),
    ({"model__stylegan2__style_mixing": 1.5}, r"model\.stylegan2\.style_mixing"),
])
def test_config_checks_name_the_key(overrides, match):
    config_lib.validate(_tiny(reg__path_length__weight=2.0), 1)
    with pytest.raises(ConfigError, match=match):
        config_lib.validate(_tiny(reg__path_length__weight=2.0, **overrides), 1)


def test_the_cifar_recipe_has_both_off_and_its_paper_variant_on():
    c = config_lib.load_config("cifar10_stylegan2_ada")
    assert (c.reg.path_length.weight, c.model.stylegan2.style_mixing) == (0.0, 0.0)
    p = config_lib.load_config("cifar10_stylegan2_ada:paper")
    assert (p.reg.path_length.weight, p.reg.path_length.every, p.reg.path_length.decay,
            p.reg.path_length.batch_shrink) == (2.0, 4, 0.01, 2)
    assert (p.model.stylegan2.style_mixing, p.model.stylegan2.architecture) == (0.9, "resnet")


# ----------------------------------------------------------------------------- exact resume


def _run_config(npz: str, num_steps: int):
    c = _tiny(reg__path_length__weight=2.0, reg__path_length__every=2, model__stylegan2__style_mixing=0.5)
    c.data.source = f"local:{npz}"
    c.data.resolution = 8
    c.model.conditioning = "projection"
    c.augment.ada.update(dict(mode="adaptive", p=0.1, interval=2, speed_images=500.0))
    c.ema.decay, c.ema.half_life_images = 0.0, 40.0
    c.update(dict(num_steps=num_steps, steps_per_dispatch=1, log_every_steps=2, eval_every_steps=10**6,
                  ckpt_every_steps=4, writers="jsonl"))
    c.eval.num_samples = 4
    return c


@pytest.mark.slow
def test_a_stopped_and_resumed_run_ends_bitwise_equal(tmp_path):
    from gan_jax.loop.trainer import train_and_evaluate

    npz = rh.digits_npz(tmp_path / "digits.npz")
    straight = _run_config(npz, 8)
    train_and_evaluate(straight, tmp_path / "straight", progress=False)
    train_and_evaluate(_run_config(npz, 4), tmp_path / "resumed", progress=False)
    half = rh.restore(tmp_path / "resumed", _run_config(npz, 4), shape=(8, 8, 1), num_classes=10)[0]
    train_and_evaluate(straight, tmp_path / "resumed", progress=False, allow_config_change=("num_steps",))
    (a, meta_a), (b, meta_b) = (rh.restore(tmp_path / run, straight, shape=(8, 8, 1), num_classes=10)
                                for run in ("straight", "resumed"))
    # the image count: 8 G steps of 4 images, and the data iterator 8 batches on, in both runs
    assert int(a.step) == int(b.step) == 8
    assert meta_a["data_position"] == meta_b["data_position"] == 8
    pl_mean = float(a.terms["reg"]["path_length"]["mean"])
    p = float(a.terms["augment"]["ada"]["p"])
    # pl_mean moved on the 4 due G updates, and after the resume; p moved from 0.1
    assert pl_mean > 0 and float(half.terms["reg"]["path_length"]["mean"]) not in (0.0, pl_mean)
    assert p != 0.1
    for x, y in zip(jax.tree.leaves((a.terms, a.g, a.d, a.g_ema, a.step)),
                    jax.tree.leaves((b.terms, b.g, b.d, b.g_ema, b.step))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
