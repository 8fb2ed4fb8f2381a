"""`gif`: an animated GIF of the fixed-noise samples across training, `samples/training.gif`.

Each frame is drawn from the same noise (the run's evaluation stream), so the animation shows one set of
samples finding their place; the modality draws the frame (`loop.modalities`: for images the 8x8 grid,
one row per class for a conditional generator; for 2-D points the samples over the true means). Frames are kept as `samples/frames/step_XXXXXXXX.png`
and the GIF is rebuilt from them at each frame, so a resumed or rolled-back run continues its animation
(frames past the step it restarts from are dropped). On by default for image and 2-D runs; about
`actions.gif.frames` frames over the run, each shown `actions.gif.frame_ms` milliseconds (the last one
`actions.gif.last_frame_ms`).
"""

from __future__ import annotations

import pathlib

from gan_jax.loop import pictures
from gan_jax.loop.actions.base import PeriodicAction, register_action, require, settings
from gan_jax.loop.modalities import modality


def write_gif(folder: pathlib.Path, path: pathlib.Path, frame_ms: int, last_frame_ms: int,
              upto: int | None = None) -> int:
    """`path` from the frames in `folder` (those at steps <= `upto`); returns the number of frames."""
    from PIL import Image

    frames = sorted(p for p in folder.glob("step_*.png") if upto is None or int(p.stem[5:]) <= upto)
    if not frames:
        return 0
    images = [Image.open(p).convert("RGB") for p in frames]
    durations = [frame_ms] * (len(images) - 1) + [last_frame_ms]
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    tmp.replace(path)
    return len(images)


@register_action
class TrainingGif(PeriodicAction):
    name = "gif"
    order = 35
    syncs = True
    config = {"enabled": True, "frames": 40, "frame_ms": 150, "last_frame_ms": 1500}

    def __init__(self, every_steps: int, frame_ms: int, last_frame_ms: int):
        super().__init__(every_steps=every_steps)
        self.frame_ms, self.last_frame_ms = frame_ms, last_frame_ms
        self._restart: int | None = None  # set by reset: frames after this step are to be drawn again

    @classmethod
    def check(cls, config):
        s = settings(config, cls.name)
        require(s.frames >= 2, "actions.gif.frames", f"must be at least 2, got {s.frames}.")
        require(s.frame_ms > 0 and s.last_frame_ms > 0, "actions.gif.frame_ms",
                "frame durations must be positive milliseconds.")

    @classmethod
    def from_config(cls, config, blueprint, num_runs):
        s = settings(config, cls.name)
        if not s.enabled or not modality(blueprint.spec.kind).animated:
            return None
        return cls(max(1, config.num_steps // (s.frames - 1)), s.frame_ms, s.last_frame_ms)

    def reset(self, step):
        self._restart = step

    def run(self, ctx):
        step = ctx.tick.step
        states = ctx.states()
        if not ctx.primary:
            return
        for run, state in zip(ctx.runs, states):
            folder = run.workdir / "samples" / "frames"
            folder.mkdir(parents=True, exist_ok=True)
            if self._restart is not None:
                for stale in folder.glob("step_*.png"):
                    if int(stale.stem[5:]) > self._restart:
                        stale.unlink()
            frame = modality(ctx.blueprint.spec.kind).frame(ctx.blueprint, run.config, state)
            pictures.save_png(folder / f"step_{step:08d}.png", frame)
            write_gif(folder, run.workdir / "samples" / "training.gif", self.frame_ms, self.last_frame_ms, step)
        self._restart = None
