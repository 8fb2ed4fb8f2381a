"""Tests for gan_jax.data.tfds_images (CPU only, no network)."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from gan_jax.data import tfds_images  # noqa: E402
from gan_jax.data.tfds_images import (  # noqa: E402
    DatasetFormatError,
    DatasetUnavailableError,
    load_tfds_arrays,
)


class GanJaxTinyImages(tfds.core.GeneratorBasedBuilder):
    """Tiny in-memory image dataset, so real preparation runs offline in ~1 s."""

    VERSION = tfds.core.Version("1.0.0")
    NUM_EXAMPLES = 12

    def _info(self):
        # Plain DatasetInfo: dataset_info_from_configs needs the module to be in a package.
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 6, 3)),
                    "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(self.NUM_EXAMPLES):
            if i == 0:  # a slow preparation, so that concurrent ones overlap (see test_concurrent_prepare)
                time.sleep(float(os.environ.get("GAN_JAX_TEST_SLOW_PREPARE", "0")))
            yield i, {"image": _tiny_image(i), "label": i % 3}


def _tiny_image(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (8, 6, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any connection attempt fails at once instead of waiting on retries."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_import_is_cheap():
    code = (
        "import sys, gan_jax.data.tfds_images; "
        "bad = {'tensorflow', 'tensorflow_datasets'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.usefixtures("_mocked_download")
def test_mock_mnist_shapes_and_dtypes():
    with tfds.testing.mock_data(num_examples=7, policy=tfds.testing.MockPolicy.USE_CODE):
        images, labels, info = load_tfds_arrays("mnist", "train")
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (7,) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < 10
    assert info["num_classes"] == 10 and info["name"] == "mnist"


@pytest.mark.usefixtures("_mocked_download")
def test_mock_missing_label_key_gives_none():
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        images, labels, info = load_tfds_arrays("mnist", "train", label_key="nope")
    assert images.shape == (3, 28, 28, 1)
    assert labels is None and info["num_classes"] is None


def test_real_prepare_read_and_cache(tmp_path):
    data_dir = str(tmp_path / "tfds")
    images, labels, info = load_tfds_arrays("gan_jax_tiny_images", "train", data_dir=data_dir)
    assert images.shape == (12, 8, 6, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int32
    # array_record order is shuffled by key, so compare as sets of (label, image).
    got = sorted((int(y), x.tobytes()) for x, y in zip(images, labels, strict=True))
    want = sorted((i % 3, _tiny_image(i).tobytes()) for i in range(12))
    assert got == want
    assert info == {
        "name": "gan_jax_tiny_images",
        "split": "train",
        "num_classes": 3,
        "label_names": ["a", "b", "c"],
    }
    assert list((tmp_path / "tfds").rglob("*.array_record*"))
    assert list((tmp_path / "tfds").rglob("gan_jax_arrays/*.npz"))

    cached = load_tfds_arrays("gan_jax_tiny_images", "train", data_dir=data_dir)
    np.testing.assert_array_equal(cached[0], images)
    np.testing.assert_array_equal(cached[1], labels)
    uncached = load_tfds_arrays("gan_jax_tiny_images", "train[:5]", data_dir=data_dir, cache=False)
    assert uncached[0].shape == (5, 8, 6, 3)
    no_labels = load_tfds_arrays("gan_jax_tiny_images", "train", data_dir=data_dir, label_key=None)
    assert no_labels[1] is None and no_labels[2]["num_classes"] is None


def test_preparing_says_one_thing_and_tfds_nothing(tmp_path, capfd, caplog):
    """No tfds banner on stdout, no progress bars, no warning about the folder being filled: only
    gan_jax's own two lines (what is prepared where, and how long it took)."""
    caplog.set_level(logging.INFO)
    before = logging.getLogger("absl").level  # whatever an earlier test in this process left
    load_tfds_arrays("gan_jax_tiny_images", "train", data_dir=str(tmp_path / "tfds"))
    out, err = capfd.readouterr()
    logged = [r.getMessage() for r in caplog.records]
    assert "Downloading and preparing" not in out + err and "Dl Completed" not in out + err
    assert not [m for m in logged if "Variant folder" in m]
    assert [m for m in logged if m.startswith("Preparing tfds dataset 'gan_jax_tiny_images' into ")]
    assert [m for m in logged if m.startswith("Prepared tfds dataset 'gan_jax_tiny_images' in")]
    assert logging.getLogger("absl").level == before  # restored


def test_concurrent_prepare_prepares_once_and_both_read_it(tmp_path):
    """Two processes loading an unprepared dataset at once (a sweep's processes on a fresh machine):
    one prepares, the other waits for it and reads what it wrote. Without the lock the second
    failed on tfds' temporary folders."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_tfds_images as t; "
            "x, y, _ = t.load_tfds_arrays('gan_jax_tiny_images', 'train', data_dir=sys.argv[2]); "
            "print('loaded', x.shape, int(y.sum()))")
    env = dict(os.environ, GAN_JAX_TEST_SLOW_PREPARE="3")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path / "tfds")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "loaded (12, 8, 6, 3) 12" in out  # labels i % 3 over 12 images sum to 12
    errs = "".join(err for _, err in outs)
    assert errs.count("Preparing tfds dataset 'gan_jax_tiny_images'") == 1
    assert errs.count("Waiting for another process that is preparing tfds dataset 'gan_jax_tiny_images'") == 1


def test_tfrecord_data_dir_is_rejected(tmp_path):
    data_dir = str(tmp_path / "tfds")
    tfds.builder("gan_jax_tiny_images", data_dir=data_dir).download_and_prepare(
        file_format="tfrecord"
    )
    with pytest.raises(DatasetFormatError, match="array_record.*data_dir"):
        load_tfds_arrays("gan_jax_tiny_images", "train", data_dir=data_dir)


def test_unknown_name_suggests_close_name():
    with pytest.raises(ValueError, match="'mnst'.*mnist"):
        load_tfds_arrays("mnst")


def test_empty_manual_dir_fails_fast(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as exc:
        load_tfds_arrays("mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual_dir))
    assert time.monotonic() - start < 10
    msg = str(exc.value)
    assert isinstance(exc.value, RuntimeError)
    assert "'mnist'" in msg and "manual_dir" in msg and "data_dir" in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_wrong_checksum_in_manual_dir(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]:
        (manual_dir / name).write_bytes(b"not mnist")
    with pytest.raises(DatasetUnavailableError, match="wrong checksum") as exc:
        load_tfds_arrays("mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual_dir))
    assert "manual_dir" in str(exc.value)
    assert exc.value.__cause__ is not None


def test_offline_without_manual_dir_fails_fast(tmp_path, monkeypatch):
    # Without proxies the reachability probe runs (and hits the refused socket).
    monkeypatch.setattr(tfds_images.urllib.request, "getproxies", dict)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="offline.*manual_dir.*data_dir"):
        load_tfds_arrays("mnist", data_dir=str(tmp_path / "tfds"))
    assert time.monotonic() - start < 10


def test_missing_tensorflow_is_explained(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "tensorflow" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(tfds_images.importlib.util, "find_spec", find_spec)
    with pytest.raises(tfds_images.DatasetUnavailableError, match=r"pip install 'gan-jax\[tf\]'"):
        load_tfds_arrays("gan_jax_tiny_images", data_dir=str(tmp_path / "tfds"))
