"""Tests run on CPU with 4 forced host devices, so parallel code meets real sharding, two test processes at a time
(pytest-xdist, `-n auto --dist loadfile` in pyproject.toml), sharing one compilation cache."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GAN_JAX_COMPILATION_CACHE", "0")  # tests that want the cache turn it on in tmp_path
# One persistent compilation cache for the suite, its xdist workers and the subprocesses its tests start:
# the many tiny runs compile the same programs, and a program read back is the one compiled (numbers do not
# depend on it). It lives in .pytest_cache, so it also carries over between local runs.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), ".pytest_cache", "jax_compilation_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

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
