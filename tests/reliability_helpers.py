"""Shared pieces of the failure tests: one tiny grid25 run, spelled as CLI flags and as a config."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sys

import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax.loop.checkpoint import Checkpointer

ROOT = pathlib.Path(__file__).resolve().parent.parent
# PacGAN's setup (constant learning rate 1e-4): these tests change num_steps between an
# interrupted and a straight run, which a schedule decaying over num_steps would not allow.
EXPERIMENT = str(ROOT / "experiments" / "grid25.py") + ":pacgan"
TINY = {"batch_size": "20", "steps_per_dispatch": "2", "n_critic": "1", "log_every_steps": "4",
        "model.g_width": "16", "model.d_width": "8", "data.num_train": "400", "eval.num_samples": "100",
        "keep_checkpoints": "3", "ema.decay": "0.9"}


def flags(**overrides) -> dict[str, str]:
    """The tiny run's config overrides, `a__b=v` meaning `a.b=v`."""
    return {**TINY, **{k.replace("__", "."): str(v) for k, v in overrides.items()}}


def config(**overrides):
    """The config the CLI builds from `flags(**overrides)`."""
    c = config_lib.load_config(EXPERIMENT)
    c.unlock()
    config_lib.apply_overrides(c, flags(**overrides))
    c.lock()
    return c


def argv(workdir, **overrides) -> list[str]:
    return ["--config", EXPERIMENT, "--workdir", str(workdir), "--quiet"] + [
        f"--config.{k}={v}" for k, v in flags(**overrides).items()]


def command(workdir, **overrides) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train.py")] + argv(workdir, **overrides)


def command_for(experiment: str, workdir) -> list[str]:
    """README's `python scripts/train.py` for `experiment` in `workdir`, without the tiny run's flags."""
    return [sys.executable, str(ROOT / "scripts" / "train.py"), "--config", experiment, "--workdir", str(workdir),
            "--quiet"]


def subprocess_env(cache_dir) -> dict[str, str]:
    """The test process's environment (CPU, 4 host devices) plus a shared compilation cache."""
    env = dict(os.environ)
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache_dir), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", PYTHONUNBUFFERED="1")
    return env


CACHE_OPTIONS = {"jax_compilation_cache_dir": None, "jax_persistent_cache_min_compile_time_secs": 0.0,
                 "jax_persistent_cache_min_entry_size_bytes": 0}


@contextlib.contextmanager
def compilation_cache(path):
    """A persistent compilation cache for the failure tests' many identical little runs.

    Runs of one config compile the same programs; the cache (shared with the subprocesses
    through `subprocess_env`) compiles each once. Numbers do not depend on it.
    """
    from jax.experimental.compilation_cache import compilation_cache as cc

    previous = {name: getattr(jax.config, name) for name in CACHE_OPTIONS}
    for name, value in {**CACHE_OPTIONS, "jax_compilation_cache_dir": str(path)}.items():
        jax.config.update(name, value)
    cc.reset_cache()
    try:
        yield
    finally:
        for name, value in previous.items():
            jax.config.update(name, value)
        cc.reset_cache()


def template(cfg, shape=(2,), num_classes=0):
    """A state to restore into, for data of one example's `shape` (and `num_classes` labels when conditional)."""
    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.models import build_models

    g, d = build_models(cfg.model, shape, num_classes=num_classes)
    return create_state(cfg, g, d, shape, optim.make_optimizer(cfg, cfg.optim.g_lr),
                        optim.make_optimizer(cfg, cfg.optim.d_lr, cfg.n_critic), num_classes)


def restore(workdir, cfg, step=None, shape=(2,), num_classes=0):
    """(state, meta) of a checkpoint (the latest by default), on the host."""
    ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints", 10)
    try:
        state, meta = ckpt.restore(ckpt.latest_step() if step is None else step, template(cfg, shape, num_classes))
    finally:
        ckpt.close()
    return jax.device_get(state), meta


def digits_npz(path: pathlib.Path) -> str:
    """1,000 of scikit-learn's bundled digits at MNIST's 28 x 28, as a local image file."""
    from gan_jax.data.images import load_digits

    digits, labels = load_digits(28)
    np.savez(path, x=digits[:1000], label=labels[:1000])
    return str(path)


def abstract_param_counts(model_config, shape, classes):
    """(G, D) parameter counts of the networks `model_config` builds, from shapes alone (nothing allocated)."""
    import jax.numpy as jnp

    from gan_jax.core.state import count_params
    from gan_jax.models import build_models

    g, d = build_models(model_config, shape, num_classes=classes)
    y = {"y": jnp.zeros((2,), jnp.int32)} if classes else {}
    gv = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, model_config.latent_dim)), train=False, **y))
    dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((2,) + tuple(shape)), train=False, **y))
    return count_params(gv["params"]), count_params(dv["params"])


def assert_states_equal(a, b):
    """Bitwise equality of everything a run carries on: networks, optimizers, EMA, step."""
    la, lb = jax.tree.leaves((a.step, a.g, a.d, a.g_ema)), jax.tree.leaves((b.step, b.g, b.d, b.g_ema))
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def logged_steps(workdir, key="train/d_loss") -> list[int]:
    lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if key in line]


def checkpoint_steps(workdir) -> list[int]:
    return sorted(int(p.name) for p in (pathlib.Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())
