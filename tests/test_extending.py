"""The extension point: a term written outside the package, in one file beside its experiment, trains
with no other edit: its config sub-dict, its per-run weight in the state and its metric appear."""

import json
import subprocess
import sys

import pytest

PLUGIN = '''
import jax.numpy as jnp

from gan_jax.objectives.base import register_term


def logit_size(ctx):
    """Keeps D's outputs on real data small: mean D(x_r)^2."""
    return ctx.mean(ctx.real_logits ** 2)


register_term("logit_size", d=logit_size)
'''

EXPERIMENT = '''
import logit_size_term  # noqa: F401  (registers reg.logit_size)
from gan_jax.config import load_config, lock, parse_arg


def get_config(arg=None):
    c = load_config("grid25:runlocal")
    c.unlock()
    c.reg.logit_size.weight = 0.3
    c.num_steps = c.steps_per_dispatch = 4
    c.log_every_steps = c.eval_every_steps = c.ckpt_every_steps = 4
    parse_arg(c, arg)
    return lock(c)
'''


@pytest.mark.slow
def test_a_term_beside_its_experiment_trains_without_other_edits(tmp_path):
    (tmp_path / "logit_size_term.py").write_text(PLUGIN)
    (tmp_path / "exp.py").write_text(EXPERIMENT)
    workdir = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "gan_jax", "train", "--config", str(tmp_path / "exp.py"),
                          "--workdir", str(workdir), "--quiet", "--config.reg.logit_size.weight=0.4"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    config = json.loads((workdir / "config.json").read_text())
    assert config["reg"]["logit_size"] == {"weight": 0.4, "weight_end": -1.0, "every": 1}
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/logit_size" in line and line["train/logit_size"] > 0 for line in lines)


def _doc_block(title: str) -> str:
    """The Python block under the docs/extending.md heading `title`."""
    import pathlib

    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "extending.md").read_text()
    section = text.split(f"## {title}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


EXPERIMENT_WITH_DOC_PLUGINS = '''
import doc_action, doc_metric  # noqa: F401  (register actions.param_norm and the mode_spread metric)
from gan_jax.config import load_config, lock, parse_arg


def get_config(arg=None):
    c = load_config("grid25:runlocal")
    c.unlock()
    c.actions.param_norm.every_steps = 2
    c.num_steps = 4
    c.steps_per_dispatch = 2
    c.log_every_steps = c.eval_every_steps = c.ckpt_every_steps = 4
    parse_arg(c, arg)
    return lock(c)
'''


@pytest.mark.slow
def test_the_docs_metric_and_action_train_from_beside_an_experiment(tmp_path):
    import numpy as np

    (tmp_path / "doc_metric.py").write_text(_doc_block("A new metric in one file"))
    (tmp_path / "doc_action.py").write_text(_doc_block("A new periodic action in one file"))
    (tmp_path / "exp.py").write_text(EXPERIMENT_WITH_DOC_PLUGINS)
    workdir = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "gan_jax", "train", "--config", str(tmp_path / "exp.py"),
                          "--workdir", str(workdir), "--quiet"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((workdir / "config.json").read_text())["actions"]["param_norm"] == {"every_steps": 2}
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    norms = {line["step"]: line["train/g_param_norm"] for line in lines if "train/g_param_norm" in line}
    assert sorted(norms) == [2, 4]
    spread = [line["eval/mode_spread"] for line in lines if "eval/mode_spread" in line]
    assert len(spread) == 1 and spread[0] > 0

    # The step-4 norm, recomputed with numpy from the step-4 checkpoint (read through config.json, so this
    # process never imports the plugins: its registries stay as the other tests expect them).
    import jax

    from gan_jax.loop import rundir
    from gan_jax.loop.blueprint import read_back
    from gan_jax.loop.checkpoint import Checkpointer

    ckpt = Checkpointer(workdir / "checkpoints", 3, read_only=True)
    state, _ = ckpt.restore(4, read_back(rundir.read_config(workdir), (2,)).init_state())
    ckpt.close()
    expected = np.sqrt(sum(np.sum(np.square(np.asarray(x, np.float64))) for x in jax.tree.leaves(state.g.params)))
    assert norms[4] == pytest.approx(expected, rel=1e-5)
