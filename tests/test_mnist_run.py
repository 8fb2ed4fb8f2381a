"""The seed article's MNIST experiment end to end on tfds mock data (no network, no files)."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax import config as config_lib
from gan_jax.loop.trainer import train_and_evaluate

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.usefixtures("_mocked_download")
def test_seed_mlp_mnist_runs_on_mock_data(tmp_path):
    config = config_lib.load_config(str(ROOT / "experiments" / "seed_mlp_mnist.py") + ":runlocal")
    assert config.data.source == "tfds:mnist" and config.model.latent_dim == 100
    with tfds.testing.mock_data(num_examples=256, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == config.num_steps
    assert np.isfinite(summary["metrics"]["train/d_loss"])
    grid = np.asarray(Image.open(tmp_path / "samples" / f"step_{config.num_steps:08d}.png"))
    assert grid.shape == (8 * 30 + 2, 8 * 30 + 2)  # 8 x 8 digits of 28 px with 2 px padding
    assert json.loads((tmp_path / "config.json").read_text())["data"]["source"] == "tfds:mnist"
