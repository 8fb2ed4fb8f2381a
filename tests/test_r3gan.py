"""R3GAN networks (config E): parameter counts of R3GAN's presets, the blocks, the initialisation,
the [1, 2, 1] resampling, conditioning, bfloat16 stages and the config keys."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.core.state import count_params
from gan_jax.errors import ConfigError
from gan_jax.models import build_models, r3gan

# --- R3GAN's parameter counts, from the layers of its code (R3GAN/Networks.py, train.py presets) ---
# Residual block of C channels: 1x1 conv C -> E*C, grouped 3x3 conv E*C -> E*C in `card` groups
# (each output channel sees E*C / card inputs), 1x1 conv E*C -> C, all without bias; two biased
# activations of E*C biases each.


def _block(c, card, e=2):
    expanded = e * c
    return c * expanded + 3 * 3 * (expanded // card) * expanded + expanded * c + 2 * expanded


def _g_count(widths, cards, blocks, z_dim, embed=0, classes=0, channels=3, side=4):
    count = side * side * widths[0] + (z_dim + embed) * widths[0]  # generative basis: 4x4xC basis, linear (no bias)
    count += sum(b * _block(w, k) for w, k, b in zip(widths, cards, blocks))
    count += sum(a * b for a, b in zip(widths, widths[1:]) if a != b)  # 1x1 channel changes before up-sampling
    count += widths[-1] * channels  # aggregation 1x1 conv to the image
    return count + classes * embed  # the label embedding (linear on one-hot labels, no bias)


def _d_count(widths, cards, blocks, out_dim, classes=0, channels=3, side=4):
    widths, cards, blocks = widths[::-1], cards[::-1], blocks[::-1]  # D runs from the highest resolution
    count = channels * widths[0]  # extraction 1x1 conv
    count += sum(b * _block(w, k) for w, k, b in zip(widths, cards, blocks))
    count += sum(a * b for a, b in zip(widths, widths[1:]) if a != b)  # 1x1 channel changes after down-sampling
    count += side * side * widths[-1] + widths[-1] * out_dim  # depthwise 4x4 basis, linear (no bias)
    return count + classes * out_dim  # the label embedding, of the linear layer's out_dim


# CIFAR10 preset of train.py: widths 3/4 * 1024 on 4 stages, 2 blocks, cardinality 3 * 32, z 64, --cond=1
# (G embedding = z dim, D embedding = WidthPerStage[0]), 10 classes.
CIFAR_WIDTHS, CIFAR_CARDS, CIFAR_BLOCKS = [768] * 4, [96] * 4, [2] * 4
CIFAR_G = _g_count(CIFAR_WIDTHS, CIFAR_CARDS, CIFAR_BLOCKS, z_dim=64, embed=64, classes=10)
CIFAR_D = _d_count(CIFAR_WIDTHS, CIFAR_CARDS, CIFAR_BLOCKS, out_dim=768, classes=10)
# FFHQ-256 preset (unconditional): widths 3/4 * [1024 x4, 512, 256, 128], cardinality 3 * [32 x4, 16, 8, 4].
FFHQ_WIDTHS, FFHQ_CARDS, FFHQ_BLOCKS = [768] * 4 + [384, 192, 96], [96] * 4 + [48, 24, 12], [2] * 7
FFHQ_G = _g_count(FFHQ_WIDTHS, FFHQ_CARDS, FFHQ_BLOCKS, z_dim=64)
FFHQ_D = _d_count(FFHQ_WIDTHS, FFHQ_CARDS, FFHQ_BLOCKS, out_dim=1)


def _init(module, seed, *args, **kwargs):
    """module.init, compiled as one program (much faster than op by op)."""
    return jax.jit(functools.partial(module.init, **kwargs))(jax.random.key(seed), *args)


def _apply(module, variables, *args, **kwargs):
    return jax.jit(functools.partial(module.apply, **kwargs))(variables, *args)


def _forward(g, d, z, image_shape):
    """G and D initialised (seeds 1, 2) and applied in inference mode: G's variables, its images (checked to be
    `image_shape` a sample), D's variables; D's output is checked to be one score a sample."""
    gv = _init(g, 1, z, train=False)
    x = _apply(g, gv, z, train=False)
    assert x.shape == (z.shape[0], *image_shape)
    dv = _init(d, 2, x, train=False)
    assert _apply(d, dv, x, train=False).shape == (z.shape[0],)
    return gv, x, dv


def _model_config(widths, cardinality, blocks="2", conditioning="none", latent=64, **extra):
    m = config_lib.default_config().model
    m.generator = m.discriminator = "r3gan"
    m.latent_dim = latent
    m.conditioning = conditioning
    m.r3gan.widths, m.r3gan.cardinality, m.r3gan.blocks = widths, cardinality, blocks
    for key, value in extra.items():
        m.r3gan[key] = value
    return m




def test_reference_counts_are_the_published_ones():
    assert (CIFAR_G, CIFAR_D) == (20_781_952, 21_280_512)  # "about 20.8 M / 21.3 M"
    assert (FFHQ_G, FFHQ_D) == (23_057_952, 23_009_568)  # R3GAN Table 1, config E: 23.058 M / 23.010 M
    assert round(FFHQ_G / 1e6, 3) == 23.058 and round(FFHQ_D / 1e6, 3) == 23.010


def test_cifar10_conditional_preset_matches_r3gan_count():
    m = _model_config("768,768,768,768", "96", "2", conditioning="projection")
    assert rh.abstract_param_counts(m, (32, 32, 3), 10) == (CIFAR_G, CIFAR_D)


def test_ffhq256_preset_matches_r3gan_count():
    m = _model_config("768,768,768,768,384,192,96", "96,96,96,96,48,24,12", "2", bf16_stages=4)
    assert rh.abstract_param_counts(m, (256, 256, 3), 0) == (FFHQ_G, FFHQ_D)


def test_block_parameters_and_grouped_kernel():
    block = r3gan.ResidualBlock(cardinality=96, expansion=2, total_blocks=8)
    v = jax.eval_shape(lambda: block.init(jax.random.key(0), jnp.zeros((1, 4, 4, 768))))
    p = v["params"]
    assert p["grouped"]["kernel"].shape == (3, 3, 1536 // 96, 1536)  # 16 inputs per output channel
    assert p["expand"]["kernel"].shape == (1, 1, 768, 1536) and p["project"]["kernel"].shape == (1, 1, 1536, 768)
    assert count_params(p) == 768 * 1536 + 9 * 16 * 1536 + 1536 * 768 + 2 * 1536 == _block(768, 96)


def test_a_fresh_block_is_the_identity():
    block = r3gan.ResidualBlock(cardinality=4, expansion=2, total_blocks=3)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    v = _init(block, 1, x)
    np.testing.assert_array_equal(np.asarray(v["params"]["project"]["kernel"]), 0.0)
    np.testing.assert_array_equal(np.asarray(_apply(block, v, x)), np.asarray(x))


def test_initialisation_statistics():
    total = 8
    block = r3gan.ResidualBlock(cardinality=16, expansion=2, total_blocks=total)
    p = _init(block, 0, jnp.zeros((1, 4, 4, 128)))["params"]
    gain = math.sqrt(2 / (1 + 0.2**2)) * total ** (-1 / 4)  # activation gain x L^(-1 / (2 * 3 - 2))
    expand, grouped = np.asarray(p["expand"]["kernel"]), np.asarray(p["grouped"]["kernel"])
    assert expand.std() == pytest.approx(gain / math.sqrt(128), rel=0.03)  # fan-in: 128 inputs
    assert grouped.std() == pytest.approx(gain / math.sqrt(9 * 256 // 16), rel=0.03)  # fan-in: 3 * 3 * 16
    assert abs(expand.mean()) < 0.05 * expand.std()
    for name in ("act_1", "act_2"):
        np.testing.assert_array_equal(np.asarray(p[name]["bias"]), 0.0)

    m = _model_config("256,256", "16", "1", conditioning="projection")
    g, d = build_models(m, (8, 8, 3), num_classes=10)
    y = jnp.arange(4) % 10
    gp = _init(g, 1, jnp.zeros((4, 64)), y=y, train=False)["params"]
    dp = _init(d, 2, jnp.zeros((4, 8, 8, 3)), y=y, train=False)["params"]
    assert np.asarray(gp["basis"]["basis"]).std() == pytest.approx(1.0, rel=0.05)  # N(0, 1) basis
    assert np.asarray(gp["basis"]["kernel"]).std() == pytest.approx(1 / math.sqrt(64 + 64), rel=0.05)
    assert np.asarray(gp["embed"]["embedding"]).std() == pytest.approx(1 / math.sqrt(10), rel=0.15)
    assert np.asarray(dp["basis"]["basis"]).std() == pytest.approx(1 / 4, rel=0.05)  # depthwise 4x4: fan-in 16
    assert np.asarray(dp["basis"]["kernel"]).std() == pytest.approx(1 / math.sqrt(256), rel=0.03)
    # D's label embedding: gain 1 / sqrt(embedding dim) over fan-in 10.
    assert np.asarray(dp["embed"]["embedding"]).std() == pytest.approx(1 / math.sqrt(256) / math.sqrt(10), rel=0.05)
    assert np.asarray(dp["from_image"]["kernel"]).std() == pytest.approx(1 / math.sqrt(3), rel=0.1)


def _upfirdn_numpy(x, kernel, up, down, pad0, pad1, gain):
    """upfirdn2d on [H, W]: insert zeros, pad, convolve with the (flipped) 2-D kernel, keep every down-th."""
    h, w = x.shape
    spread = np.zeros((h * up, w * up))
    spread[::up, ::up] = x
    spread = np.pad(spread, ((pad0, pad1), (pad0, pad1)))
    f = (kernel * gain)[::-1, ::-1]
    kh, kw = f.shape
    out = np.array([[np.sum(spread[i:i + kh, j:j + kw] * f) for j in range(spread.shape[1] - kw + 1)]
                    for i in range(spread.shape[0] - kh + 1)])
    return out[::down, ::down]


def test_resampling_matches_a_hand_computation():
    taps = np.array([1.0, 3.0, 3.0, 1.0])  # [1, 2, 1] convolved with [1, 1]
    kernel = np.outer(taps, taps) / np.outer(taps, taps).sum()
    np.testing.assert_allclose(r3gan.lowpass_taps(), taps / 8)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    up = np.asarray(r3gan.upsample2x(jnp.asarray(x)))
    down = np.asarray(r3gan.downsample2x(jnp.asarray(x)))
    assert up.shape == (2, 12, 12, 3) and down.shape == (2, 3, 3, 3)
    for b in range(2):
        for c in range(3):
            # StyleGAN's upsample2d / downsample2d paddings for a 4-tap filter and factor 2.
            np.testing.assert_allclose(up[b, :, :, c], _upfirdn_numpy(x[b, :, :, c], kernel, 2, 1, 2, 1, 4.0),
                                       atol=1e-5)
            np.testing.assert_allclose(down[b, :, :, c], _upfirdn_numpy(x[b, :, :, c], kernel, 1, 2, 1, 1, 1.0),
                                       atol=1e-5)
    # By hand, per axis: up-sampled x_i becomes (x_{i-1} + 3 x_i) / 4, (3 x_i + x_{i+1}) / 4 (zeros outside);
    # down-sampled, (x_{2i-1} + 3 x_{2i} + 3 x_{2i+1} + x_{2i+2}) / 8.
    np.testing.assert_allclose(np.asarray(r3gan.upsample2x(jnp.ones((1, 1, 1, 1)))), np.full((1, 2, 2, 1), 9 / 16))
    np.testing.assert_allclose(np.asarray(r3gan.downsample2x(jnp.ones((1, 2, 2, 1)))), np.full((1, 1, 1, 1), 36 / 64))


def test_grouped_convolution_implementations_agree():
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 12))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 6))
    conv = jax.jit(r3gan.grouped_conv, static_argnums=(2, 3))
    native, split = conv(x, kernel, 3, "native"), conv(x, kernel, 3, "split")
    np.testing.assert_allclose(np.asarray(split), np.asarray(native), atol=1e-4)
    # Group g's outputs read only group g's inputs: zeroing group 0's inputs leaves groups 1, 2 as they were.
    masked = conv(x.at[..., :4].set(0.0), kernel, 3, "split")
    np.testing.assert_allclose(np.asarray(masked[..., 2:]), np.asarray(native[..., 2:]), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(masked[..., :2]), 0.0)


def _tiny(conditioning="none", shape=(8, 8, 3), classes=0, **extra):
    m = _model_config("16,8", "2,1", "1", conditioning=conditioning, latent=4, **extra)
    return m, build_models(m, shape, num_classes=classes)


@pytest.mark.slow
def test_shapes_and_non_power_of_two_images():
    _, (g, d) = _tiny()
    z = jax.random.normal(jax.random.key(0), (3, 4))
    _forward(g, d, z, (8, 8, 3))
    # 6x6 data on the 8x8 network: G's centre crop, D's padding with -1 (black).
    _, (g6, d6) = _tiny(shape=(6, 6, 1))
    x6 = _apply(g6, _init(g6, 1, z, train=False), z, train=False)
    assert x6.shape == (3, 6, 6, 1)
    dv6 = _init(d6, 2, x6, train=False)
    padded = jnp.pad(x6, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-1.0)
    full = r3gan.R3GANDiscriminator(widths=(16, 8), blocks=(1, 1), cardinality=(2, 1))
    np.testing.assert_allclose(np.asarray(_apply(d6, dv6, x6, train=False)),
                               np.asarray(_apply(full, dv6, padded, train=False)), rtol=1e-6)
    with pytest.raises(ConfigError, match="model.r3gan.widths"):
        g16 = _tiny(shape=(16, 16, 3))[1][0]
        jax.eval_shape(lambda: g16.init(jax.random.key(0), z, train=False))


def test_a_7x7_base_makes_28x28_networks():
    """base_side 7: three stages 7x7, 14x14, 28x28 for MNIST's own size (no padding, no crop); the bases hold
    7x7 instead of 4x4 weights, the rest of the count is R3GAN's."""
    widths, cards = (32, 16, 8), (4, 2, 1)
    m = _model_config("32,16,8", "4,2,1", latent=16, base_side=7)
    g, d = build_models(m, (28, 28, 1), None, 0)
    gv, _, dv = _forward(g, d, jax.random.normal(jax.random.key(0), (2, 16)), (28, 28, 1))
    assert gv["params"]["basis"]["basis"].shape == (7, 7, 32)
    assert dv["params"]["basis"]["basis"].shape == (7, 7, 32)
    assert count_params(gv["params"]) == _g_count(widths, cards, [2] * 3, z_dim=16, channels=1, side=7)
    assert count_params(dv["params"]) == _d_count(widths, cards, [2] * 3, out_dim=1, channels=1, side=7)
    m.r3gan.base_side = 0
    with pytest.raises(ConfigError, match="base_side"):
        r3gan.settings(m)


@pytest.mark.slow
def test_conditioning_changes_the_output():
    _, (g, d) = _tiny("projection", classes=3)
    z = jnp.tile(jax.random.normal(jax.random.key(0), (1, 4)), (3, 1))
    y = jnp.array([0, 1, 2])
    gv = _init(g, 1, z, y=y, train=False)
    x = _apply(g, gv, z, y=y, train=False)
    assert float(jnp.abs(x[0] - x[1]).max()) > 1e-3 and float(jnp.abs(x[1] - x[2]).max()) > 1e-3
    dv = _init(d, 2, x, y=y, train=False)
    same = jnp.tile(x[:1], (3, 1, 1, 1))
    # The projection: each logit is the 4x4 basis' linear output dotted with its label's embedding.
    logits, captured = _apply(d, dv, same, y=y, train=False, capture_intermediates=True, mutable=["intermediates"])
    assert logits.shape == (3,) and len(set(np.round(np.asarray(logits), 6).tolist())) == 3
    features = captured["intermediates"]["basis"]["__call__"][0]
    assert features.shape == (3, 16)  # d_embed_dim defaults to the 4x4 stage's width
    expected = np.sum(np.asarray(features) * np.asarray(dv["params"]["embed"]["embedding"])[np.asarray(y)], axis=-1)
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_jitted_forward_backward_with_r1():
    m, (g, d) = _tiny("projection", classes=3)
    z = jax.random.normal(jax.random.key(0), (4, 4))
    y = jnp.array([0, 1, 2, 0])
    gp = _init(g, 1, z, y=y, train=False)["params"]
    dp = _init(d, 2, jnp.zeros((4, 8, 8, 3)), y=y, train=False)["params"]

    def losses(gp, dp):
        fake = g.apply({"params": gp}, z, y=y, train=True)
        critic = lambda x: jnp.sum(d.apply({"params": dp}, x, y=y, train=True))  # noqa: E731
        r1 = jnp.sum(jax.grad(critic)(fake) ** 2)
        return jnp.mean(jax.nn.softplus(-d.apply({"params": dp}, fake, y=y, train=True))) + r1

    g_grads, d_grads = jax.jit(jax.grad(losses, argnums=(0, 1)))(gp, dp)
    for grads in (g_grads, d_grads):
        leaves = jax.tree.leaves(grads)
        assert all(bool(jnp.all(jnp.isfinite(v))) for v in leaves)
        assert any(float(jnp.abs(v).max()) > 0 for v in leaves)
    # The zero-initialised last convs of the blocks get gradients from the first step.
    assert float(jnp.abs(g_grads["stage_0_block_0"]["project"]["kernel"]).max()) > 0
    assert float(jnp.abs(d_grads["stage_1_block_0"]["project"]["kernel"]).max()) > 0


@pytest.mark.slow
def test_bfloat16_stages_compute_in_bfloat16_with_float32_parameters():
    _, (g32, d32) = _tiny()
    _, (g16, d16) = _tiny(bf16_stages=1)
    z = jax.random.normal(jax.random.key(0), (2, 4))
    gv = _init(g32, 1, z, train=False)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(jax.eval_shape(
        lambda: g16.init(jax.random.key(1), z, train=False))))
    x32, x16 = _apply(g32, gv, z, train=False), _apply(g16, gv, z, train=False)
    assert x16.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(x16), np.asarray(x32), atol=0.05 * float(jnp.abs(x32).max()))
    assert "bf16" in str(jax.make_jaxpr(lambda z: g16.apply(gv, z, train=False))(z))
    assert "bf16" not in str(jax.make_jaxpr(lambda z: g32.apply(gv, z, train=False))(z))
    dv = _init(d32, 2, x32, train=False)
    assert jax.eval_shape(lambda: d16.apply(dv, x32, train=False)).dtype == jnp.float32
    assert "bf16" in str(jax.make_jaxpr(lambda x: d16.apply(dv, x, train=False))(x32))


def test_config_keys_from_the_command_line_and_their_checks():
    c = config_lib.default_config()
    c.model.generator = c.model.discriminator = "r3gan"
    config_lib.apply_overrides(c, {"model.r3gan.widths": "64,64,32,16", "model.r3gan.blocks": "1",
                                   "model.r3gan.cardinality": "8,8,4,2"})
    s = r3gan.settings(c.model)
    assert s["widths"] == (64, 64, 32, 16) and s["blocks"] == (1, 1, 1, 1) and s["cardinality"] == (8, 8, 4, 2)
    config_lib.apply_overrides(c, {"model.r3gan.cardinality": "7"})
    with pytest.raises(ConfigError, match="model.r3gan.cardinality"):
        r3gan.validate(c.model, c)
    config_lib.apply_overrides(c, {"model.r3gan.cardinality": "8", "model.r3gan.blocks": "1,2"})
    with pytest.raises(ConfigError, match="model.r3gan.blocks"):
        r3gan.validate(c.model, c)
    config_lib.apply_overrides(c, {"model.r3gan.blocks": "1", "model.conditioning": "acgan"})
    with pytest.raises(ConfigError, match="projection"):
        r3gan.validate(c.model, c)
    config_lib.apply_overrides(c, {"model.conditioning": "none", "model.r3gan.bf16_stages": "5"})
    with pytest.raises(ConfigError, match="bf16_stages"):
        r3gan.validate(c.model, c)


def test_stacked_mnist_r3gan_variants_and_its_table_sweep():
    from gan_jax.tools.sweep.spec import expand

    narrow = config_lib.load_config("stacked_mnist_r3gan")
    assert narrow.model.generator == "r3gan" and narrow.loss == "rpgan" and narrow.optim.b1 == 0.0
    mnist = config_lib.load_config("mnist_r3gan")  # its networks, objective and optimizer, 3 channels
    assert narrow.model.to_dict() == mnist.model.to_dict() and narrow.reg.to_dict() == mnist.reg.to_dict()
    assert narrow.optim.to_dict() == mnist.optim.to_dict() and narrow.num_steps == mnist.num_steps
    assert (narrow.batch_size, narrow.ema.to_dict()) == (mnist.batch_size, mnist.ema.to_dict())
    dcgan = config_lib.load_config("stacked_mnist_r3gan:dcgan_nets,reg.r1.weight=5")
    stacked = config_lib.load_config("stacked_mnist_dcgan")
    assert dcgan.model.generator == dcgan.model.discriminator == "dcgan" and dcgan.model.to_dict() == stacked.model.to_dict()
    assert dcgan.optim.to_dict() == stacked.optim.to_dict() and dcgan.optim.b1 == 0.5
    assert dcgan.data.source == "stacked:mnist" and dcgan.ema.decay == 0.0 and dcgan.g_noise == "fresh"
    # An override after the flag wins over the variant's gamma 10.
    assert (dcgan.loss, dcgan.reg.r1.weight, dcgan.reg.r2.weight, dcgan.reg.r1.every, dcgan.reg.r2.every,
            dcgan.num_steps) == ("rpgan", 5.0, 10.0, 16, 16, 3000)
    with pytest.raises(ValueError, match="dcgan_nets"):
        config_lib.load_config("stacked_mnist_r3gan:dcgan_net")

    runs = expand(str(config_lib.resolve_config_path("stacked_mnist_r3gan:dcgan_nets")), "3")
    assert len(runs) == 12 and [r["seed"] for r in runs] == [0] * 4 + [1] * 4 + [2] * 4
    rows = set()
    for r in runs:  # R3GAN's Table 2: both losses, R1 always, R2 in half the rows
        c = config_lib.load_config("stacked_mnist_r3gan:dcgan_nets")
        config_lib.apply_overrides(c, {k: str(v) for k, v in r.items()})
        assert c.reg.r1.weight == 10.0
        rows.add((c.loss, c.reg.r2.weight))
    assert rows == {("rpgan", 10.0), ("non_saturating", 10.0), ("rpgan", 0.0), ("non_saturating", 0.0)}


@pytest.mark.parametrize("variant, widths, cards, side, counts", [
    ("", (64, 32, 16), (8, 4, 2), 7, (118_224, 114_192)),  # 7x7 -> 28x28, MNIST's own size
    (":base4", (64, 64, 32, 8), (8, 8, 4, 1), 4, (179_784, 175_752)),  # R3GAN's 4x4 -> 32x32
])
def test_mnist_r3gan_networks_and_their_hand_counted_parameters(variant, widths, cards, side, counts):
    c = config_lib.load_config("mnist_r3gan" + variant)
    assert c.model.r3gan.base_side == side and c.model.r3gan.blocks == "2"
    expected = (_g_count(widths, cards, [2] * len(widths), z_dim=64, channels=1, side=side),
                _d_count(widths, cards, [2] * len(widths), out_dim=1, channels=1, side=side))
    assert expected == counts
    g, d = build_models(c.model, (28, 28, 1), None, 0)
    gv, _, dv = _forward(g, d, jnp.zeros((1, 64)), (28, 28, 1))  # base4's 32x32 output is cropped to 28x28
    assert (count_params(gv["params"]), count_params(dv["params"])) == counts


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
def test_stacked_mnist_r3gan_on_dcgan_networks_trains_with_lazy_r1_and_r2(tmp_path):
    import json

    import tensorflow_datasets as tfds

    from gan_jax.loop.trainer import train_and_evaluate

    config = config_lib.load_config("stacked_mnist_r3gan:dcgan_nets,runlocal,data.num_train=64,reg.r1.every=2,"
                                    "reg.r2.every=2")
    config.unlock()
    config.num_steps = 3
    config.steps_per_dispatch = 1
    config.log_every_steps = 1
    config.eval_every_steps = config.ckpt_every_steps = 3
    config.lock()
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 3 and np.isfinite(summary["metrics"]["train/d_loss"])
    rows = {row["step"]: row for row in map(json.loads, open(tmp_path / "metrics.jsonl")) if "train/r1" in row}
    # Lazy with k = 2: D updates 0 and 2 (logged at steps 1 and 3) compute R1 and R2; update 1 does not
    # and logs the values of update 0.
    for step in (1, 3):
        assert rows[step]["train/r1"] > 0 and rows[step]["train/r2"] > 0
    assert rows[2]["train/r1"] == rows[1]["train/r1"] and rows[2]["train/r2"] == rows[1]["train/r2"]


def test_mnist_r3gan_keeps_r3gans_block_structure_and_its_sweeps_group_as_documented():
    from gan_jax.tools.sweep import vmap
    from gan_jax.tools.sweep.spec import expand

    c = config_lib.load_config("mnist_r3gan")
    widths = [int(w) for w in c.model.r3gan.widths.split(",")]
    groups = [int(g) for g in c.model.r3gan.cardinality.split(",")]
    # Two blocks a stage; the 3x3 convs in groups of 16 of their 2 x width channels (one group below 16), as
    # R3GAN's presets (CIFAR-10: 768 x 2 / 96 = 16).
    assert c.model.r3gan.blocks == "2" and c.model.r3gan.expansion == 2
    assert [w * 2 // g for w, g in zip(widths, groups)] == [min(16, w * 2) for w in widths]
    # Adam's beta2 ramps from 0.9 to 0.99 over the run, as R3GAN's over its 20 Mimg; the learning rates are
    # constant, D's twice G's (both measured departures).
    assert (c.optim.b1, c.optim.b2, c.optim.b2_end, c.schedule.steps) == (0.0, 0.9, 0.99, c.num_steps)
    assert (c.optim.schedule, c.optim.g_lr, c.optim.d_lr) == ("constant", 2e-4, 4e-4)
    # 8,800 steps of 16 images, the EMA's half-life growing to 1,000 images: 62.5 steps at the end.
    assert (c.batch_size, c.num_steps, c.ema.half_life_images, c.ema.half_life_images_end) == (16, 8_800, 0.0, 1_000)
    # `decay` is the recipe before: both rates 2e-4 -> 5e-5 on R3GAN's cosine, the EMA to 4,000 images;
    # nothing else differs.
    for name in ("mnist_r3gan:decay", "stacked_mnist_r3gan:decay"):
        old = config_lib.load_config(name)
        assert (old.optim.schedule, old.optim.g_lr, old.optim.d_lr) == ("cosine", 2e-4, 2e-4)
        assert old.optim.g_lr * old.optim.lr_end_factor == pytest.approx(5e-5)
        assert old.ema.half_life_images_end == 4_000
    old = config_lib.load_config("mnist_r3gan:decay")
    same = ("model", "reg", "loss", "batch_size", "num_steps", "data", "schedule")
    assert {k: old.to_dict()[k] for k in same} == {k: c.to_dict()[k] for k in same}
    assert {k: v for k, v in old.optim.items() if "lr" not in k and k != "schedule"} == \
        {k: v for k, v in c.optim.items() if "lr" not in k and k != "schedule"}
    # R1 and R2 at gamma 25, lazily on every 4th D step.
    assert (c.reg.r1.weight, c.reg.r2.weight, c.reg.r1.every, c.reg.r2.every) == (25.0, 25.0, 4, 4)
    # `batch64` is the earlier schedule (2,000 steps of 64 at a constant rate, the EMA to 32,000 images, gamma 5)
    # on the same networks and objective; `base4` runs on it, as measured.
    for name in ("mnist_r3gan:batch64", "mnist_r3gan:base4", "stacked_mnist_r3gan:batch64"):
        old = config_lib.load_config(name)
        assert (old.batch_size, old.num_steps, old.schedule.steps, old.optim.schedule,
                old.ema.half_life_images_end) == (64, 2_000, 2_000, "constant", 32_000)
        assert old.optim.g_lr == old.optim.d_lr == 2e-4  # one rate for G and D, as measured
        assert (old.reg.r1.weight, old.reg.r2.weight, old.reg.r1.every, old.reg.r2.every) == (5.0, 5.0, 4, 4)
        recipe_at_gamma5 = c.reg.to_dict()
        recipe_at_gamma5["r1"]["weight"] = recipe_at_gamma5["r2"]["weight"] = 5.0
        assert old.reg.to_dict() == recipe_at_gamma5  # every other regulariser setting as the recipe's
        assert old.loss == c.loss and old.optim.b2_end == c.optim.b2_end
    assert config_lib.load_config("mnist_r3gan:batch64").model.to_dict() == c.model.to_dict()

    spec = str(config_lib.resolve_config_path("mnist_r3gan"))
    gammas = expand(spec, "gamma")
    assert [(r["reg.r1.weight"], r["reg.r2.weight"]) for r in gammas] == [(1.0, 1.0), (5.0, 5.0), (25.0, 25.0)]
    signatures = {vmap.program_signature(vmap.run_config(spec, r)) for r in gammas}
    assert len(signatures) == 1  # one vmapped program
    shapes = expand(spec, "widths")
    for r in shapes:  # the documented widths probes ran on R3GAN's 4x4 bases
        w = [int(x) for x in r["model.r3gan.widths"].split(",")]
        groups = [int(g) for g in r["model.r3gan.cardinality"].split(",")]
        assert [x * 2 // g for x, g in zip(w, groups)] == [min(16, x * 2) for x in w]
        assert r["model.r3gan.base_side"] == 4 and len(w) == 4
    assert len({vmap.program_signature(vmap.run_config(spec, r)) for r in shapes}) == len(shapes)
    with pytest.raises(ValueError, match="'gamma' and 'widths'"):
        expand(spec, "width")
    for name in ("mnist_r3gan:narrow", "stacked_mnist_r3gan:narrow"):  # the recipe of the collapse measurements
        old = config_lib.load_config(name)
        r = old.model.r3gan
        assert (r.widths, r.blocks, r.cardinality, r.base_side) == ("32,32,16,8", "1", "4,4,2,1", 4)
        assert (old.reg.r1.weight, old.reg.r2.weight, old.reg.r1.every) == (0.05, 0.05, 1)
        assert (old.optim.b2, old.optim.b2_end) == (0.99, -1)
        assert (old.ema.decay, old.num_steps) == (0.999, 20_000)
        assert old.optim.g_lr == old.optim.d_lr == 2e-4
