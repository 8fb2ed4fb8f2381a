"""StyleGAN2 networks: the reference code's parameter counts and outputs (a fixture it wrote, see
scripts/make_stylegan2_fixture.py), and each piece against numpy."""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.config import default_config
from gan_jax.errors import ConfigError
from gan_jax.models import build_models, validate
from gan_jax.models import stylegan2 as sg2

FIXTURE = Path(__file__).parent / "fixtures" / "stylegan2_reference.npz"


def _cifar_model_config(conditional: bool):
    c = default_config()
    c.model.generator = c.model.discriminator = "stylegan2"
    c.model.latent_dim = 512
    c.model.conditioning = "projection" if conditional else "none"
    return c


def _count(tree) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("classes, g_count, d_count", [(10, 20_215_315, 23_089_664), (0, 19_947_539, 20_720_641)])
def test_cifar_configuration_has_the_reference_parameter_counts(classes, g_count, d_count):
    """StyleGAN2-ADA's `cifar` networks (the defaults of model.stylegan2) as its code counts them: trainable
    parameters, without the w average and the const noise maps."""
    c = _cifar_model_config(classes > 0)
    g, d = build_models(c.model, (32, 32, 3), None, classes)
    y = {"y": jnp.zeros((2,), jnp.int32)} if classes else {}
    gv = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 512)), train=False, **y))
    dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), train=False, **y))
    assert (_count(gv["params"]), _count(dv["params"])) == (g_count, d_count)
    # w_avg (512) and one noise map per synthesis layer: 4x4 once, 8x8 to 32x32 twice each.
    assert _count(gv[sg2.BUFFERS]) == 512 + 16 + 2 * (64 + 256 + 1024)
    assert set(dv) == {"params"}


def _fixture_networks(f, name):
    cfg = json.loads(str(f[f"{name}/config"]))
    r, ch = cfg["resolution"], cfg["channels"]
    g = sg2.StyleGAN2Generator((r, r, ch), r, w_dim=cfg["w_dim"], mapping_layers=cfg["mapping_layers"],
                               num_classes=cfg["num_classes"], channel_base=cfg["channel_base"],
                               channel_max=cfg["channel_max"], conv_clamp=cfg["conv_clamp"], noise_mode="const",
                               truncation_psi=cfg["truncation_psi"], truncation_cutoff=cfg["truncation_cutoff"])
    d = sg2.StyleGAN2Discriminator(r, cfg["architecture"], cfg["num_classes"], cfg["channel_base"],
                                   cfg["channel_max"], cfg["conv_clamp"], cfg["mbstd_group"], cfg["mbstd_channels"],
                                   cfg["d_mapping_layers"])

    def variables(prefix):
        tree = {}
        for key in f.files:
            if key.startswith(f"{name}/{prefix}/"):
                node = tree
                path = key.split("/")[2:]
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = jnp.asarray(f[key])
        return tree

    labels = {"y": jnp.asarray(f[f"{name}/y"])} if cfg["num_classes"] else {}
    return cfg, g, d, variables("g"), variables("d"), labels


FIXTURE_CONFIGS = ("cond_resnet", "uncond_orig")


@pytest.mark.parametrize("name", FIXTURE_CONFIGS)
def test_networks_equal_the_reference_code(name):
    """G (const noise, truncation), D (one fixed batch), R1 at real images, the path lengths and the w_avg
    update equal what NVlabs/stylegan2-ada-pytorch computes from the same parameters (float32, its CPU
    paths)."""
    f = np.load(FIXTURE)
    _, g, d, gv, dv, labels = _fixture_networks(f, name)
    z, x = jnp.asarray(f[f"{name}/z"]), jnp.asarray(f[f"{name}/x"])

    img = g.apply(gv, z, train=False, **labels)
    np.testing.assert_allclose(img, f[f"{name}/img"], rtol=1e-4, atol=1e-4 * np.abs(f[f"{name}/img"]).max())

    def critic(x):
        return d.apply(dv, x, train=False, **labels)

    logits = critic(x)
    np.testing.assert_allclose(logits, f[f"{name}/logits"], rtol=1e-4, atol=1e-4 * np.abs(f[f"{name}/logits"]).max())
    r1 = jnp.sum(jnp.square(jax.grad(lambda x: critic(x).sum())(x)), axis=(1, 2, 3))
    np.testing.assert_allclose(r1, f[f"{name}/r1"], rtol=1e-4, atol=1e-4 * np.abs(f[f"{name}/r1"]).max())

    lengths = sg2.path_lengths(g, gv, z, labels.get("y"), jnp.asarray(f[f"{name}/pl_noise"]))
    np.testing.assert_allclose(lengths, f[f"{name}/pl_lengths"], rtol=1e-4)

    _, updated = g.apply(gv, z, train=True, mutable=[sg2.BUFFERS], **labels)
    np.testing.assert_allclose(updated[sg2.BUFFERS]["mapping"]["w_avg"], f[f"{name}/w_avg_after"], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("name", FIXTURE_CONFIGS)
def test_float64_inputs_and_parameters_compute_in_float64(name):
    """Under jax_enable_x64 nothing in G (mapping, synthesis, path lengths) or D narrows float64 to float32, so
    `make_stylegan2_fixture.py --float64` compares float64 with float64; the outputs still equal the
    reference's float32 ones to float32 precision."""
    f = np.load(FIXTURE)
    with jax.enable_x64(True):
        _, g, d, gv, dv, labels = _fixture_networks(f, name)
        gv, dv = (jax.tree.map(lambda v: v.astype(jnp.float64), t) for t in (gv, dv))
        z, x = (jnp.asarray(f[f"{name}/{k}"], jnp.float64) for k in ("z", "x"))
        img = g.apply(gv, z, train=False, **labels)
        logits = d.apply(dv, x, train=False, **labels)
        lengths = sg2.path_lengths(g, gv, z, labels.get("y"), jnp.asarray(f[f"{name}/pl_noise"], jnp.float64))
        _, updated = g.apply(gv, z, train=True, mutable=[sg2.BUFFERS], **labels)
        w_avg = updated[sg2.BUFFERS]["mapping"]["w_avg"]
        assert {a.dtype for a in (img, logits, lengths, w_avg)} == {jnp.dtype(jnp.float64)}
        np.testing.assert_allclose(img, f[f"{name}/img"], rtol=1e-4, atol=1e-4 * np.abs(f[f"{name}/img"]).max())
        np.testing.assert_allclose(lengths, f[f"{name}/pl_lengths"], rtol=1e-4)


def test_the_fixture_exercises_the_clamp_and_the_truncation():
    """Without the clamp, or without truncation, our G gives other images: the fixture tests both."""
    f = np.load(FIXTURE)
    _, g, _, gv, _, labels = _fixture_networks(f, "uncond_orig")
    z = jnp.asarray(f["uncond_orig/z"])
    unclamped = g.clone(conv_clamp=None).apply(gv, z, train=False, **labels)
    assert np.abs(np.asarray(unclamped) - f["uncond_orig/img"]).max() > 0.1
    untruncated = g.apply(gv, z, train=False, truncation_psi=1.0, **labels)
    assert np.abs(np.asarray(untruncated) - f["uncond_orig/img"]).max() > 0.1


def _correlate_same(x, k):
    """numpy: x [H, W, I] correlated with k [kh, kw, I, O], zero padding kh // 2."""
    kh = k.shape[0]
    p = kh // 2
    xp = np.pad(x, ((p, p), (p, p), (0, 0)))
    h, w = x.shape[:2]
    return np.array([[np.einsum("abi,abio->o", xp[i:i + kh, j:j + kh], k) for j in range(w)] for i in range(h)])


def test_modulated_convolution_matches_per_sample_kernels():
    """Each sample convolved with its own kernel weight * style, demodulated to unit norm per output."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 5, 4))
    weight = rng.standard_normal((3, 3, 4, 6))
    styles = rng.standard_normal((3, 4))
    for demodulate in (True, False):
        want = []
        for b in range(3):
            k = weight * styles[b][None, None, :, None]
            if demodulate:
                k = k / np.sqrt(np.sum(k**2, axis=(0, 1, 2)) + 1e-8)
            want.append(_correlate_same(x[b], k))
        got = sg2.modulated_conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(weight, jnp.float32),
                                   jnp.asarray(styles, jnp.float32), demodulate=demodulate)
        np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-4)


def _fir_numpy(x, pad, gain):
    """numpy: [H, W] zero-padded by pad on each side, correlated with the 2-D [1, 3, 3, 1] filter (sum gain)."""
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    f = np.outer(taps, taps) / 64.0 * gain
    xp = np.pad(x, (pad, pad))
    n = xp.shape[0] - 3
    return np.array([[np.sum(xp[i:i + 4, j:j + 4] * f) for j in range(xp.shape[1] - 3)] for i in range(n)])


def test_resampling_filter_and_resampled_convolutions_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 6))
    filtered = sg2.filter2d(jnp.asarray(x, jnp.float32)[None, :, :, None], (2, 1), gain=4.0)
    np.testing.assert_allclose(filtered[0, :, :, 0], _fir_numpy(x, (2, 1), 4.0), rtol=1e-5, atol=1e-5)
    k = rng.standard_normal((3, 3))
    xj, kj = jnp.asarray(x, jnp.float32)[None, :, :, None], jnp.asarray(k, jnp.float32)[:, :, None, None]
    # Up: a stride-2 transposed convolution (every input pixel stamps the kernel), then the filter with gain 4.
    stamped = np.zeros((13, 13))
    for i in range(6):
        for j in range(6):
            stamped[2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[i, j] * k
    np.testing.assert_allclose(sg2.conv2d(xj, kj, up=True)[0, :, :, 0], _fir_numpy(stamped, (1, 1), 4.0),
                               rtol=1e-5, atol=1e-5)
    # Down: the filter over a 2-pixel pad, then a stride-2 correlation.
    filtered = _fir_numpy(x, (2, 2), 1.0)
    want = np.array([[np.sum(filtered[i:i + 3, j:j + 3] * k) for j in range(0, 5, 2)] for i in range(0, 5, 2)])
    np.testing.assert_allclose(sg2.conv2d(xj, kj, down=True)[0, :, :, 0], want, rtol=1e-5, atol=1e-5)
    # 1x1 down: the filter with a 1-pixel pad, every second pixel, then the 1x1 weight.
    np.testing.assert_allclose(sg2.conv2d(xj, kj[1:2, 1:2] * 0 + 2.0, down=True)[0, :, :, 0],
                               2.0 * _fir_numpy(x, (1, 1), 1.0)[::2, ::2], rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_matches_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3, 3, 6)).astype(np.float32)
    got = np.asarray(sg2.minibatch_stddev(jnp.asarray(x), group_size=4, num_channels=2))
    assert got.shape == (8, 3, 3, 8)
    np.testing.assert_array_equal(got[..., :6], x)
    n = 8 // 4
    for i in range(8):
        members = x[i % n::n]  # sample i's group: the samples equal to it modulo the number of groups
        for f in range(2):
            part = members[..., 3 * f:3 * (f + 1)].astype(np.float64)
            want = np.mean(np.sqrt(np.mean((part - part.mean(0)) ** 2, axis=0) + 1e-8))
            np.testing.assert_allclose(got[i, :, :, 6 + f], want, rtol=1e-5)
    with pytest.raises(ValueError, match="does not divide the batch"):
        sg2.minibatch_stddev(jnp.asarray(x[:6]), group_size=4, num_channels=1)


def test_equalized_learning_rate_scales_raw_weights_at_run_time():
    x = jnp.asarray(np.random.default_rng(3).standard_normal((5, 64)), jnp.float32)
    dense = sg2.Dense(32, lr_multiplier=0.01, bias_init=0.5)
    v = dense.init(jax.random.key(0), x)
    w, b = np.asarray(v["params"]["weight"]), np.asarray(v["params"]["bias"])
    assert w.std() == pytest.approx(100.0, rel=0.05) and np.all(b == 0.5)  # raw: N(0, 1 / lr^2), bias as given
    np.testing.assert_allclose(dense.apply(v, x), np.asarray(x) @ (w * 0.01 / 8.0) + b * 0.01, rtol=1e-4, atol=1e-5)
    lrelu = sg2.Dense(32, "lrelu").apply(v, x)
    pre = np.asarray(x) @ (w / 8.0) + b
    np.testing.assert_allclose(lrelu, np.where(pre > 0, pre, 0.2 * pre) * np.sqrt(2), rtol=1e-4, atol=1e-4)
    conv = sg2.Conv(4, 3, "linear", use_bias=False)
    img = jnp.asarray(np.random.default_rng(4).standard_normal((1, 5, 5, 2)), jnp.float32)
    cv = conv.init(jax.random.key(1), img)
    k = np.asarray(cv["params"]["weight"])
    np.testing.assert_allclose(conv.apply(cv, img)[0], _correlate_same(np.asarray(img[0]), k / np.sqrt(18)),
                               rtol=1e-4, atol=1e-4)


def test_random_noise_needs_a_key_and_sampling_without_one_uses_the_fixed_maps():
    g = sg2.StyleGAN2Generator((8, 8, 1), 8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)
    z = jnp.ones((2, 8))
    v = g.init(jax.random.key(0), z, train=False)
    v = {**v, "params": jax.tree.map(lambda p: p + 0.5 if p.ndim == 0 else p, v["params"])}  # noise strengths
    const = g.apply(v, z, train=False)
    np.testing.assert_array_equal(const, g.clone(noise_mode="const").apply(v, z, train=False))
    a = g.apply(v, z, train=False, rngs={"noise": jax.random.key(1)})
    b = g.apply(v, z, train=False, rngs={"noise": jax.random.key(2)})
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-3 and np.abs(np.asarray(a) - np.asarray(const)).max() > 1e-3
    assert not np.allclose(g.clone(noise_mode="none").apply(v, z, train=False), const)


def test_config_checks_and_mnist_sized_images():
    c = _cifar_model_config(False)
    c.model.stylegan2.channel_base = 256
    c.model.stylegan2.channel_max = 16
    c.model.stylegan2.mbstd_group = 4
    g, d = build_models(c.model, (28, 28, 1), None, 0)
    gv = g.init(jax.random.key(0), jnp.zeros((4, 512)), train=False)
    img = g.apply(gv, jnp.zeros((4, 512)), train=False)
    assert img.shape == (4, 28, 28, 1)  # a 32x32 network, cropped
    dv = d.init(jax.random.key(0), img, train=False)
    assert d.apply(dv, img, train=False).shape == (4,)
    for key, value, match in (("noise_mode", "fixed", "noise_mode"), ("architecture", "skip", "orig or resnet"),
                              ("mbstd_group", 0, "mbstd_group"), ("conv_clamp", -1.0, "conv_clamp")):
        bad = _cifar_model_config(False)
        bad.model.stylegan2[key] = value
        with pytest.raises(ConfigError, match=match):
            validate(bad)
    bad = _cifar_model_config(True)
    bad.model.conditioning = "acgan"
    with pytest.raises(ConfigError, match="projection"):
        validate(bad)

