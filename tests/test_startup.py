"""The persistent compilation cache: on by default, in a chosen directory, off with one switch."""

import subprocess
import sys
import textwrap

import pytest

from gan_jax.loop.trainer import process_age_sec
from gan_jax.tools import startup

PROGRAM = textwrap.dedent("""
    import time, jax, jax.numpy as jnp
    from gan_jax.tools import startup
    path = startup.enable_compilation_cache()
    print("dir", path)
    f = jax.jit(lambda x: jnp.sin(x) @ x.T + 1.0)
    f(jnp.ones((8, 8))).block_until_ready()
""")


def _run(env):
    return subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)


@pytest.mark.slow
def test_cache_fills_the_configured_directory_and_can_be_switched_off(tmp_path, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(GAN_JAX_CACHE_DIR=str(tmp_path / "cache"), GAN_JAX_COMPILATION_CACHE="1")
    out = _run(env)
    assert f"dir {tmp_path / 'cache'}" in out.stdout
    entries = list((tmp_path / "cache").iterdir())
    assert entries, "the compiled program was not written to the cache"
    _run(env)  # a second process reads the entries instead of adding new ones
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(p.name for p in entries)

    env.update(GAN_JAX_CACHE_DIR=str(tmp_path / "off"), GAN_JAX_COMPILATION_CACHE="0")
    assert "dir None" in _run(env).stdout
    assert not (tmp_path / "off").exists()


def test_unwritable_cache_dir_names_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    try:
        startup.enable_compilation_cache(blocker / "cache")
    except OSError as e:
        assert "GAN_JAX_COMPILATION_CACHE=0" in str(e)
    else:
        raise AssertionError("no error for a cache dir under a file")


def test_process_age_is_positive_and_grows():
    import time

    first = process_age_sec()
    time.sleep(0.05)
    assert 0 < first < process_age_sec()
