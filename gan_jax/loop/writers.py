"""Where a run's numbers go: one `MetricWriter` interface, fanned out to JSONL, TensorBoard and
Weights & Biases (`config.writers`), plus the console progress bar.

Every writer takes `write_scalars(step, {name: value})`, `write_image(step, tag, png_path)`,
`write_text(step, tag, text)` and `close()`. `make_writer(config, workdir)` builds the ones a
config names; `truncate_metrics` keeps metrics.jsonl consistent with a resumed run.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Mapping

import numpy as np


class QuietWhenGone:
    """A text stream that falls silent, without raising, once its reader is gone (a closed pipe: `| tee log`
    and Ctrl-C; a closed terminal), so that saying something never costs a run its checkpoint."""

    def __init__(self, stream):
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except (OSError, ValueError):  # EPIPE, EIO, or a stream already closed
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def quiet_when_gone() -> None:
    """Wraps sys.stdout and sys.stderr in `QuietWhenGone` (once)."""
    if not isinstance(sys.stdout, QuietWhenGone):
        sys.stdout = QuietWhenGone(sys.stdout)
    if not isinstance(sys.stderr, QuietWhenGone):
        sys.stderr = QuietWhenGone(sys.stderr)


class MetricWriter:
    """The interface (and a writer that writes nothing)."""

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        pass

    def write_image(self, step: int, tag: str, png_path: pathlib.Path) -> None:
        pass

    def write_text(self, step: int, tag: str, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _floats(scalars: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in scalars.items()}


class JsonlWriter(MetricWriter):
    """`{"step": s, name: value, ...}` lines appended to WORKDIR/metrics.jsonl, flushed each write."""

    def __init__(self, workdir: pathlib.Path):
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self._file = open(self.path, "a")

    def write_scalars(self, step, scalars):
        values = _floats(scalars)
        if values:
            self._file.write(json.dumps({"step": int(step), **values}) + "\n")
            self._file.flush()

    def close(self):
        self._file.close()


class TensorBoardWriter(MetricWriter):
    """Scalars, sample pictures and text in WORKDIR/events.out.tfevents.* (tensorboardX)."""

    def __init__(self, workdir: pathlib.Path):
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(str(workdir), flush_secs=30)

    def write_scalars(self, step, scalars):
        for k, v in _floats(scalars).items():
            self._tb.add_scalar(k, v, step)

    def write_image(self, step, tag, png_path):
        from PIL import Image

        self._tb.add_image(tag, np.asarray(Image.open(png_path).convert("RGB")), step, dataformats="HWC")

    def write_text(self, step, tag, text):
        self._tb.add_text(tag, text, step)

    def close(self):
        self._tb.close()


class WandbWriter(MetricWriter):
    """A Weights & Biases run named after the workdir (resumed under the same id), files under
    WORKDIR/wandb; `wandb.mode=offline` writes locally for a later `wandb sync`."""

    def __init__(self, workdir: pathlib.Path, config):
        try:
            import wandb
        except ImportError:
            from gan_jax.errors import ConfigError

            raise ConfigError("writers includes 'wandb', which needs Weights & Biases: pip install 'gan-jax[wandb]' "
                              "(or drop wandb from --config.writers).") from None
        import hashlib

        from gan_jax import config as config_lib

        workdir = pathlib.Path(workdir).absolute()
        run_id = hashlib.sha1(str(workdir).encode()).hexdigest()[:12]  # the same workdir resumes the same run
        self._wandb = wandb
        self._run = wandb.init(project=config.wandb.project, entity=config.wandb.entity, mode=config.wandb.mode,
                               dir=str(workdir), id=run_id, name=workdir.name, resume="allow",
                               config=config_lib.to_dict(config), reinit="create_new")

    def write_scalars(self, step, scalars):
        values = _floats(scalars)
        if values:
            self._run.log(values, step=int(step))

    def write_image(self, step, tag, png_path):
        self._run.log({tag: self._wandb.Image(str(png_path))}, step=int(step))

    def write_text(self, step, tag, text):
        self._run.log({tag: self._wandb.Html(f"<pre>{text}</pre>")}, step=int(step))

    def close(self):
        self._run.finish()


class MultiWriter(MetricWriter):
    """One call fanned out to several writers."""

    def __init__(self, writers: list[MetricWriter]):
        self.writers = writers

    def write_scalars(self, step, scalars):
        for w in self.writers:
            w.write_scalars(step, scalars)

    def write_image(self, step, tag, png_path):
        for w in self.writers:
            w.write_image(step, tag, png_path)

    def write_text(self, step, tag, text):
        for w in self.writers:
            w.write_text(step, tag, text)

    def close(self):
        for w in self.writers:
            w.close()


def make_writer(config, workdir: pathlib.Path) -> MultiWriter:
    """The writers `config.writers` names ("jsonl,tensorboard" by default)."""
    names = [n.strip() for n in config.writers.split(",") if n.strip()]
    build = {"jsonl": lambda: JsonlWriter(workdir), "tensorboard": lambda: TensorBoardWriter(workdir),
             "wandb": lambda: WandbWriter(workdir, config)}
    return MultiWriter([build[n]() for n in names])


def truncate_metrics(path: pathlib.Path, last_step: int) -> None:
    """Drops lines after `last_step` so a resumed run neither duplicates nor skips steps."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError):
            continue  # a line cut short by a killed process
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in kept))
    tmp.replace(path)  # atomic: a kill here leaves the old or the new file, never half of one


class Progress:
    """A console progress bar with steps/s and the latest losses."""

    def __init__(self, total: int, initial: int, enabled: bool = True):
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr,
                         disable=not enabled, smoothing=0.1)

    def update(self, step: int, postfix: Mapping[str, float] | None = None) -> None:
        self._bar.update(step - self._bar.n)
        if postfix:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)

    def write(self, text: str) -> None:
        self._bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
