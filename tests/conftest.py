"""Tests run on CPU with 4 forced host devices, so parallel code meets real sharding."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GAN_JAX_COMPILATION_CACHE", "0")  # tests that want the cache turn it on in tmp_path

import pytest  # noqa: E402


@pytest.fixture
def _mocked_download(monkeypatch):
    """Prepares tfds.testing.mock_data for load_tfds_arrays."""
    from tensorflow_datasets.testing import mocking

    from gan_jax.data import tfds_images

    # mock_data makes download_and_prepare a no-op, so no download host is needed.
    monkeypatch.setattr(tfds_images, "_check_online", lambda builder: None)

    # tfds 4.9.10 bug: the mock's __getitems__ is set on the instance, so it gets no self.
    def getitems(record_keys, generator, serialized=False):
        return [mocking._getitem(None, k, generator, serialized) for k in record_keys]

    monkeypatch.setattr(mocking, "_getitems", getitems)
