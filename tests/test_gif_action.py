"""The training GIF action: frames of the fixed-noise samples across training, one animation per run."""

from __future__ import annotations

import types

import numpy as np
import pytest
import reliability_helpers as rh
from PIL import Image

from gan_jax import config as config_lib
from gan_jax.loop import pictures
from gan_jax.loop.actions import gif
from gan_jax.loop.trainer import train_and_evaluate


@pytest.fixture(autouse=True, scope="module")
def _compilation_cache(tmp_path_factory):
    with rh.compilation_cache(tmp_path_factory.getbasetemp() / "jax_cache"):
        yield


def _frames(path):
    with Image.open(path) as im:
        return im.n_frames, im.size


def test_points_frame_puts_samples_and_means_where_the_axes_say():
    means = np.array([[-1.0, 0.0], [1.0, 0.0]])  # span = 1 * 1.4 + 0.5 = 1.9
    samples = np.array([[0.0, 0.0]] * 5 + [[0.95, 0.95]])
    frame = pictures.points_frame(samples, means, size=38)  # 10 pixels per unit: col = floor((x + 1.9) * 10)
    assert frame.shape == (38, 38, 3) and frame.dtype == np.uint8
    # 5 samples at the origin, pixel (19, 19), each a 2x2 dot: the darkest blue on all four pixels.
    for r, c in ((19, 19), (19, 20), (20, 19), (20, 20)):
        assert tuple(frame[r, c]) == (10, 30, 140)
    # One sample at (0.95, 0.95), pixel (9, 28): a quarter of the way from light to dark blue.
    assert tuple(frame[9, 28]) == tuple(frame[10, 29]) == (115, 135, 211)
    # The means at pixels (19, 9) and (19, 29): a ring of radius 4 around each, its centre left white.
    r = pictures.RING
    for c in (9, 29):
        assert tuple(frame[19, c - r]) == tuple(frame[19, c + r]) == tuple(frame[19 - r, c]) == (245, 160, 160)
        assert tuple(frame[19, c]) == (255, 255, 255)
    assert tuple(frame[0, 0]) == (255, 255, 255)


def test_gif_grows_across_a_resume_and_drops_frames_a_rollback_replaces(tmp_path):
    cfg = rh.config(num_steps=4, ckpt_every_steps=4, eval_every_steps=100, actions__gif__frames=5)
    train_and_evaluate(cfg, tmp_path, progress=False)  # a frame every 4 // 4 = 1 step, dispatches of 2 steps
    folder = tmp_path / "samples" / "frames"
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000002.png", "step_00000004.png"]
    longer = rh.config(num_steps=8, ckpt_every_steps=4, eval_every_steps=100, actions__gif__frames=5)
    train_and_evaluate(longer, tmp_path, progress=False, allow_config_change=["num_steps"])  # every 8 // 4 = 2
    assert sorted(p.name for p in folder.iterdir()) == [f"step_{s:08d}.png" for s in (2, 4, 6, 8)]
    n, size = _frames(tmp_path / "samples" / "training.gif")
    assert n == 4 and size == (256, 256)

    # A rollback to step 4: the frames after it are replaced by the ones trained again.
    action = gif.TrainingGif(every_steps=2, frame_ms=100, last_frame_ms=100)
    action.reset(4)
    run = types.SimpleNamespace(workdir=tmp_path, config=longer)
    state = rh.restore(tmp_path, longer)[0]
    setup = types.SimpleNamespace(spec=types.SimpleNamespace(kind="points", source="synthetic:grid25"),
                                  g_model=__import__("gan_jax.models", fromlist=["build_models"]).build_models(
                                      longer.model, (2,))[0])
    from gan_jax.loop.actions.base import Tick

    ctx = types.SimpleNamespace(tick=Tick(4, 6, {}, False, False), states=lambda: [state], primary=True,
                                runs=[run], blueprint=setup)
    action(ctx)
    assert sorted(p.name for p in folder.iterdir()) == [f"step_{s:08d}.png" for s in (2, 4, 6)]
    assert _frames(tmp_path / "samples" / "training.gif")[0] == 3


def test_image_run_animates_the_sample_grid(tmp_path):
    c = config_lib.load_config(str(rh.ROOT / "experiments" / "digits_dcgan.py") + ":runlocal")
    c.unlock()
    config_lib.apply_overrides(c, {"num_steps": "4", "steps_per_dispatch": "1", "actions.gif.frames": "3",
                                 "writers": "jsonl"})
    c.lock()
    train_and_evaluate(c, tmp_path, progress=False)
    n, (w, h) = _frames(tmp_path / "samples" / "training.gif")
    assert n == 2  # a frame every 4 // 2 = 2 steps
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_00000004.png"))
    assert (h, w) == grid.shape[:2]  # the same 8x8 grid the evaluation draws


def test_off_for_text_and_when_disabled():
    text = types.SimpleNamespace(spec=types.SimpleNamespace(kind="text"))
    points = types.SimpleNamespace(spec=types.SimpleNamespace(kind="points"))
    c = rh.config(num_steps=100)
    assert gif.TrainingGif.from_config(c, text, 1) is None
    assert gif.TrainingGif.from_config(c, points, 1).every_steps == 100 // 39
    off = rh.config(num_steps=100, actions__gif__enabled="False")
    assert gif.TrainingGif.from_config(off, points, 1) is None
    with pytest.raises(config_lib.ConfigError, match="actions.gif.frames"):
        gif.TrainingGif.check(rh.config(actions__gif__frames=1))
