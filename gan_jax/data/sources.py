"""The built-in data sources: 2-D mixtures and the text oracle, tfds datasets, local files, the
bundled digits, Stacked MNIST. Each text source gives token ids; each image source uint8 pixels
that reach the networks in [-1, 1]."""

from __future__ import annotations

import difflib

import numpy as np

from gan_jax.data import (
    DataError,
    DataSpec,
    images_to_float,
    local_images,
    register_source,
    synthetic,
    text,
)


def _text(data_config):
    """Real text enters as token ids [N, max_len]; the text discriminator one-hot encodes them."""
    train_ids, test_ids, tokenizer = text.load_text(data_config)
    spec = DataSpec(data_config.source, (data_config.max_len, tokenizer.vocab_size), "text", len(train_ids),
                    extra={"tokenizer": tokenizer, "test_ids": test_ids})
    return {"x": train_ids}, spec, None


def load_synthetic(data_config, name, split, seed):
    if name == "oracle":
        return _text(data_config)
    if name not in synthetic.MIXTURES:
        near = difflib.get_close_matches(name, list(synthetic.MIXTURES) + ["oracle"], n=1)
        hint = f" Did you mean 'synthetic:{near[0]}'?" if near else ""
        raise DataError(f"Unknown synthetic source {data_config.source!r} (config key 'data.source').{hint} "
                        f"Known: {', '.join('synthetic:' + k for k in [*synthetic.MIXTURES, 'oracle'])}.")
    # The test split is drawn from a different stream than the training set.
    stream = seed if split == "train" else seed + 1_000_003
    x = synthetic.sample_mixture(name, data_config.num_train, stream)
    return {"x": x}, DataSpec(data_config.source, (2,), "points", len(x)), None


def load_tfds(data_config, name, split, seed):
    if text.is_text_source(data_config):
        return _text(data_config)
    from gan_jax.data import tfds_images

    try:
        images, labels, info = tfds_images.load_tfds_arrays(
            name, split, data_dir=data_config.data_dir, manual_dir=data_config.manual_dir,
            resolution=data_config.resolution, crop=data_config.crop)
    except ValueError as e:  # an unknown name, feature or dtype: a config mistake, not a crash
        raise DataError(f"{e} (config key 'data.source' is {data_config.source!r}.)") from e
    if len(images) == 0:
        raise DataError(f"tfds dataset {name!r} split {split!r} is empty.")
    arrays = {"x": images}
    if labels is not None:
        arrays["label"] = labels.astype(np.int32)
    spec = DataSpec(data_config.source, tuple(images.shape[1:]), "image", len(images), info.get("num_classes"))
    return arrays, spec, images_to_float


def load_local(data_config, name, split, seed):
    if text.is_text_source(data_config):
        return _text(data_config)
    arrays, spec = local_images(data_config, data_config.source, name)
    return arrays, spec, images_to_float


def load_digits(data_config, name, split, seed):
    arrays, spec = local_images(data_config, "digits", "")
    return arrays, spec, images_to_float


def load_stacked(data_config, name, split, seed):
    if name != "mnist":
        raise DataError(f"Unknown stacked source {data_config.source!r} (config key 'data.source'); use 'stacked:mnist'.")
    from gan_jax.data import stacked

    images, labels = stacked.load_stacked_mnist(data_config, split, seed)
    spec = DataSpec(data_config.source, tuple(images.shape[1:]), "image", len(images), 1000)
    return {"x": images, "label": labels.astype(np.int32)}, spec, images_to_float


register_source("synthetic", load_synthetic, "synthetic:ring8|grid25|oracle")
register_source("tfds", load_tfds, "tfds:NAME")
register_source("local", load_local, "local:IMAGES.npz|IMAGE_FOLDER|TEXT_FILE")
register_source("digits", load_digits, "digits")
register_source("stacked", load_stacked, "stacked:mnist")
