"""BigGAN-deep networks ("biggan_deep"): PyTorch-StudioGAN's parameter counts, its outputs for our parameters
(the fixture made by scripts/make_biggan_deep_fixture.py), and the structure the reference implies."""

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
from gan_jax.models import build_models
from gan_jax.models.biggan import ConditionalBatchNorm
from gan_jax.models.biggan_deep import BigGANDeepDiscriminator, BigGANDeepGenerator

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "biggan_deep_reference.npz"
CONFIGS = ("s32", "s64")


def _model_config(conditioning="projection", latent=128, **biggan):
    m = config_lib.default_config().model
    m.generator = m.discriminator = "biggan_deep"
    m.latent_dim = latent
    m.conditioning = conditioning
    m.biggan.g_conv_dim = m.biggan.d_conv_dim = 128
    for key, value in biggan.items():
        m.biggan[key] = value
    return m


# StudioGAN at commit 947b35e, configs/CIFAR10/BigGAN-Deep.yaml (backbone big_resnet_deep_legacy,
# g_conv_dim = d_conv_dim = 128, z 128, shared 128, g_depth = d_depth = 2, attention after G's 2nd and D's
# 1st resolution), its Generator and Discriminator built on CPU and counted as PyTorch counts trainable
# parameters (sum of numel over requires_grad parameters; spectral-norm u, v and BN running statistics are
# buffers); unconditional: g_cond_mtd = d_cond_mtd = "W/O".
@pytest.mark.parametrize("conditioning, classes, expected", [
    ("projection", 10, (7_762_948, 2_908_930)),
    ("none", 0, (5_336_836, 2_903_810)),
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


def _images(pixels):  # as scripts/make_biggan_deep_fixture.py makes D's inputs
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


@functools.lru_cache(maxsize=None)
def _reference_outputs(name):
    fixture = np.load(FIXTURE)
    side, classes, z_dim, g_conv, d_conv, shared, attention, depth, stride = (int(v) for v in fixture[f"{name}/config"])
    g = BigGANDeepGenerator((side, side, 3), g_conv, shared, attention, classes, depth)
    d = BigGANDeepDiscriminator(d_conv, attention, classes, depth)
    g_vars, d_vars = _unflatten(fixture, f"{name}/g"), _unflatten(fixture, f"{name}/d")
    z, y = jnp.asarray(fixture[f"{name}/z"]), jnp.asarray(fixture[f"{name}/y"])
    x = jnp.asarray(_images(fixture[f"{name}/pixels"]))
    assert z.shape[1] == z_dim
    out = {}
    for mode in ("train", "eval"):
        train = mode == "train"
        g_apply = jax.jit(functools.partial(g.apply, train=train, mutable=["batch_stats", "spectral"]))
        d_apply = jax.jit(functools.partial(d.apply, train=train, mutable=["spectral"]))
        image = np.asarray(g_apply(g_vars, z, y)[0])[:, ::stride, ::stride]
        out[f"g_{mode}"] = (image, fixture[f"{name}/out/g_{mode}"])
        out[f"d_{mode}"] = (np.asarray(d_apply(d_vars, x, y)[0]), fixture[f"{name}/out/d_{mode}"])
    return out


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("output", ["g_train", "g_eval", "d_train", "d_eval"])
def test_outputs_equal_studiogan_for_the_same_parameters(config, output):
    ours, reference = _reference_outputs(config)[output]
    assert ours.shape == reference.shape
    scale = np.max(np.abs(reference))
    assert scale > 1e-2  # the comparison is not between zeros
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5 * max(scale, 1.0))


def test_the_fixture_exercises_attention_conditioning_and_both_shortcuts():
    fixture = np.load(FIXTURE)
    for name in CONFIGS:
        assert float(fixture[f"{name}/g/params/attention/sigma"]) != 0
        assert float(fixture[f"{name}/d/params/attention/sigma"]) != 0
        assert len(set(fixture[f"{name}/y"].tolist())) > 1
    # 64x64: G's last block of a resolution narrows (16 -> 8 channels, the channel-dropping shortcut), D's first
    # block of one widens (a conv0 that adds channels)
    assert fixture["s64/g/params/block1/conv4/kernel"].shape[-2:] == (8, 16)
    assert fixture["s64/d/params/block0/conv0/kernel"].shape[-2:] == (2, 2)


# --- structure ---


def test_every_block_is_conditioned_on_the_whole_z_and_the_shared_embedding():
    g = BigGANDeepGenerator((32, 32, 3), conv_dim=4, shared_dim=8, attention=0, num_classes=3)
    z = jax.random.normal(jax.random.key(0), (2, 20))
    y = jnp.array([0, 2])
    variables = g.init(jax.random.key(1), z, y, train=False)
    seen = {}

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, ConditionalBatchNorm):
            seen[(context.module.parent.name, context.module.name)] = np.asarray(args[1])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        g.apply(variables, z, y, train=False)
    shared = np.asarray(variables["params"]["shared"]["embedding"])[np.asarray(y)]
    assert len(seen) == 6 * 4  # 3 resolutions x 2 blocks x 4 conditional batch norms
    for c in seen.values():
        np.testing.assert_array_equal(c, np.concatenate([shared, z], 1))
    assert variables["params"]["linear0"]["kernel"].shape == (8 + 20, 16 * 4 * 4)


def test_blocks_per_resolution_sets_the_depth():
    m = _model_config(g_conv_dim=8, d_conv_dim=8)
    m.biggan_deep.blocks_per_resolution = 3
    g, d = build_models(m, (32, 32, 3), num_classes=10)
    y = jnp.zeros((2,), jnp.int32)
    gv = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 128)), y, train=False))
    dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), y, train=False))
    assert sum(k.startswith("block") for k in gv["params"]) == 9
    assert sum(k.startswith("block") for k in dv["params"]) == 9
    out = jax.eval_shape(lambda v: g.apply(v, jnp.zeros((2, 128)), y, train=False), gv)
    assert out.shape == (2, 32, 32, 3)


def test_unconditional_pair_runs_and_is_in_range():
    m = _model_config("none", latent=32, g_conv_dim=8, d_conv_dim=8)
    g, d = build_models(m, (32, 32, 3))
    z = jax.random.normal(jax.random.key(0), (4, 32))
    gv = g.init(jax.random.key(1), z, train=False)
    images, _ = g.apply(gv, z, train=True, mutable=["batch_stats", "spectral"])
    assert images.shape == (4, 32, 32, 3) and float(jnp.max(jnp.abs(images))) <= 1.0
    dv = d.init(jax.random.key(2), images, train=False)
    assert d.apply(dv, images, train=False).shape == (4,)


@pytest.mark.parametrize("key, value, match", [
    ("g_attention", 4, "g_attention"),
    ("d_attention", 32, "d_attention"),
    ("g_conv_dim", 0, "g_conv_dim"),
])
def test_bad_config_values_are_refused_by_name(key, value, match):
    c = config_lib.default_config()
    c.model = _model_config(**{key: value})
    with pytest.raises(ConfigError, match=match):
        config_lib.validate(c, 1)
        build_models(c.model, (32, 32, 3), num_classes=10)


def test_bad_depth_and_resolution_are_refused():
    c = config_lib.default_config()
    c.model = _model_config()
    c.model.biggan_deep.blocks_per_resolution = 0
    with pytest.raises(ConfigError, match="blocks_per_resolution"):
        config_lib.validate(c, 1)
    with pytest.raises(ConfigError, match="BigGAN-deep"):
        build_models(_model_config(), (28, 28, 1), num_classes=10)


# --- recipe ---


def test_cifar10_deep_recipe_builds_studiogans_biggan_deep():
    c = config_lib.load_config("cifar10_biggan:deep")
    config_lib.validate(c, 1)
    assert (c.model.generator, c.model.discriminator, c.model.latent_dim) == ("biggan_deep", "biggan_deep", 128)
    assert c.model.biggan_deep.blocks_per_resolution == 2
    assert rh.abstract_param_counts(c.model, (32, 32, 3), 10) == (7_762_948, 2_908_930)
    assert (c.n_critic, c.batch_size, c.loss, c.optim.g_lr, c.optim.b1, c.optim.b2, c.ema.decay, c.num_steps) == (
        5, 64, "hinge", 2e-4, 0.5, 0.999, 0.9999, 100_000)
    uncond = config_lib.load_config("cifar10_biggan:deep,uncond")
    assert rh.abstract_param_counts(uncond.model, (32, 32, 3), 0) == (5_336_836, 2_903_810)
    local = config_lib.load_config("cifar10_biggan:deep,runlocal")
    config_lib.validate(local, 1)
    build_models(local.model, (32, 32, 3), num_classes=10)
