"""A lazy term's logged value is the one it last computed, not 0 on the steps it skips (or its mean with them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import reliability_helpers as rh

from gan_jax import config as config_lib
from gan_jax.core.step import host_scheduled
from gan_jax.loop.trainer import train_and_evaluate

GRID25 = str(rh.ROOT / "experiments" / "grid25.py")
# grid25 shrunk, with the non-saturating loss and R1 on every 4th D update (one D update a step).
TINY = {"batch_size": "20", "num_steps": "8", "ckpt_every_steps": "8", "eval_every_steps": "100",
        "model.g_width": "16", "model.d_width": "8", "data.num_train": "400", "eval.num_samples": "100",
        "writers": "jsonl", "loss": "non_saturating", "reg.gp.weight": "0", "n_critic": "1",
        "reg.r1.weight": "1.0", "reg.r1.every": "4"}


def _r1(tmp_path, name, per_dispatch: int) -> dict[int, float]:
    c = config_lib.load_config(GRID25)
    c.unlock()
    config_lib.apply_overrides(c, {**TINY, "steps_per_dispatch": str(per_dispatch), "log_every_steps": str(per_dispatch)})
    c.lock()
    assert host_scheduled(c) == (per_dispatch == 1)
    train_and_evaluate(c, tmp_path / name, progress=False)
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert not any(key.startswith("train/applied") for row in rows for key in row)
    return {r["step"]: r["train/r1"] for r in rows if "train/r1" in r}


@pytest.mark.slow
def test_lazy_r1_logs_its_last_computed_value(tmp_path):
    # One step a dispatch (two programs picked on the host): R1 runs on steps 1 and 5 (updates 0 and 4).
    single = _r1(tmp_path, "single", 1)
    assert sorted(single) == list(range(1, 9))
    assert single[1] > 0 and single[5] > 0 and single[1] != single[5]
    assert [single[s] for s in (2, 3, 4)] == [single[1]] * 3
    assert [single[s] for s in (6, 7, 8)] == [single[5]] * 3
    # Four steps a dispatch (the step decides with lax.cond): each dispatch holds one R1 update, whose
    # value is logged, not a quarter of it.
    fused = _r1(tmp_path, "fused", 4)
    assert sorted(fused) == [4, 8]
    np.testing.assert_allclose([fused[4], fused[8]], [single[1], single[5]], rtol=1e-4)
