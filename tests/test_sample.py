"""gan-jax sample: the online generator's samples do not overwrite the EMA's, and PNG samples come with a grid."""

import numpy as np
import pytest
import reliability_helpers as rh
from PIL import Image

from gan_jax import config as config_lib
from gan_jax.loop.trainer import train_and_evaluate
from gan_jax.tools.sample import write_samples


@pytest.mark.slow
def test_raw_samples_keep_their_own_name_and_pngs_come_with_a_grid(tmp_path):
    c = config_lib.load_config(str(rh.ROOT / "experiments" / "digits_dcgan.py") + ":runlocal")
    c.unlock()
    config_lib.apply_overrides(c, {"num_steps": "2", "steps_per_dispatch": "1", "ema.decay": "0.999",
                                   "writers": "jsonl", "actions.gif.enabled": "False"})
    c.lock()
    train_and_evaluate(c, tmp_path, progress=False)
    ema = write_samples(tmp_path, 10)
    raw = write_samples(tmp_path, 10, use_ema=False)
    assert ema.name == "sample_00000002" and raw.name == "sample_00000002_raw"
    assert len(list(ema.glob("*.png"))) == len(list(raw.glob("*.png"))) == 10
    first_ema, first_raw = (np.asarray(Image.open(d / "000000.png")) for d in (ema, raw))
    assert not np.array_equal(first_ema, first_raw)  # two generators, two files
    grid = np.asarray(Image.open(tmp_path / "samples" / "sample_00000002_grid.png"))
    h, w = first_ema.shape[:2]
    assert grid.shape[:2] == (2 * (h + 2) + 2, 8 * (w + 2) + 2)  # 10 samples: 2 rows of 8, 2-pixel gaps
    np.testing.assert_array_equal(grid[2:2 + h, 2:2 + w], first_ema)
