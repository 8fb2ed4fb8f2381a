"""Fast starts: JAX's persistent compilation cache, on by default.

A rerun of an experiment, or a sweep of runs with identical shapes, reads its compiled
programs from the cache instead of compiling them again. The cache lives in
`$GAN_JAX_CACHE_DIR` (default `~/.cache/gan_jax/jax`); `GAN_JAX_COMPILATION_CACHE=0` (or
`gan-jax train --no_compilation_cache`) turns it off. A cache directory set for JAX itself
(`JAX_COMPILATION_CACHE_DIR`) takes precedence.
"""

from __future__ import annotations

import os
import pathlib

CACHE_DIR_ENV = "GAN_JAX_CACHE_DIR"
CACHE_SWITCH_ENV = "GAN_JAX_COMPILATION_CACHE"
DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/gan_jax/jax")


def cache_enabled() -> bool:
    return os.environ.get(CACHE_SWITCH_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def enable_compilation_cache(cache_dir: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Turns on JAX's persistent compilation cache; returns its directory (None when switched off).

    Every program is cached, however quick it was to compile: the many small programs of a
    run's start (initialisation, evaluation) add up.
    """
    if cache_dir is None and not cache_enabled():
        return None
    import jax

    if cache_dir is None:
        cache_dir = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
    path = pathlib.Path(cache_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"Cannot create the compilation cache directory {path} ({e}); set {CACHE_DIR_ENV} to a "
                      f"writable directory or {CACHE_SWITCH_ENV}=0 to run without the cache.") from e
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
