"""Image sources and preprocessing: resize/crop to a resolution, local `.npz` and folders, `digits`.

Every image source ends as uint8 `[N, H, W, C]` (plus int32 labels where there are labels);
`gan_jax.data.get_dataset` scales to [-1, 1] per batch.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from gan_jax.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_NPZ_IMAGE_KEYS = ("x", "images", "image", "arr_0")
_NPZ_LABEL_KEYS = ("label", "labels", "y")


class ImageSourceError(DataError):
    """An image source that cannot be read, with a message naming the file and the fix."""


def fit_images(images: np.ndarray, resolution: int, crop: str = "center") -> np.ndarray:
    """Center-crops to a square (if `crop == "center"`) and resizes to `resolution` x `resolution`.

    `resolution == 0` keeps the native size. Downsampling uses PIL's box-antialiased
    bicubic filter on uint8 images, the usual choice for building image-GAN datasets.
    """
    if images.ndim != 4:
        raise ValueError(f"Expected images [N, H, W, C], got shape {images.shape}.")
    n, h, w, c = images.shape
    if crop not in ("center", "none"):
        raise ValueError(f"Unknown crop {crop!r} (config key 'data.crop'); use 'center' or 'none'.")
    if crop == "center" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        images = images[:, top:top + side, left:left + side]
        h = w = side
    if resolution == 0 or (h == resolution and w == resolution):
        return np.ascontiguousarray(images)
    from PIL import Image

    out = np.empty((n, resolution, resolution, c), np.uint8)
    for i in range(n):
        img = images[i, :, :, 0] if c == 1 else images[i]
        pil = Image.fromarray(img).resize((resolution, resolution), Image.Resampling.BICUBIC,
                                          reducing_gap=None)
        arr = np.asarray(pil)
        out[i] = arr[..., None] if arr.ndim == 2 else arr
    return out


def _as_uint8(array: np.ndarray, origin: str) -> np.ndarray:
    """uint8 [N, H, W, C] from uint8, or from floats in [0, 1] or [-1, 1]."""
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise ImageSourceError(f"{origin}: expected images of shape [N, H, W] or [N, H, W, C] with C in "
                               f"1, 3, 4; got {array.shape}.")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        lo, hi = float(array.min()), float(array.max())
        if lo >= -1.0 - 1e-6 and hi <= 1.0 + 1e-6:
            scaled = (array + 1.0) * 127.5 if lo < 0 else array * 255.0
            return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        raise ImageSourceError(f"{origin}: float images must lie in [0, 1] or [-1, 1]; found [{lo:.3g}, {hi:.3g}]. "
                               "Store uint8 images or rescale them.")
    raise ImageSourceError(f"{origin}: images have dtype {array.dtype}; store uint8 or float images.")


def load_npz(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (and labels) from a `.npz`: keys x|images|image|arr_0, and label|labels|y."""
    if not os.path.exists(path):
        raise ImageSourceError(f"local image file {path!r} does not exist (config key 'data.source').")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            image_key = next((k for k in _NPZ_IMAGE_KEYS if k in npz), None)
            if image_key is None:
                raise ImageSourceError(f"{path}: no image array; expected one of the keys "
                                       f"{', '.join(_NPZ_IMAGE_KEYS)}, found {', '.join(keys) or 'none'}.")
            images = npz[image_key]
            label_key = next((k for k in _NPZ_LABEL_KEYS if k in npz), None)
            labels = npz[label_key] if label_key else None
    except (OSError, ValueError) as e:
        if isinstance(e, ImageSourceError):
            raise
        raise ImageSourceError(f"{path} is not a readable .npz file: {e}") from e
    images = _as_uint8(images, path)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise ImageSourceError(f"{path}: labels must be integers of shape ({len(images)},); "
                                   f"got {labels.dtype} {labels.shape}.")
        labels = labels.astype(np.int32)
    return images, labels


def load_folder(path: str, resolution: int, crop: str) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Images from a folder of PNG/JPEG files.

    If every image sits in a subfolder, the subfolder names (sorted) are the classes and
    the labels follow them. Images are cropped/resized one by one to `resolution`; with
    `resolution == 0` all files must have the same size.
    """
    from PIL import Image, UnidentifiedImageError

    root = pathlib.Path(path)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageSourceError(f"local image folder {path!r} holds no image files "
                               f"({', '.join(IMAGE_SUFFIXES)}).")
    parents = {p.parent for p in files}
    class_names = None
    labels = None
    if root not in parents:
        class_names = sorted({p.relative_to(root).parts[0] for p in files})
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[p.relative_to(root).parts[0]] for p in files], np.int32)
    images = []
    first_shape = None
    for p in files:
        try:
            with Image.open(p) as pil:
                pil.load()
                arr = np.asarray(pil.convert("RGB") if pil.mode not in ("L", "RGB") else pil)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ImageSourceError(f"cannot read image file {p}: {e}. Remove or replace the file.") from e
        arr = arr[..., None] if arr.ndim == 2 else arr
        if first_shape is None:
            first_shape = (arr.shape, p)
        elif arr.shape[-1] != first_shape[0][-1]:
            # Mixed grayscale and color: promote everything to RGB.
            arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
        if resolution == 0 and arr.shape[:2] != first_shape[0][:2]:
            raise ImageSourceError(
                f"images in {path!r} have different sizes ({first_shape[1].name} is "
                f"{first_shape[0][1]}x{first_shape[0][0]}, {p.name} is {arr.shape[1]}x{arr.shape[0]}); "
                "set --config.data.resolution to resize them all.")
        images.append(fit_images(arr[None], resolution, crop)[0])
    channels = max(img.shape[-1] for img in images)
    images = [np.repeat(img, 3, axis=-1) if img.shape[-1] < channels else img for img in images]
    return np.stack(images), labels, class_names


def load_digits(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), no download.

    Intensities 0..16 become 0..255; images are resized to `resolution` (0 keeps 8x8).
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return fit_images(images, resolution), bunch.target.astype(np.int32)
