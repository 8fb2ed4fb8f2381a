"""Load a whole TFDS image split into numpy arrays via array_record random access.

TensorFlow Datasets (and TensorFlow, needed only to prepare a dataset) are
imported lazily so that importing this module stays cheap. Decoded arrays are
cached as `.npz` next to the prepared dataset, so later loads skip decoding.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import functools
import hashlib
import importlib.util
import io
import logging
import os
import pathlib
import re
import socket
import time
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from gan_jax.errors import DataError

__all__ = [
    "DatasetFormatError",
    "DatasetUnavailableError",
    "load_tfds_arrays",
]

_log = logging.getLogger(__name__)

# Records decoded per `__getitems__` call: large enough to amortise overhead.
_READ_BATCH = 8192
# Bump when the cached array layout changes, so stale caches are ignored.
_CACHE_VERSION = 1
_PROBE_TIMEOUT_S = 5.0
_PIL_MODE_FOR_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}


class DatasetUnavailableError(DataError, RuntimeError):
    """The dataset is not prepared and could not be downloaded or prepared."""


class DatasetFormatError(DataError, RuntimeError):
    """The dataset is prepared in a format without random access (TFRECORD)."""


def _fit_one(img, resolution, crop):
    """One decoded image resized / cropped to the configured resolution."""
    from gan_jax.data.images import fit_images

    return fit_images(img[None], resolution, crop)[0]


def load_tfds_arrays(
    name: str,
    split: str = "train",
    data_dir: str | None = None,
    manual_dir: str | None = None,
    image_key: str = "image",
    label_key: str | None = "label",
    *,
    cache: bool = True,
    resolution: int = 0,
    crop: str = "center",
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Loads a whole tfds image split into memory.

    Prepares the dataset in array_record format first if needed; when
    `manual_dir` is given, nothing is downloaded. With `cache`, the decoded
    arrays are stored beside the prepared data and reused on later calls. With
    `resolution`, every image is center-cropped to a square (`crop="center"`) and resized to
    `resolution` x `resolution` as it is read, so full-size datasets never sit in memory.

    Returns:
      images: uint8 `[N, H, W, C]`.
      labels: int32 `[N]`, or None if `label_key` is None or not a feature.
      info: dict with 'name', 'split', 'num_classes' (int or None) and
        'label_names' (list of str or None).
    """
    import tensorflow_datasets as tfds  # Lazy: heavy import.

    builder = ensure_prepared(tfds, name, data_dir, manual_dir)

    features = builder.info.features
    if image_key not in features:
        raise ValueError(
            f"Dataset {name!r} has no feature {image_key!r}; available features: "
            f"{sorted(features.keys())}."
        )
    image_feature = features[image_key]
    image_dtype = np.dtype(image_feature.np_dtype)
    if image_dtype != np.uint8:
        raise ValueError(
            f"Feature {image_key!r} of dataset {name!r} has dtype {image_dtype}; "
            "only uint8 images are supported."
        )
    if label_key is not None and label_key not in features:
        label_key = None  # Unlabelled dataset: return no labels rather than fail.

    num_classes = label_names = None
    if label_key is not None and isinstance(features[label_key], tfds.features.ClassLabel):
        num_classes = int(features[label_key].num_classes)
        label_names = list(features[label_key].names)
    info = {
        "name": name,
        "split": split,
        "num_classes": num_classes,
        "label_names": label_names,
    }

    cache_path = None
    # Only cache really prepared data (not e.g. under tfds.testing.mock_data).
    if cache and builder.is_prepared():
        cache_path = _cache_path(builder, split, image_key, label_key, resolution, crop)
        cached = _load_cache(cache_path, label_key)
        if cached is not None:
            return cached[0], cached[1], info

    decoders = None
    channels = None
    if isinstance(image_feature, tfds.features.Image):
        # tfds' per-example decode wrapper costs more than the PNG decode itself.
        decoders = {image_key: tfds.decode.SkipDecoding()}
        channels = image_feature.shape[-1]
    source = builder.as_data_source(split, decoders=decoders)
    fit = None
    if resolution:
        fit = functools.partial(_fit_one, resolution=resolution, crop=crop)
    images, labels = _read_all(source, image_key, label_key, channels, name, split, fit)
    if cache_path is not None:
        _save_cache(cache_path, images, labels)
    return images, labels, info


@contextlib.contextmanager
def _quiet(tfds: Any):
    """tfds and TensorFlow without their chatter: no progress bars (whose MiB/s are meaningless for a
    manual_dir), no "Variant folder ... has no dataset_info.json" for a folder that is about to be
    prepared, no "Downloading ..." banner printed to stdout when nothing is downloaded, no oneDNN
    notice. Errors still raise; what gan_jax has to say about preparing is said by `_prepare`."""
    # Read when TensorFlow is first imported. oneDNN's notice ignores the log level; preparing only
    # decodes and re-encodes records, which oneDNN's float kernels do not touch.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    tfds.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tfds.display_progress_bar(True)
        absl_logger.setLevel(level)


def ensure_prepared(tfds: Any, name: str, data_dir: str | None, manual_dir: str | None) -> Any:
    """The builder of a prepared dataset (in array_record format), preparing it first if needed.

    Preparation holds an exclusive lock beside the dataset's folder, so that runs started together
    on a fresh machine (a sweep's processes) prepare it once: the others wait, then read it. Without
    the lock they raced on tfds' temporary folders and failed.
    """
    builder = _get_builder(tfds, name, data_dir)
    if not is_prepared(tfds, builder):
        folder = pathlib.Path(builder.data_dir)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.prepare.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _log.warning("Waiting for another process that is preparing tfds dataset %r in %s ...", name, folder)
                fcntl.flock(lock, fcntl.LOCK_EX)
            builder = _get_builder(tfds, name, data_dir)  # what the other process wrote, if it did
            if not is_prepared(tfds, builder):
                _prepare(tfds, builder, manual_dir)  # in array_record: nothing to check
                return builder
    _check_random_access(builder)
    return builder


def is_prepared(tfds: Any, builder: Any) -> bool:
    """`builder.is_prepared()`, without its warning about the empty folder it is about to fill."""
    with _quiet(tfds):
        return builder.is_prepared()


def _get_builder(tfds: Any, name: str, data_dir: str | None) -> Any:
    """Returns `tfds.builder(name)`, with close-name suggestions if unknown."""
    try:
        with _quiet(tfds):
            return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        # Strip `/config` and `:version` so that 'mnst:3.0.1' still gets suggestions.
        base = name.split("/")[0].split(":")[0]
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(base, known, n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown tfds dataset {name!r}.{hint} See tfds.list_builders() for all names."
        ) from err


def _check_random_access(builder: Any) -> None:
    """Raises `DatasetFormatError` if the prepared data has no random-access format."""
    from tensorflow_datasets.core import file_adapters

    formats = builder.info.available_file_formats()
    if formats & file_adapters.FileFormat.with_random_access():
        return
    found = ", ".join(sorted(f.value for f in formats)) or "unknown"
    raise DatasetFormatError(
        f"Dataset {builder.name!r} is already prepared at {builder.data_dir} in "
        f"format {found}, but array_record (random access) is required. Either "
        "point `data.data_dir` at another directory so it is prepared again as "
        f"array_record, or delete {builder.data_dir} and retry."
    )


def _prepare(tfds: Any, builder: Any, manual_dir: str | None) -> None:
    """Runs `download_and_prepare` in array_record format, with helpful errors."""
    if importlib.util.find_spec("tensorflow") is None:
        raise DatasetUnavailableError(
            f"Preparing tfds dataset {builder.name!r} needs TensorFlow, which is not installed: "
            "pip install 'gan-jax[tf]' (or tensorflow-cpu), or point data.data_dir at a directory where the "
            "dataset is already prepared in array_record format."
        )
    if manual_dir is not None:
        _check_manual_dir(builder, manual_dir)
    else:
        _check_online(builder)

    from tensorflow_datasets.core.download import download_manager, extractor

    download_config = tfds.download.DownloadConfig(
        manual_dir=manual_dir,
        # GCS-hosted copies are TFRECORD only; skip the network probe for them.
        try_download_gcs=False,
    )
    expected_errors: tuple[type[BaseException], ...] = (
        tfds.download.DownloadError,
        download_manager.NonMatchingChecksumError,
        extractor.ExtractError,
        OSError,  # Includes ConnectionError and requests' errors.
        AssertionError,  # tfds raises it for a missing or empty manual dir.
    )
    source = f"from the files in {manual_dir}" if manual_dir is not None else "downloading what it needs"
    _log.warning("Preparing tfds dataset %r into %s, %s (once; later runs reuse it) ...", builder.name,
                 builder.data_dir, source)
    started = time.perf_counter()
    try:
        with _quiet(tfds):
            builder.download_and_prepare(file_format="array_record", download_config=download_config)
        _log.warning("Prepared tfds dataset %r in %.0f s.", builder.name, time.perf_counter() - started)
    except expected_errors as err:
        if isinstance(err, download_manager.NonMatchingChecksumError):
            what = "a downloaded or manual_dir file has the wrong checksum"
        else:
            what = "the machine seems offline or the download failed"
        raise DatasetUnavailableError(
            f"Could not prepare tfds dataset {builder.name!r}: {what} "
            f"({type(err).__name__}: {_first_line(err)}). " + _manual_dir_hint(builder, manual_dir)
        ) from err


def _check_manual_dir(builder: Any, manual_dir: str) -> None:
    """Fails fast (no download attempt) if files expected in `manual_dir` are missing."""
    expected = _expected_files(builder)
    if not expected or builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        return  # tfds cannot tell the file names; let the builder complain.
    missing = [f for f in expected if not os.path.exists(os.path.join(manual_dir, f))]
    if missing:
        raise DatasetUnavailableError(
            f"Could not prepare tfds dataset {builder.name!r}: manual_dir "
            f"{manual_dir!r} is missing {', '.join(missing)} (nothing is "
            "downloaded when a manual_dir is given). " + _manual_dir_hint(builder, manual_dir)
        )


def _check_online(builder: Any) -> None:
    """Fails fast when the download host is unreachable (tfds retries for minutes)."""
    urls = sorted(builder.url_infos or {})
    if not urls or urllib.request.getproxies():
        return  # Nothing to probe, or a proxy may reach what a direct connection cannot.
    parts = urllib.parse.urlsplit(urls[0])
    port = parts.port or {"http": 80, "ftp": 21}.get(parts.scheme, 443)
    try:
        socket.create_connection((parts.hostname, port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as err:
        raise DatasetUnavailableError(
            f"Could not prepare tfds dataset {builder.name!r}: the machine seems "
            f"offline or the download failed (cannot reach {parts.hostname}: {err}). "
            + _manual_dir_hint(builder, None)
        ) from err


def _expected_files(builder: Any) -> list[str]:
    """File names of the dataset's registered downloads (may be empty)."""
    url_infos = builder.url_infos or {}
    return sorted({i.filename for i in url_infos.values() if i.filename})


def _manual_dir_hint(builder: Any, manual_dir: str | None) -> str:
    """Explains the `data.manual_dir` / `data.data_dir` config keys."""
    files = _expected_files(builder)
    files_msg = f" ({', '.join(files)})" if files else ""
    given = f" (currently {manual_dir!r})" if manual_dir else ""
    return (
        f"Set `data.manual_dir`{given} to a folder holding the original "
        f"files{files_msg} with the expected checksums, and `data.data_dir` to "
        f"where the prepared dataset should be written (currently {builder.data_dir})."
    )


def _first_line(err: BaseException) -> str:
    """First line of an exception message (tfds messages can be very long)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _cache_path(builder: Any, split: str, image_key: str, label_key: str | None, resolution: int = 0,
                crop: str = "center") -> str:
    """Path of the decoded-array cache for this split, key choice and resolution."""
    key = repr((split, image_key, label_key, _CACHE_VERSION) + ((resolution, crop) if resolution else ()))
    # Readable prefix plus a hash: sanitising alone maps 'train[:10]' and 'train[:10%]' alike.
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{split}__{image_key}")
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    cache_dir = os.path.join(os.fspath(builder.data_dir), "gan_jax_arrays")
    return os.path.join(cache_dir, f"{readable}-{digest}.npz")


def _load_cache(path: str, label_key: str | None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Returns cached (images, labels), or None if absent or unreadable."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as npz:
            return npz["images"], (npz["labels"] if label_key else None)
    except (OSError, ValueError, KeyError) as err:
        _log.warning("Ignoring unreadable array cache %s: %s", path, err)
        return None


def _save_cache(path: str, images: np.ndarray, labels: np.ndarray | None) -> None:
    """Writes the array cache atomically; failure only costs speed next time."""
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = labels
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # Atomic: concurrent readers never see a partial file.
    except OSError as err:
        _log.warning("Could not write array cache %s: %s", path, err)
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_all(
    source: Any,
    image_key: str,
    label_key: str | None,
    channels: int | None,
    name: str,
    split: str,
    fit: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decodes every record of a data source into stacked numpy arrays (each through `fit` if given)."""
    n = len(source)
    if n == 0:
        raise ValueError(f"Split {split!r} of dataset {name!r} is empty.")
    images: np.ndarray | None = None
    labels = np.empty((n,), np.int32) if label_key else None
    for start in range(0, n, _READ_BATCH):
        idx = list(range(start, min(start + _READ_BATCH, n)))
        for i, example in zip(idx, source.__getitems__(idx), strict=True):
            img = _to_image_array(example[image_key], channels)
            if fit is not None:
                img = fit(img)
            if images is None:
                # Preallocate from the first example: avoids a second full copy.
                images = np.empty((n,) + img.shape, np.uint8)
            if img.shape != images.shape[1:]:
                raise ValueError(
                    f"Images of dataset {name!r} split {split!r} vary in shape "
                    f"({images.shape[1:]} vs {img.shape} at index {i}); only "
                    "fixed-size image datasets can be stacked; set --config.data.resolution to resize them."
                )
            images[i] = img
            if labels is not None:
                labels[i] = example[label_key]
    return images, labels


def _to_image_array(value: Any, channels: int | None) -> np.ndarray:
    """Returns an `[H, W, C]` uint8 array from encoded image bytes or an array."""
    if isinstance(value, (bytes, memoryview)):
        from PIL import Image  # Lazy: only needed when images come encoded.

        with Image.open(io.BytesIO(value)) as pil:
            mode = _PIL_MODE_FOR_CHANNELS.get(channels)
            if mode is not None and pil.mode != mode:
                pil = pil.convert(mode)  # Match tfds, which decodes to the declared channels.
            value = np.asarray(pil)
    img = np.asarray(value, dtype=np.uint8)
    return img[..., None] if img.ndim == 2 else img
