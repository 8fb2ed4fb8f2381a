"""Image GANs: spectral norm, conditioning, DiffAugment, the ResNet SNGAN, image sources, image configs."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax import config as config_lib
from gan_jax.core.state import count_params
from gan_jax.data import DataError, get_dataset
from gan_jax.loop.trainer import train_and_evaluate
from gan_jax.models import build_models, layers, resnet
from gan_jax.objectives.augment import diffaug as augment

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _largest_singular_value(matrix):
    return np.linalg.svd(np.asarray(matrix, np.float64), compute_uv=False)[0]


def test_spectral_norm_layer_reaches_unit_sigma():
    conv = layers.SNConv(16, (3, 3))
    x = jnp.ones((2, 8, 8, 5))
    variables = conv.init(jax.random.key(0), x)
    params = {**variables["params"], "kernel": variables["params"]["kernel"] * 7.0}  # far from unit norm
    # Power iteration from a fresh random u, one iteration per training call.
    state = {"spectral": {"kernel_u": jax.random.normal(jax.random.key(3), (16,)) / 4.0}}
    for _ in range(60):
        _, state = conv.apply({"params": params, **state}, x, True, mutable=["spectral"])
    # The layer's sigma is v^T W u = |W u| with the stored u; W / sigma must have unit spectral norm.
    raw = np.asarray(params["kernel"], np.float64)
    sigma = np.linalg.norm(raw.reshape(-1, 16) @ np.asarray(state["spectral"]["kernel_u"], np.float64))
    assert abs(_largest_singular_value(raw.reshape(-1, 16) / sigma) - 1.0) < 1e-2
    # And the layer really convolves with W / sigma (inference call: no further iteration).
    out = conv.apply({"params": params, **state}, x, False)
    expected = jax.lax.conv_general_dilated(x, jnp.asarray(raw / sigma, jnp.float32), (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_spectral_norm_of_any_discriminator_params():
    rng = np.random.default_rng(0)
    params = {"Dense_0": {"kernel": jnp.asarray(rng.normal(size=(6, 9)) * 3), "bias": jnp.ones(9)},
              "Conv_0": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)))}}
    vectors = layers.init_spectral_vectors(params, jax.random.key(1), iterations=0)
    for _ in range(50):
        normalized, vectors = layers.spectral_normalize_params(params, vectors, update=True)
    for name in ("Dense_0", "Conv_0"):
        kernel = np.asarray(normalized[name]["kernel"])
        assert abs(_largest_singular_value(kernel.reshape(-1, kernel.shape[-1])) - 1.0) < 1e-2
    np.testing.assert_array_equal(normalized["Dense_0"]["bias"], params["Dense_0"]["bias"])  # biases untouched


def _model_config(**kw):
    c = config_lib.default_config()
    c.model.generator = c.model.discriminator = "sngan_resnet"
    c.model.latent_dim = 16
    c.model.g_width = 16
    c.model.d_width = 16
    for k, v in kw.items():
        c.model[k] = v
    return c.model


@pytest.mark.slow
def test_sngan_parameter_counts_and_shapes():
    # Hand counts for the paper's widths (G 256, D 128), 32x32x3, z 128:
    # G: Dense 128 -> 4*4*256 (128*4096 + 4096 = 528,384); per up-block BN 512, conv3x3 256->256
    # 589,824 + 256, BN 512, conv 590,080, 1x1 shortcut 65,536 + 256 -> 1,246,976, three of them;
    # final BN 512 and conv3x3 256->3 (6,912 + 3).
    g_expected = 528_384 + 3 * 1_246_976 + 512 + 6_915
    # D: first block conv 3->128 (3,456 + 128), conv 128->128 (147,584), shortcut 3->128 (384 + 128);
    # second block 2 x 147,584 + shortcut 16,512; blocks 3 and 4 2 x 147,584 each; linear 129.
    d_expected = (3_584 + 147_584 + 512) + (2 * 147_584 + 16_512) + 2 * (2 * 147_584) + 129
    g = resnet.SNGANGenerator((32, 32, 3), 256)
    d = resnet.SNGANDiscriminator(128)
    # Shapes only (jax.eval_shape): the paper-size networks are not worth running here.
    gv = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 128)), train=False))
    dv = jax.eval_shape(lambda: d.init(jax.random.key(1), jnp.zeros((2, 32, 32, 3)), train=False))
    assert count_params(gv["params"]) == g_expected == 4_276_739
    assert count_params(dv["params"]) == d_expected == 1_053_825
    assert jax.eval_shape(lambda v: g.apply(v, jnp.zeros((3, 128)), train=False), gv).shape == (3, 32, 32, 3)
    assert jax.eval_shape(lambda v: d.apply(v, jnp.zeros((3, 32, 32, 3)), train=False), dv).shape == (3,)
    # The 64x64 variant: G halves 4 times from its width, D doubles up to its width.
    g64, d64 = build_models(_model_config(), (64, 64, 3))
    gv = g64.init(jax.random.key(0), jnp.zeros((2, 16)), train=False)
    dv = d64.init(jax.random.key(1), jnp.zeros((2, 64, 64, 3)), train=False)
    assert g64.apply(gv, jnp.zeros((2, 16)), train=False).shape == (2, 64, 64, 3)
    assert d64.apply(dv, jnp.zeros((2, 64, 64, 3)), train=False).shape == (2,)
    with pytest.raises(ValueError, match="32x32 and 64x64"):
        resnet.SNGANGenerator((48, 48, 3)).init(jax.random.key(0), jnp.zeros((2, 128)), train=False)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["projection", "acgan"])
def test_conditional_models_respond_to_the_label(head):
    g, d = build_models(_model_config(conditioning=head), (32, 32, 3), num_classes=10)
    z = jax.random.normal(jax.random.key(0), (4, 16))
    y0, y1 = jnp.zeros(4, jnp.int32), jnp.full(4, 7, jnp.int32)
    gv = g.init(jax.random.key(1), z, y=y0, train=False)
    # Non-trivial class embeddings in the conditional BN, as after some training.
    gv = jax.tree_util.tree_map_with_path(
        lambda p, v: v + 0.3 * jax.random.normal(jax.random.key(len(str(p))), v.shape)
        if "scale" in str(p) or "offset" in str(p) else v, gv)
    out0 = g.apply(gv, z, y=y0, train=False)
    out1 = g.apply(gv, z, y=y1, train=False)
    assert float(jnp.max(jnp.abs(out0 - out1))) > 1e-3
    x = jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
    dv = d.init(jax.random.key(3), x, y=y0, train=False)
    a, b = d.apply(dv, x, y=y0, train=False), d.apply(dv, x, y=y1, train=False)
    if head == "acgan":
        assert a[1].shape == (4, 10)
        np.testing.assert_allclose(a[0], b[0])  # the ACGAN head reads the label only in the loss
    else:
        assert float(jnp.max(jnp.abs(a - b))) > 1e-4


def test_conditioning_needs_labels():
    with pytest.raises(ValueError, match="needs class labels"):
        build_models(_model_config(conditioning="projection"), (32, 32, 3), num_classes=0)


@pytest.mark.slow
def test_diffaugment_same_key_same_result_and_differentiable():
    x = jax.random.uniform(jax.random.key(0), (6, 16, 16, 3), minval=-1, maxval=1)
    policy = augment.parse_policy("color,translation,cutout")
    a = augment.apply_policy(policy, jax.random.key(5), x)
    b = augment.apply_policy(policy, jax.random.key(5), x)
    c = augment.apply_policy(policy, jax.random.key(6), x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    grad = jax.grad(lambda v: jnp.sum(augment.apply_policy(policy, jax.random.key(5), v) ** 2))(x)
    assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).sum()) > 0
    with pytest.raises(ValueError, match="unknown augmentation 'colour'"):
        augment.parse_policy("colour")


def test_translation_matches_numpy_shift():
    x = jax.random.normal(jax.random.key(0), (5, 8, 8, 2))
    key = jax.random.key(3)
    out = np.asarray(augment.translation(key, x))
    ky, kx = jax.random.split(key)
    dy = np.asarray(jax.random.randint(ky, (5,), -1, 2))
    dx = np.asarray(jax.random.randint(kx, (5,), -1, 2))
    for i in range(5):
        expected = np.zeros((8, 8, 2), np.float32)
        src = np.asarray(x[i])
        for r in range(8):
            for col in range(8):
                if 0 <= r - dy[i] < 8 and 0 <= col - dx[i] < 8:
                    expected[r, col] = src[r - dy[i], col - dx[i]]
        np.testing.assert_array_equal(out[i], expected)


def test_cutout_zeroes_a_square_of_half_the_side():
    x = jnp.ones((200, 8, 8, 1))
    out = np.asarray(augment.cutout(jax.random.key(0), x))
    zeros = (out == 0).sum(axis=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # 4x4 when inside, clipped at the borders


def _data_config(source, **kw):
    c = config_lib.default_config().data
    c.source = source
    for k, v in kw.items():
        c[k] = v
    return c


def test_digits_source_needs_no_download():
    it, spec = get_dataset(_data_config("digits", resolution=32), batch_size=16, seed=0)
    batch = next(it)
    assert spec.shape == (32, 32, 1) and spec.num_classes == 10 and spec.num_examples == 1797
    assert batch["x"].shape == (16, 32, 32, 1) and batch["label"].shape == (16,)
    assert -1.0 <= batch["x"].min() and batch["x"].max() <= 1.0
    from sklearn.datasets import load_digits

    it8, _ = get_dataset(_data_config("digits"), batch_size=4, seed=0)
    idx = it8.indices(0)[:4]
    expected = load_digits().images[idx] * (255 / 16)
    np.testing.assert_allclose((next(it8)["x"][..., 0] + 1) * 127.5, np.rint(expected), atol=1e-3)


def _write_pngs(folder: pathlib.Path, count: int, size=(12, 10), classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for i in range(count):
        sub = folder / classes[i % len(classes)]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(sub / f"img{i}.png")


def test_local_folder_with_class_subfolders(tmp_path):
    _write_pngs(tmp_path, 6)
    it, spec = get_dataset(_data_config(f"local:{tmp_path}", resolution=8), batch_size=3, seed=0)
    assert spec.shape == (8, 8, 3) and spec.num_classes == 2 and spec.extra["label_names"] == ["cat", "dog"]
    labels = next(it)["label"]
    assert set(labels.tolist()) <= {0, 1}
    # Example 0 is the first file in sorted order; its 12x10 center crop is rows 1..10, then
    # PIL bicubic 10 -> 8.
    first = sorted(p for p in tmp_path.rglob("*.png"))[0]
    raw = np.asarray(Image.open(first))[1:11]
    expected = np.asarray(Image.fromarray(raw).resize((8, 8), Image.Resampling.BICUBIC, reducing_gap=None))
    it.seek(0)
    everything = it.next_batches(2)  # both batches: all 6 examples in a permutation
    order = it.indices(0, 2)
    got = everything["x"].reshape(6, 8, 8, 3)[int(np.where(order == 0)[0][0])]
    np.testing.assert_allclose((got + 1) * 127.5, expected, atol=1e-3)


def test_local_folder_errors_name_the_file(tmp_path):
    _write_pngs(tmp_path, 4)
    bad = tmp_path / "cat" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        get_dataset(_data_config(f"local:{tmp_path}", resolution=8), batch_size=2, seed=0)
    bad.unlink()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "dog" / "big.png")
    with pytest.raises(DataError, match="different sizes.*data.resolution"):
        get_dataset(_data_config(f"local:{tmp_path}"), batch_size=2, seed=0)
    with pytest.raises(DataError, match="no image files"):
        (tmp_path / "empty").mkdir()
        get_dataset(_data_config(f"local:{tmp_path / 'empty'}"), batch_size=2, seed=0)


def test_local_npz_uint8_and_float(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images, labels=np.arange(10) % 3)
    it, spec = get_dataset(_data_config(f"local:{tmp_path / 'a.npz'}"), batch_size=5, seed=1)
    assert spec.shape == (8, 8, 1) and spec.num_classes == 3
    idx = it.indices(0)
    batch = next(it)
    np.testing.assert_allclose(batch["x"][..., 0], images[idx] / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(batch["label"], (np.arange(10) % 3)[idx])
    np.savez(tmp_path / "f.npz", x=images.astype(np.float32) / 255.0)
    it, _ = get_dataset(_data_config(f"local:{tmp_path / 'f.npz'}"), batch_size=5, seed=1)
    np.testing.assert_allclose(next(it)["x"][..., 0], images[it.indices(0)] / 127.5 - 1, atol=1e-6)
    np.savez(tmp_path / "bad.npz", pixels=images)
    with pytest.raises(DataError, match="expected one of the keys"):
        get_dataset(_data_config(f"local:{tmp_path / 'bad.npz'}"), batch_size=5, seed=1)


@pytest.mark.usefixtures("_mocked_download")
def test_tfds_source_resizes_on_read():
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        it, spec = get_dataset(_data_config("tfds:mnist", resolution=32), batch_size=4, seed=0)
    assert spec.shape == (32, 32, 1) and spec.num_classes == 10
    assert next(it)["x"].shape == (4, 32, 32, 1)


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
@pytest.mark.parametrize("name", ["cifar10_dcgan", "cifar10_sngan", "cifar10_sngan_cond", "cifar10_biggan",
                                  "cifar10_biggan:diffaug,lecam"])
def test_cifar_configs_run_their_runlocal_variant_on_mock_data(tmp_path, name):
    stem, _, variant = name.partition(":")
    arg = ",".join(filter(None, (variant, "runlocal")))
    config = config_lib.load_config(str(ROOT / "experiments" / f"{stem}.py") + ":" + arg)
    config.unlock()
    config.num_steps = 2  # two steps are enough to show the config builds, trains and evaluates
    config.steps_per_dispatch = 1
    config.log_every_steps = config.eval_every_steps = config.ckpt_every_steps = 2
    config.lock()
    with tfds.testing.mock_data(num_examples=32, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 2 and np.isfinite(summary["metrics"]["train/d_loss"])
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_00000002.png"))
    rows = 10 if config.model.conditioning != "none" else 8  # one row per class for the conditional models
    assert grid.shape == (rows * 34 + 2, 8 * 34 + 2, 3)
    assert (tmp_path / "samples" / "interpolation_00000002.png").exists()


def test_a_conditional_grid_shows_every_class_or_16_evenly_spaced_ones():
    from gan_jax.loop.evaluation import grid_classes

    np.testing.assert_array_equal(grid_classes(10), np.arange(10))
    np.testing.assert_array_equal(grid_classes(16), np.arange(16))
    imagenet = grid_classes(1000)  # 1000 rows of 8 would be 8,000 images a picture
    assert len(imagenet) == 16 and imagenet[0] == 0 and imagenet[-1] == 999 and set(np.diff(imagenet)) == {66, 67}


@pytest.mark.slow
def test_regularizers_and_bfloat16_on_one_step(tmp_path):
    """DiffAugment, lazy R1, bCR, ACGAN, spectral norm on a DCGAN D and bfloat16 all train."""
    base = str(ROOT / "experiments" / "digits_dcgan.py")
    config = config_lib.load_config(base + ":runlocal")
    config.unlock()
    config.num_steps = 4
    config.steps_per_dispatch = 1  # convolutions inside lax.scan are slow on XLA CPU
    config.log_every_steps = 1
    config.eval_every_steps = config.ckpt_every_steps = 4
    config.batch_size = 8
    config.augment.diffaug.policy = "color,translation,cutout"
    config.reg.r1.weight = 1.0
    config.reg.r1.every = 2
    config.reg.bcr.weight = 1.0
    config.model.spectral_norm = True
    config.model.dtype = "bfloat16"
    config.lock()
    summary = train_and_evaluate(config, tmp_path, progress=False)
    metrics = summary["metrics"]
    for key in ("train/d_loss", "train/r1", "train/bcr", "train/g_loss"):
        assert np.isfinite(metrics[key]), key
    # Lazy R1 with k = 2: D updates 0 and 2 (logged at steps 1 and 3) compute it, 1 and 3 do not and
    # log the value last computed.
    import json

    r1 = {row["step"]: row["train/r1"] for row in map(json.loads, open(tmp_path / "metrics.jsonl"))
          if "train/r1" in row}
    assert r1[1] > 0 and r1[3] > 0 and r1[2] == r1[1] and r1[4] == r1[3] and r1[1] != r1[3]
    # gan-jax sample's function on the same run: PNG files and one .npz.
    from gan_jax.tools.sample import write_samples

    npz = write_samples(tmp_path, 5, fmt="npz")
    with np.load(npz) as arrays:
        assert arrays["x"].shape == (5, 32, 32, 1) and arrays["x"].dtype == np.uint8
    folder = write_samples(tmp_path, 3, out=tmp_path / "pngs")
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "000002.png"]
