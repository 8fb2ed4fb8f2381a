"""A resume that accepts a changed per-run value trains with it; one it cannot apply is refused by name."""

from __future__ import annotations

import json
import shutil
import subprocess

import jax
import numpy as np
import optax
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.loop.checkpoint import Checkpointer
from gan_jax.loop.trainer import train_and_evaluate

GRID25 = str(rh.ROOT / "experiments" / "grid25.py")
# grid25's own recipe (Wasserstein critic + gradient penalty, 2 critic steps, cosine decay), shrunk.
TINY = {"batch_size": "20", "steps_per_dispatch": "1", "log_every_steps": "1", "ckpt_every_steps": "4",
        "eval_every_steps": "100", "model.g_width": "16", "model.d_width": "8", "data.num_train": "400",
        "eval.num_samples": "100", "schedule.steps": "16", "writers": "jsonl"}
CHANGED = {"reg.gp.weight": "1000", "optim.d_lr": "1e-09"}


@pytest.fixture(autouse=True, scope="module")
def _compilation_cache(tmp_path_factory):
    with rh.compilation_cache(tmp_path_factory.getbasetemp() / "jax_cache"):
        yield


def _config(**overrides):
    c = config_lib.load_config(GRID25)
    c.unlock()
    config_lib.apply_overrides(c, {**TINY, **overrides})
    c.lock()
    return c


def _losses(workdir, after: int) -> dict[int, tuple[float, float]]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: (r["train/d_loss"], r["train/g_loss"]) for r in rows if "train/d_loss" in r and r["step"] > after}


def test_changed_weight_and_learning_rate_reach_the_restored_state(tmp_path):
    first = tmp_path / "first"
    train_and_evaluate(_config(num_steps="4"), first, progress=False)
    for name in ("unchanged", "changed", "reference"):
        shutil.copytree(first, tmp_path / name)

    train_and_evaluate(_config(num_steps="8"), tmp_path / "unchanged", progress=False,
                       allow_config_change=["num_steps"])
    new = _config(num_steps="8", **CHANGED)
    train_and_evaluate(new, tmp_path / "changed", progress=False,
                       allow_config_change=["num_steps", *CHANGED])
    saved = json.loads((tmp_path / "changed" / "config.json").read_text())
    assert saved["reg"]["gp"]["weight"] == 1000 and saved["optim"]["d_lr"] == 1e-9

    # The reference: the step-4 checkpoint edited by hand (optax's own tree setter, not gan_jax's), saved
    # under the new config, then resumed in a fresh process with nothing left to change.
    reference = tmp_path / "reference"
    ckpt = Checkpointer(reference / "checkpoints", 3)
    state, meta = ckpt.restore(4, rh.template(new))
    hparams = jax.tree.map(np.asarray, state.hparams)
    hparams["reg"]["gp"]["weight"] = np.float32(1000)
    d_opt = optax.tree_utils.tree_set(state.d.opt_state, learning_rate=np.float32(1e-9))
    edited = state.replace(hparams=hparams, d=state.d.replace(opt_state=d_opt))
    ckpt.close()
    shutil.rmtree(reference / "checkpoints")
    ckpt = Checkpointer(reference / "checkpoints", 3)
    ckpt.save(4, edited, {k: v for k, v in meta.items() if k != "state_sha256"})
    ckpt.close()
    (reference / "config.json").write_text(json.dumps(config_lib.to_dict(new), indent=2, sort_keys=True))
    flags = [f"--config.{k}={v}" for k, v in {**TINY, "num_steps": "8", **CHANGED}.items()]
    subprocess.run(rh.command_for(GRID25, reference) + flags, check=True, env=rh.subprocess_env(tmp_path / "cache"),
                   timeout=300)

    unchanged, changed = _losses(tmp_path / "unchanged", 4), _losses(tmp_path / "changed", 4)
    assert sorted(changed) == sorted(unchanged) == [5, 6, 7, 8]
    for step in changed:  # the D loss carries the penalty's weight from the first step after the resume
        assert changed[step][0] != unchanged[step][0], step
    assert _losses(reference, 4) == changed


def test_change_log_names_old_and_new_values(tmp_path, caplog):
    train_and_evaluate(_config(num_steps="4"), tmp_path, progress=False)
    caplog.set_level("INFO", logger="gan_jax")
    train_and_evaluate(_config(num_steps="6", **{"optim.b1": "0.25", "reg.gp.weight": "2"}), tmp_path,
                       progress=False, allow_config_change=["num_steps", "optim.b1", "reg.gp.weight"])
    applied, rest = [line for line in caplog.text.splitlines() if "changed" in line.lower()]
    assert "written into the restored state: " in applied
    assert "optim.b1 0.5 -> 0.25" in applied and "reg.gp.weight 1.0 -> 2.0" in applied
    assert "taken from the new config: num_steps 4 -> 6" in rest


def test_beta_and_ema_decay_are_written_into_the_state():
    from gan_jax.loop import resume

    old = _config(**{"ema.decay": "0.9"})
    new = _config(**{"ema.decay": "0.99", "optim.b1": "0.25", "optim.g_lr": "3e-4"})
    state = rh.template(old)
    found = resume.changes(config_lib.to_dict(old), new)
    assert {c.key for c in found} == {"ema.decay", "optim.b1", "optim.g_lr"}
    state, applied = resume.apply_changes(state, new, found, lr_scale=0.5)
    assert len(applied) == 3
    assert float(state.hparams["ema"]["decay"]) == np.float32(0.99)
    for side in (state.g, state.d):
        assert optax.tree_utils.tree_get(side.opt_state, "b1") == np.float32(0.25)
    assert optax.tree_utils.tree_get(state.g.opt_state, "learning_rate") == np.float32(1.5e-4)
    assert optax.tree_utils.tree_get(state.d.opt_state, "learning_rate") == np.float32(1e-3)  # unchanged


@pytest.mark.parametrize("key,value,named", [
    ("model.g_width", "32", "model.g_width"),
    ("loss", "hinge", "loss"),
    ("optim.name", "sgd", "optim.name"),
    ("optim.schedule", "constant", "optim.schedule"),  # drops the schedule's state from the optimizer
])
def test_change_the_state_cannot_take_is_refused_by_name(tmp_path, key, value, named):
    train_and_evaluate(_config(num_steps="4"), tmp_path, progress=False)
    before = (tmp_path / "config.json").read_text()
    with pytest.raises(config_lib.ConfigError, match=named.replace(".", r"\.")) as exc:
        train_and_evaluate(_config(num_steps="6", **{key: value}), tmp_path, progress=False,
                           allow_config_change=["num_steps", key])
    assert "another --workdir" in str(exc.value)
    assert (tmp_path / "config.json").read_text() == before  # nothing written
    assert rh.checkpoint_steps(tmp_path) == [4] and not (tmp_path / "checkpoints_unreadable").exists()


def test_switching_a_term_on_is_refused_by_name(tmp_path):
    train_and_evaluate(_config(num_steps="4", **{"reg.gp.weight": "0", "loss": "hinge"}), tmp_path, progress=False)
    with pytest.raises(config_lib.ConfigError, match=r"reg\.gp\.weight 0\.0 -> 1\.0.*another --workdir"):
        train_and_evaluate(_config(num_steps="6", **{"reg.gp.weight": "1", "loss": "hinge"}), tmp_path,
                           progress=False, allow_config_change=["num_steps", "reg.gp.weight"])
