"""The run loop end to end: outputs, exact resume, no recompilation."""

import json
import pathlib
import shutil

import chex
import jax
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.loop.checkpoint import Checkpointer
from gan_jax.loop.trainer import train_and_evaluate

ROOT = pathlib.Path(__file__).resolve().parent.parent


def tiny_config(**overrides):
    c = config_lib.load_config(str(ROOT / "experiments" / "grid25.py"))
    c.unlock()
    c.update(dict(num_steps=8, batch_size=20, steps_per_dispatch=2, log_every_steps=2, eval_every_steps=4,
                  ckpt_every_steps=4, n_critic=2))
    c.model.g_width = 32
    c.model.d_width = 16
    c.data.num_train = 500
    c.eval.num_samples = 200
    c.ema.decay = 0.9
    c.update(overrides)
    c.lock()
    return c


def _final_params(workdir, config):
    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.models import build_models

    g, d = build_models(config.model, (2,))
    like = create_state(config, g, d, (2,), optim.make_optimizer(config, config.optim.g_lr),
                        optim.make_optimizer(config, config.optim.d_lr, config.n_critic))
    ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints", 5)
    state, meta = ckpt.restore(ckpt.latest_step(), like)
    ckpt.close()
    return jax.device_get(state), meta


@pytest.mark.slow
def test_outputs_of_a_run(tmp_path):
    config = tiny_config()
    summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 8
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_steps = [line["step"] for line in lines if "train/d_loss" in line]
    assert train_steps == [2, 4, 6, 8]
    assert [line["step"] for line in lines if "eval/modes" in line] == [4, 8]
    assert json.loads((tmp_path / "config.json").read_text())["num_steps"] == 8
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["frames", "step_00000004.png",
                                                                        "step_00000008.png", "training.gif"]
    assert sorted(p.name for p in (tmp_path / "samples" / "frames").iterdir()) == [
        f"step_{s:08d}.png" for s in (2, 4, 6, 8)]  # a frame every 8 // 39 -> 1 step, at each 2-step dispatch
    assert list(tmp_path.glob("events.out.tfevents.*"))
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(saved["versions"]) >= {"jax", "flax", "optax", "orbax-checkpoint"}
    assert {"eval/modes", "eval/high_quality", "eval/reverse_kl"} <= set(saved["metrics"])
    state, meta = _final_params(tmp_path, config)
    assert int(state.step) == 8 and meta["data_position"] == 8 * 2  # n_critic batches per step


@pytest.mark.slow
def test_resume_is_bitwise_exact(tmp_path):
    # The main job's recipe (decaying learning rate, gradient penalty, Fourier features in G and D).
    straight = tiny_config()
    assert straight.optim.schedule != "constant" and straight.reg.gp.weight > 0
    assert straight.model.g_fourier_features > 0 and straight.model.d_fourier_features > 0
    train_and_evaluate(straight, tmp_path / "straight", progress=False)
    # The same run interrupted after its step-4 checkpoint: drop the later one and rerun.
    train_and_evaluate(straight, tmp_path / "resumed", progress=False)
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "8")
    train_and_evaluate(straight, tmp_path / "resumed", progress=False)
    a, meta_a = _final_params(tmp_path / "straight", straight)
    b, meta_b = _final_params(tmp_path / "resumed", straight)
    for x, y in zip(jax.tree.leaves((a.g, a.d, a.g_ema)), jax.tree.leaves((b.g, b.d, b.g_ema))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert meta_a == meta_b
    steps = [json.loads(l)["step"] for l in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
             if "train/d_loss" in l]
    assert steps == [2, 4, 6, 8]


@pytest.mark.slow
def test_rerunning_a_finished_run_does_no_training(tmp_path):
    config = tiny_config()
    first = train_and_evaluate(config, tmp_path, progress=False)
    again = train_and_evaluate(config, tmp_path, progress=False)
    assert again["step"] == first["step"] == 8
    assert again["metrics"]["eval/modes"] == first["metrics"]["eval/modes"]


@pytest.mark.slow
def test_resume_refuses_a_different_config(tmp_path):
    train_and_evaluate(tiny_config(), tmp_path, progress=False)
    with pytest.raises(config_lib.ConfigError, match="optim.d_lr"):
        train_and_evaluate(tiny_config(optim=dict(d_lr=3e-4)), tmp_path, progress=False)


@pytest.mark.slow
def test_step_compiles_once(tmp_path):
    from gan_jax.core import optim
    from gan_jax.core.parallel import Runner
    from gan_jax.core.state import create_state
    from gan_jax.core.step import make_train_step
    from gan_jax.models import build_models

    config = tiny_config()
    g, d = build_models(config.model, (2,))
    g_tx = optim.make_optimizer(config, 1e-4)
    d_tx = optim.make_optimizer(config, 1e-4, config.n_critic)
    step = make_train_step(config, g, d, g_tx, d_tx)
    counted = chex.assert_max_traces(step, n=1)
    runner = Runner("none", lambda axis, n: counted)
    state = runner.put_state(create_state(config, g, d, (2,), g_tx, d_tx))
    x = np.zeros((2, 2, 20, 2), np.float32)
    for _ in range(4):
        state, _ = runner.step(state, runner.put_batch({"x": x}))
    assert int(state.step) == 8


@pytest.mark.slow
def test_cli_runs_an_experiment_and_prints_the_table(tmp_path, capsys):
    from gan_jax.tools.cli import main

    code = main(["train", "--config", str(ROOT / "experiments" / "ring8.py") + ":runlocal", "--workdir",
                 str(tmp_path), "--quiet", "--config.batch_size=20", "--config.data.num_train=200"])
    assert code == 0
    out = capsys.readouterr().out
    assert "PacGAN Table 1 PacGAN4" in out and "this run" in out
    assert (tmp_path / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["pmap", "jit"])
def test_parallel_run_end_to_end_and_resume(tmp_path, parallel):
    config = tiny_config(parallel=parallel, batch_size=32, pack=2)
    train_and_evaluate(tiny_config(parallel=parallel, batch_size=32, pack=2, num_steps=4), tmp_path,
                       progress=False)
    (tmp_path / "config.json").unlink()
    summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 8 and np.isfinite(summary["metrics"]["train/g_loss"])
    state, meta = _final_params(tmp_path, config)
    assert int(state.step) == 8 and meta["data_position"] == 16
