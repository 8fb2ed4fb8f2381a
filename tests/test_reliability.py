"""Failure tests run in-process: damaged checkpoints, divergence, config changes, the lock,
bad inputs, determinism across runs and device counts."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.data import DataError, DataSpec, checks
from gan_jax.loop import runguard
from gan_jax.loop import blueprint as blueprint_lib
from gan_jax.loop.checkpoint import CheckpointError
from gan_jax.loop.trainer import train_and_evaluate
from gan_jax.tools.cli import train_main


@pytest.fixture(autouse=True, scope="module")
def _compilation_cache(tmp_path_factory):
    with rh.compilation_cache(tmp_path_factory.getbasetemp() / "jax_cache"):
        yield


def _run(workdir, cfg, **kwargs):
    return train_and_evaluate(cfg, workdir, progress=False, **kwargs)


def _with(cfg, **guard):
    """`cfg` with `guard.*` set."""
    cfg = cfg.copy_and_resolve_references()
    cfg.unlock()
    cfg.guard.update(guard)
    return cfg


# ---- damaged checkpoints -------------------------------------------------------------------

def _files(step_dir: pathlib.Path, under: str):
    return sorted(p for p in (step_dir / under).rglob("*") if p.is_file() and p.stat().st_size > 0)


@pytest.mark.slow
def test_damaged_checkpoints_fall_back_to_the_newest_intact_one(tmp_path, caplog):
    cfg8 = rh.config(num_steps=8, ckpt_every_steps=2, eval_every_steps=100, keep_checkpoints=5)
    cfg12 = rh.config(num_steps=12, ckpt_every_steps=2, eval_every_steps=100, keep_checkpoints=5)
    _run(tmp_path / "straight", cfg12)
    run = tmp_path / "run"
    _run(run, cfg8)
    assert rh.checkpoint_steps(run) == [2, 4, 6, 8]
    ckpts = run / "checkpoints"
    # step 8: every array file cut to half its size; step 6: its directory deleted;
    # step 4: same sizes, flipped bytes (only the stored checksum can notice).
    for f in _files(ckpts / "8", "state"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    import shutil

    shutil.rmtree(ckpts / "6")
    data_files = [f for f in _files(ckpts / "4", "state") if f.parent.name == "d"]
    assert data_files
    for f in data_files:
        raw = bytearray(f.read_bytes())
        raw[len(raw) // 2:] = bytes(b ^ 0xFF for b in raw[len(raw) // 2:])
        f.write_bytes(bytes(raw))

    caplog.set_level("WARNING", logger="gan_jax")
    summary = _run(run, cfg12, allow_config_change=["num_steps"])
    assert summary["step"] == 12
    assert "Resuming from step 2, the newest intact checkpoint" in caplog.text
    assert "step 8" in caplog.text and "step 4" in caplog.text
    assert sorted(p.name for p in (run / "checkpoints_unreadable").iterdir()) == ["4", "8"]
    # Resumed from step 2, the run still ends exactly where an uninterrupted one does.
    rh.assert_states_equal(rh.restore(run, cfg12)[0], rh.restore(tmp_path / "straight", cfg12)[0])
    assert rh.logged_steps(run) == [4, 8, 12]


def test_no_intact_checkpoint_refuses_unless_told(tmp_path):
    cfg = rh.config(num_steps=4, ckpt_every_steps=2, eval_every_steps=100)
    _run(tmp_path, cfg)
    for step in (2, 4):
        (tmp_path / "checkpoints" / str(step) / "state" / "_METADATA").write_text("{trunc")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(CheckpointError, match="step 4:.*step 2:.*--allow_fresh_start"):
        _run(tmp_path, cfg)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing moved or written
    code = train_main(rh.argv(tmp_path, num_steps=4, ckpt_every_steps=2, eval_every_steps=100))
    assert code == 2
    summary = _run(tmp_path, cfg, allow_fresh_start=True)
    assert summary["step"] == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints_unreadable").iterdir()) == ["2", "4"]
    assert rh.checkpoint_steps(tmp_path) == [2, 4] and rh.logged_steps(tmp_path) == [4]


# ---- divergence ----------------------------------------------------------------------------

def _poison(monkeypatch, at_batch: int, times: int):
    """Makes one example of batch `at_batch` NaN, the first `times` times that batch is read."""
    real = blueprint_lib.get_dataset
    left = [times]

    def get_dataset(*args, **kwargs):
        iterator, spec = real(*args, **kwargs)
        batches_at = iterator.batches_at

        def poisoned(start, count):
            out = batches_at(start, count)
            if start <= at_batch < start + count and left[0] > 0:
                left[0] -= 1
                out["x"][at_batch - start, 0, 0] = np.nan
            return out

        iterator.batches_at = poisoned
        return iterator, spec

    monkeypatch.setattr(blueprint_lib, "get_dataset", get_dataset)


def test_divergence_stops_naming_step_and_quantity(tmp_path, monkeypatch):
    cfg = rh.config(num_steps=16, ckpt_every_steps=4, eval_every_steps=100)
    _poison(monkeypatch, at_batch=8, times=1)  # n_critic=1: batch 8 feeds step 9
    with pytest.raises(runguard.DivergenceError) as exc:
        _run(tmp_path, cfg)
    msg = str(exc.value)
    assert "train/d_loss" in msg and "steps 9-10" in msg and "last good checkpoint is step 8" in msg
    assert "--on_divergence=rollback" in msg
    assert rh.checkpoint_steps(tmp_path) == [4, 8]  # step 12 was never saved
    state, _ = rh.restore(tmp_path, cfg)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((state.g, state.d)))
    assert not (tmp_path / "lock").exists()


def test_divergence_rollback_continues_with_lower_learning_rates(tmp_path, monkeypatch, capsys):
    cfg = rh.config(num_steps=16, ckpt_every_steps=4, eval_every_steps=100)
    _poison(monkeypatch, at_batch=8, times=1)  # a transient fault: the replay reads clean data
    summary = _run(tmp_path, _with(cfg, on_divergence="rollback", rollback_lr_factor=0.25))
    assert summary["step"] == 16 and summary["lr_scale"] == 0.25
    assert "rolled back to step 8" in capsys.readouterr().err
    state, meta = rh.restore(tmp_path, cfg)
    assert meta["lr_scale"] == 0.25
    lrs = runguard.learning_rates(state.g.opt_state) + runguard.learning_rates(state.d.opt_state)
    np.testing.assert_allclose(lrs, [1e-4 * 0.25, 1e-4 * 0.25], rtol=1e-6)
    assert rh.logged_steps(tmp_path) == [4, 8, 12, 16]
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((state.g, state.d)))


def test_rollback_gives_up_after_max_rollbacks(tmp_path, monkeypatch):
    cfg = rh.config(num_steps=16, ckpt_every_steps=4, eval_every_steps=100)
    _poison(monkeypatch, at_batch=8, times=100)  # bad data: every replay diverges again
    with pytest.raises(runguard.DivergenceError, match="2 rollback"):
        _run(tmp_path, _with(cfg, on_divergence="rollback", max_rollbacks=2))


def test_scaled_learning_rate_scales_the_update():
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.3)
    params = {"w": np.array([1.0, -2.0], np.float32)}
    grads = {"w": np.array([0.5, 4.0], np.float32)}
    state = runguard.scale_learning_rates(tx.init(params), 0.1)
    updates, _ = tx.update(grads, state, params)
    np.testing.assert_allclose(updates["w"], -0.3 * 0.1 * grads["w"], rtol=1e-6)


# ---- config on resume, the workdir lock ------------------------------------------------------

def test_config_change_on_resume(tmp_path):
    _run(tmp_path, rh.config(num_steps=4, ckpt_every_steps=4, eval_every_steps=100))
    changed = rh.config(num_steps=8, ckpt_every_steps=4, eval_every_steps=100, optim__d_lr=3e-4)
    with pytest.raises(config_lib.ConfigError) as exc:
        _run(tmp_path, changed, allow_config_change=["num_steps"])
    assert "optim.d_lr: 0.0001 -> 0.0003" in str(exc.value)
    assert "--allow_config_change optim.d_lr" in str(exc.value) and "num_steps" not in str(exc.value)
    assert json.loads((tmp_path / "config.json").read_text())["num_steps"] == 4
    summary = _run(tmp_path, changed, allow_config_change=["num_steps", "optim.d_lr"])
    assert summary["step"] == 8
    assert json.loads((tmp_path / "config.json").read_text())["optim"]["d_lr"] == 3e-4


def test_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from gan_jax.loop.runguard import WorkdirLock; "
        f"WorkdirLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(runguard.WorkdirLockedError, match=f"pid {holder.pid}"):
            runguard.WorkdirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead owner's flock; its record is still in the file.
    lock = runguard.WorkdirLock(tmp_path).acquire()
    assert lock.stale_owner["pid"] == holder.pid
    lock.release()
    assert not (tmp_path / "lock").exists()


def test_lock_without_flock_judges_by_pid(tmp_path, monkeypatch):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "no locks")

    monkeypatch.setattr(runguard.fcntl, "flock", no_flock)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(runguard.WorkdirLockedError, match=f"pid {sleeper.pid}"):
            runguard.WorkdirLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    lock = runguard.WorkdirLock(tmp_path).acquire()  # the pid is dead now: a stale lock
    assert lock.stale_owner["pid"] == sleeper.pid
    assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    lock.release()


# ---- bad inputs: a clear error, exit code 2, and no workdir ------------------------------------

@pytest.fixture
def _offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    from gan_jax.data import tfds_images

    monkeypatch.setattr(tfds_images.urllib.request, "getproxies", dict)


def _refused(tmp_path, capsys, **overrides) -> str:
    workdir = tmp_path / "run"
    code = train_main(rh.argv(workdir, **overrides))
    err = capsys.readouterr().err
    assert code == 2, err
    assert not workdir.exists()
    return err


@pytest.mark.usefixtures("_offline")
def test_unknown_tfds_name(tmp_path, capsys):
    err = _refused(tmp_path, capsys, data__source="tfds:mnsit", data__data_dir=tmp_path / "tfds")
    assert "Unknown tfds dataset 'mnsit'" in err and "mnist" in err and "data.source" in err


@pytest.mark.usefixtures("_offline")
def test_tfds_dataset_missing_offline(tmp_path, capsys):
    err = _refused(tmp_path, capsys, data__source="tfds:mnist", data__data_dir=tmp_path / "tfds")
    assert "offline" in err and "data.manual_dir" in err and "train-images-idx3-ubyte.gz" in err


@pytest.mark.usefixtures("_offline")
def test_tfds_manual_dir_with_a_wrong_file(tmp_path, capsys):
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (manual / name).write_bytes(b"not mnist")
    err = _refused(tmp_path, capsys, data__source="tfds:mnist", data__data_dir=tmp_path / "tfds",
                   data__manual_dir=manual)
    assert "wrong checksum" in err and str(manual) in err


def test_batch_larger_than_the_dataset(tmp_path, capsys):
    err = _refused(tmp_path, capsys, data__num_train=50, batch_size=100)
    assert "batch_size 100 is larger than the 50 examples" in err


def test_generator_shape_not_matching_the_data(tmp_path, capsys, monkeypatch):
    from gan_jax import models
    from gan_jax.models import mlp

    # A generator fixed at another resolution, as an image model with its own size would be.
    models.GENERATORS.load()
    monkeypatch.setitem(models.GENERATORS._entries, "fixed_3d", models.ModelEntry(
        "fixed_3d", lambda m, shape, axis, classes: mlp.MLPGenerator((3,), m.g_width, m.g_depth, axis_name=axis)))
    err = _refused(tmp_path, capsys, model__generator="fixed_3d", model__discriminator="mlp")
    assert "makes samples of shape (3,)" in err and "shape (2,)" in err and "model.generator" in err


def test_check_helpers():
    unlabelled = DataSpec("local:faces", (8, 8, 3), "image", 10)
    with pytest.raises(DataError, match="'local:faces' has no class labels"):
        checks.check_labels(unlabelled, True, "model.conditional is set")
    checks.check_labels(unlabelled, False)
    checks.check_labels(DataSpec("tfds:mnist", (28, 28, 1), "image", 10, num_classes=10), True)
    with pytest.raises(DataError, match=r"shape \(32, 32, 1\).*shape \(28, 28, 1\)"):
        checks.check_sample_shape((32, 32, 1), DataSpec("tfds:mnist", (28, 28, 1), "image", 10), "dcgan")
    with pytest.raises(DataError, match="batch_size 11"):
        checks.check_batch_size(unlabelled, 11)


# ---- determinism -----------------------------------------------------------------------------

@pytest.mark.slow
def test_same_config_and_seed_are_bitwise_equal(tmp_path):
    cfg = rh.config(num_steps=6, ckpt_every_steps=6, eval_every_steps=100)
    _run(tmp_path / "a", cfg)
    _run(tmp_path / "b", cfg)
    rh.assert_states_equal(rh.restore(tmp_path / "a", cfg)[0], rh.restore(tmp_path / "b", cfg)[0])
    other = rh.config(num_steps=6, ckpt_every_steps=6, eval_every_steps=100, seed=1)
    _run(tmp_path / "c", other)
    a, c = rh.restore(tmp_path / "a", cfg)[0], rh.restore(tmp_path / "c", other)[0]
    assert not np.array_equal(jax.tree.leaves(a.g.params)[0], jax.tree.leaves(c.g.params)[0])


@pytest.mark.slow
def test_pmap_on_one_and_four_devices_agree():
    from gan_jax.core import optim
    from gan_jax.core.parallel import Runner
    from gan_jax.core.step import make_train_step
    from gan_jax.models import build_models

    cfg = rh.config(optim__name="sgd", optim__g_lr=0.01, optim__d_lr=0.01, pack=1)
    g_tx = optim.make_optimizer(cfg, cfg.optim.g_lr)
    d_tx = optim.make_optimizer(cfg, cfg.optim.d_lr, cfg.n_critic)

    def build(axis_name, num_devices):
        g, d = build_models(cfg.model, (2,), axis_name)
        return make_train_step(cfg, g, d, g_tx, d_tx, axis_name, num_devices)

    x = np.random.default_rng(0).normal(size=(3, 2, 1, cfg.batch_size, 2)).astype(np.float32)
    results = []
    for n in (1, 4):
        runner = Runner("pmap", build, jax.devices()[:n])
        state = runner.put_state(rh.template(cfg))
        for chunk in x:
            state, _ = runner.step(state, runner.put_batch({"x": chunk}))
        results.append(jax.device_get(runner.get_state(state)))
    one, four = results
    assert int(one.step) == int(four.step) == 6
    for a, b in zip(jax.tree.leaves((one.g, one.d)), jax.tree.leaves((four.g, four.d))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("first,second", [("pmap", "none"), ("none", "pmap")])
def test_checkpoint_moves_between_device_counts(tmp_path, first, second):
    common = dict(ckpt_every_steps=4, eval_every_steps=100, optim__name="sgd", optim__g_lr=0.01,
                  optim__d_lr=0.01, pack=1)
    _run(tmp_path / "ref", rh.config(num_steps=8, parallel="none", **common))
    _run(tmp_path / "run", rh.config(num_steps=4, parallel=first, **common))
    summary = _run(tmp_path / "run", rh.config(num_steps=8, parallel=second, **common),
                   allow_config_change=["num_steps", "parallel"])
    assert summary["step"] == 8
    cfg = rh.config(num_steps=8, **common)
    ref, got = rh.restore(tmp_path / "ref", cfg)[0], rh.restore(tmp_path / "run", cfg)[0]
    assert int(got.step) == 8
    for a, b in zip(jax.tree.leaves((ref.g, ref.d)), jax.tree.leaves((got.g, got.d))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_labels_requested_from_an_unlabelled_source(tmp_path, capsys):
    err = _refused(tmp_path, capsys, model__conditioning="projection", pack=1)
    assert "model.conditioning='projection' needs labels" in err and "'synthetic:grid25' has no class labels" in err


def test_empty_text_file(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("\n  \n")
    (tmp_path / "test.txt").write_text("a held-out sentence\n")
    err = _refused(tmp_path, capsys, data__source=f"local:{tmp_path / 'train.txt'}",
                   data__test_file=tmp_path / "test.txt")
    assert "train.txt" in err and "is empty or holds only blank lines" in err


def _png(path, shape):
    from PIL import Image

    Image.fromarray(np.full(shape, 128, np.uint8)).save(path)


def test_image_folder_with_a_corrupt_file(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    _png(folder / "a.png", (8, 8, 3))
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    err = _refused(tmp_path, capsys, data__source=f"local:{folder}")
    assert f"cannot read image file {folder / 'b.png'}" in err and "Remove or replace the file" in err


def test_image_folder_with_mixed_sizes(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    _png(folder / "a.png", (8, 8, 3))
    _png(folder / "b.png", (8, 6, 3))
    err = _refused(tmp_path, capsys, data__source=f"local:{folder}")
    assert "different sizes" in err and "b.png is 6x8" in err and "data.resolution" in err


def test_reading_a_run_back_prints_no_read_only_warning(tmp_path, capfd, caplog):
    _run(tmp_path, rh.config(num_steps=2, ckpt_every_steps=2, eval_every_steps=100))
    capfd.readouterr()
    caplog.clear()
    from gan_jax.loop.checkpoint import Checkpointer

    Checkpointer(tmp_path / "checkpoints", 3, read_only=True).close()
    assert "read only" not in capfd.readouterr().err and "read only" not in caplog.text
