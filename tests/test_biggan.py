"""BigGAN networks: PyTorch-StudioGAN's parameter counts, its outputs for our parameters (the fixture
made by scripts/make_biggan_fixture.py), and the layers against numpy references."""

import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.errors import ConfigError
from gan_jax.models import build_models, validate
from gan_jax.models.biggan import (
    BigGANDiscriminator,
    BigGANGenerator,
    ConditionalBatchNorm,
    SelfAttention,
)

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "biggan_reference.npz"


def _model_config(conditioning="projection", latent=80, **biggan):
    m = config_lib.default_config().model
    m.generator = m.discriminator = "biggan"
    m.latent_dim = latent
    m.conditioning = conditioning
    for key, value in biggan.items():
        m.biggan[key] = value
    return m




# StudioGAN at commit 947b35e, configs/CIFAR10/BigGAN.yaml with its config defaults (g_conv_dim =
# d_conv_dim = 96, z 80, shared 128, attention after G's 2nd and D's 1st block), counted as PyTorch
# counts trainable parameters (spectral-norm u, v and BN running statistics are buffers).
@pytest.mark.parametrize("conditioning, classes, expected", [
    ("projection", 10, (9_416_196, 2_415_170)),
    ("none", 0, (8_825_092, 2_413_250)),
])
def test_cifar10_counts_equal_studiogan(conditioning, classes, expected):
    assert rh.abstract_param_counts(_model_config(conditioning), (32, 32, 3), classes) == expected


def _unflatten(fixture, prefix):
    tree = {}
    for name in fixture.files:
        if not name.startswith(prefix + "/"):
            continue
        node = tree
        *parents, leaf = name[len(prefix) + 1:].split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jnp.asarray(fixture[name])
    return tree


@functools.lru_cache(maxsize=1)
def _reference_outputs():
    fixture = np.load(FIXTURE)
    side, classes, z_dim, g_conv, d_conv, shared, attention = (int(v) for v in fixture["config"])
    g = BigGANGenerator((side, side, 3), g_conv, shared, attention, classes)
    d = BigGANDiscriminator(d_conv, attention, classes)
    g_vars, d_vars = _unflatten(fixture, "g"), _unflatten(fixture, "d")
    z, y, x = jnp.asarray(fixture["z"]), jnp.asarray(fixture["y"]), jnp.asarray(fixture["x"])
    assert z.shape[1] == z_dim
    out = {}
    for mode in ("train", "eval"):
        train = mode == "train"
        g_apply = jax.jit(functools.partial(g.apply, train=train, mutable=["batch_stats", "spectral"]))
        d_apply = jax.jit(functools.partial(d.apply, train=train, mutable=["spectral"]))
        out[f"g_{mode}"] = (np.asarray(g_apply(g_vars, z, y)[0]), fixture[f"out/g_{mode}"])
        out[f"d_{mode}"] = (np.asarray(d_apply(d_vars, x, y)[0]), fixture[f"out/d_{mode}"])
    return out


@pytest.mark.parametrize("name", ["g_train", "g_eval", "d_train", "d_eval"])
def test_outputs_equal_studiogan_for_the_same_parameters(name):
    ours, reference = _reference_outputs()[name]
    assert ours.shape == reference.shape
    scale = np.max(np.abs(reference))
    assert scale > 1e-2  # the comparison is not between zeros
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5 * max(scale, 1.0))


def test_the_fixture_exercises_the_attention_and_conditioning():
    fixture = np.load(FIXTURE)
    assert float(fixture["g/params/attention/sigma"]) != 0 and float(fixture["d/params/attention/sigma"]) != 0
    assert len(set(fixture["y"].tolist())) > 1


# --- layers against numpy ---


def _np_batch_norm(x, eps):
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps), mean, var


def _np_spectral(kernel):
    """kernel / its largest singular value, the kernel as a [fan_in, out] matrix."""
    matrix = kernel.reshape(-1, kernel.shape[-1])
    return kernel / np.linalg.svd(matrix, compute_uv=False)[0]


def test_conditional_batch_norm_against_a_hand_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (5, 3, 4, 6)).astype(np.float32)
    c = rng.normal(size=(5, 7)).astype(np.float32)
    module = ConditionalBatchNorm()
    variables = module.init(jax.random.key(0), x, c, train=False)
    # converge every spectral u so that our sigma is the true largest singular value
    for _ in range(50):
        _, updates = module.apply(variables, x, c, train=True, mutable=["spectral", "batch_stats"])
        variables = {**variables, "spectral": updates["spectral"]}
    out, updates = module.apply(variables, x, c, train=True, mutable=["spectral", "batch_stats"])
    gain_w = _np_spectral(np.asarray(variables["params"]["gain"]["kernel"], np.float64))
    bias_w = _np_spectral(np.asarray(variables["params"]["bias"]["kernel"], np.float64))
    normed, mean, var = _np_batch_norm(x.astype(np.float64), 1e-4)
    expected = normed * (1 + c @ gain_w)[:, None, None, :] + (c @ bias_w)[:, None, None, :]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)
    # running statistics: momentum 0.1 from (0, 1), as PyTorch's BN (its variance unbiased; ours biased)
    stats = updates["batch_stats"]["bn"]
    np.testing.assert_allclose(np.asarray(stats["mean"]), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(stats["var"]), 0.9 + 0.1 * var, rtol=1e-5)
    # eval mode normalises with the running statistics
    eval_out = module.apply({**variables, "batch_stats": updates["batch_stats"]}, x, c, train=False)
    run_mean, run_var = 0.1 * mean, 0.9 + 0.1 * var
    expected = ((x - run_mean) / np.sqrt(run_var + 1e-4)) * (1 + c @ gain_w)[:, None, None, :] + \
        (c @ bias_w)[:, None, None, :]
    np.testing.assert_allclose(np.asarray(eval_out), expected, rtol=1e-4, atol=1e-4)


def _np_self_attention(x, w_theta, w_phi, w_g, w_out, sigma):
    b, h, w, c = x.shape

    def pool(a):  # 2x2 max pooling, NHWC
        return a.reshape(b, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))

    theta = (x @ w_theta).reshape(b, h * w, -1)
    phi = pool(x @ w_phi).reshape(b, h * w // 4, -1)
    g = pool(x @ w_g).reshape(b, h * w // 4, -1)
    out = np.empty((b, h * w, w_out.shape[0]))
    for i in range(b):
        logits = theta[i] @ phi[i].T
        attention = np.exp(logits - logits.max(axis=1, keepdims=True))
        attention /= attention.sum(axis=1, keepdims=True)
        out[i] = attention @ g[i]
    return x + sigma * (out @ w_out).reshape(b, h, w, c)


def test_self_attention_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 6, 16)).astype(np.float32)
    module = SelfAttention()
    variables = module.init(jax.random.key(0), x, train=False)
    params = dict(variables["params"])
    params["sigma"] = jnp.asarray(0.8)
    variables = {**variables, "params": params}
    for _ in range(50):  # converge u, so that sigma(W) is the largest singular value
        _, updates = module.apply(variables, x, train=True, mutable=["spectral"])
        variables = {**variables, **updates}
    out = module.apply(variables, x, train=False)
    w = {k: _np_spectral(np.asarray(params[k]["kernel"], np.float64)[0, 0]) for k in ("theta", "phi", "g", "out")}
    assert w["theta"].shape == (16, 2) and w["g"].shape == (16, 8)
    expected = _np_self_attention(x.astype(np.float64), w["theta"], w["phi"], w["g"], w["out"], 0.8)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-5)
    # a fresh block is the identity (sigma starts at 0)
    np.testing.assert_array_equal(np.asarray(module.apply(module.init(jax.random.key(1), x, train=False), x,
                                                          train=False)), x)


# --- structure and config ---


def test_hierarchical_latent_each_block_sees_its_own_chunk():
    g = BigGANGenerator((32, 32, 3), conv_dim=4, shared_dim=8, attention=0, num_classes=3)
    z = jax.random.normal(jax.random.key(0), (2, 80))
    y = jnp.array([0, 2])
    variables = g.init(jax.random.key(1), z, y, train=False)
    seen = {}

    def record(next_fun, args, kwargs, context):  # the conditioning vector of each block's first CBN
        if isinstance(context.module, ConditionalBatchNorm) and context.module.name == "bn1":
            seen[context.module.parent.name] = np.asarray(args[1])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        g.apply(variables, z, y, train=False)
    shared = np.asarray(variables["params"]["shared"]["embedding"])[np.asarray(y)]
    for i in range(3):
        np.testing.assert_array_equal(seen[f"block{i}"], np.concatenate([shared, z[:, 20 * (i + 1):20 * (i + 2)]], 1))


def test_unconditional_generator_runs_and_is_in_range():
    m = _model_config("none", latent=80, g_conv_dim=8, d_conv_dim=8)
    g, d = build_models(m, (32, 32, 3))
    z = jax.random.normal(jax.random.key(0), (4, 80))
    gv = g.init(jax.random.key(1), z, train=False)
    images, _ = g.apply(gv, z, train=True, mutable=["batch_stats", "spectral"])
    assert images.shape == (4, 32, 32, 3) and float(jnp.max(jnp.abs(images))) <= 1.0
    dv = d.init(jax.random.key(2), images, train=False)
    assert d.apply(dv, images, train=False).shape == (4,)


@pytest.mark.parametrize("side, latent", [(64, 100), (128, 120)])
def test_larger_layouts_build(side, latent):
    m = _model_config("projection", latent=latent, g_conv_dim=8, d_conv_dim=8, g_attention=side // 2,
                      d_attention=side // 2)
    counts = rh.abstract_param_counts(m, (side, side, 3), 10)
    assert all(c > 0 for c in counts)


@pytest.mark.parametrize("key, value, match", [
    ("g_attention", 12, "g_attention"),
    ("d_attention", 5, "d_attention"),
    ("g_conv_dim", 0, "g_conv_dim"),
    ("shared_dim", -1, "shared_dim"),
])
def test_bad_config_values_are_refused_by_name(key, value, match):
    m = _model_config(**{key: value})
    with pytest.raises(ConfigError, match=match):
        c = config_lib.default_config()
        c.model = m
        validate(c)
        build_models(m, (32, 32, 3), num_classes=10)


def test_latent_dim_must_split_into_equal_chunks():
    with pytest.raises(ConfigError, match="latent_dim"):
        build_models(_model_config(latent=81), (32, 32, 3), num_classes=10)


def test_acgan_conditioning_is_refused():
    c = config_lib.default_config()
    c.model = _model_config("acgan")
    with pytest.raises(ConfigError, match="projection"):
        validate(c)


# --- recipes ---


def test_cifar10_recipe_builds_studiogans_networks_and_its_variants():
    c = config_lib.load_config("cifar10_biggan")
    config_lib.validate(c, 1)
    assert rh.abstract_param_counts(c.model, (32, 32, 3), 10) == (9_416_196, 2_415_170)
    assert (c.n_critic, c.batch_size, c.loss, c.optim.b1, c.optim.b2, c.ema.decay) == (5, 64, "hinge", 0.5, 0.999,
                                                                                        0.9999)
    both = config_lib.load_config("cifar10_biggan:diffaug,lecam")
    assert both.augment.diffaug.policy == "color,translation,cutout"
    assert (both.reg.lecam.weight, both.reg.lecam.decay, both.reg.lecam.start) == (0.3, 0.99, 5_000)
    uncond = config_lib.load_config("cifar10_biggan:uncond")
    assert rh.abstract_param_counts(uncond.model, (32, 32, 3), 0) == (8_825_092, 2_413_250)


# StudioGAN at commit 947b35e, src/models/big_resnet.py with configs/ImageNet/BigGAN-256.yaml (128x128,
# 1000 classes, z 120, shared 128, g_conv_dim = d_conv_dim = 96, attn_g_loc [4], attn_d_loc [1], cBN G, PD D)
# and the defaults of src/config.py: trainable parameters as printed by scripts/count_reference_params.py.
IMAGENET128_COUNTS = (70_433_988, 87_982_370)


def test_imagenet128_recipe_builds_studiogans_networks():
    c = config_lib.load_config("imagenet128_biggan")
    config_lib.validate(c, 1)
    assert (c.data.source, c.data.resolution, c.data.crop) == ("tfds:imagenet2012", 128, "center")
    assert rh.abstract_param_counts(c.model, (128, 128, 3), 1000) == IMAGENET128_COUNTS
    assert (c.model.latent_dim, c.model.biggan.g_attention, c.model.biggan.d_attention) == (120, 64, 64)
    assert (c.n_critic, c.batch_size, c.num_steps, c.loss) == (2, 256, 200_000, "hinge")
    assert (c.optim.g_lr, c.optim.d_lr, c.optim.b1, c.optim.b2, c.ema.decay) == (5e-5, 2e-4, 0.0, 0.999, 0.9999)
    small = config_lib.load_config("imagenet128_biggan:runlocal")
    assert all(n < 2_000_000 for n in rh.abstract_param_counts(small.model, (128, 128, 3), 1000))


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
def test_imagenet128_recipe_runs_its_runlocal_variant_on_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    from gan_jax.loop.trainer import train_and_evaluate

    config = config_lib.load_config("imagenet128_biggan:runlocal")
    config.unlock()
    config.num_steps = 2
    config.log_every_steps = config.eval_every_steps = config.ckpt_every_steps = 2
    config.eval.num_samples = 4
    config.lock()
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 2
    for key in ("train/d_loss", "train/g_loss"):
        assert np.isfinite(summary["metrics"][key]), key
    from PIL import Image
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_00000002.png"))
    assert grid.shape == (16 * 130 + 2, 8 * 130 + 2, 3)  # 16 of the 1000 classes, a row each


def test_mnist_recipe_is_conditional_on_28x28_digits_from_a_7x7_map():
    c = config_lib.load_config("mnist_biggan")
    config_lib.validate(c, 1)
    assert "resolution" not in c.data or not c.data.resolution
    assert c.model.conditioning == "projection"
    g, d = build_models(c.model, (28, 28, 1), num_classes=10)
    y = jnp.zeros((2,), jnp.int32)
    gv = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 60)), y, train=False))
    # z of 60 in 3 chunks of 20: the first to a 7x7 map of 4 x 16 channels, two up-sampling blocks, a 1-channel conv
    assert gv["params"]["linear0"]["kernel"].shape == (20, 7 * 7 * 64)
    assert sorted(k for k in gv["params"] if k.startswith("block")) == ["block0", "block1"]
    out = jax.eval_shape(lambda v: g.apply(v, jnp.zeros((2, 60)), y, train=False), gv)
    assert out.shape == (2, 28, 28, 1)
    dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)), y, train=False))
    assert jax.eval_shape(lambda v: d.apply(v, jnp.zeros((2, 28, 28, 1)), y, train=False), dv).shape == (2,)
