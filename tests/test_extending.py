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
