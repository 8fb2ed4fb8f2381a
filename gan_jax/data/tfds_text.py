"""Load a tfds text split as a list of sentences (one per non-blank line of its text feature).

Preparation (array_record, `manual_dir`, the offline probe) is shared with the image loader.
Tiny Shakespeare stores each split as one long text; its lines become the sentences.
"""

from __future__ import annotations

from typing import Any


def load_tfds_sentences(name: str, split: str, data_dir: str | None = None, manual_dir: str | None = None,
                        text_key: str | None = None) -> list[str]:
    """The non-blank lines of every example's text feature, in order, stripped of surrounding spaces."""
    import tensorflow_datasets as tfds  # Lazy: heavy import.

    from gan_jax.data import tfds_images

    builder = tfds_images.ensure_prepared(tfds, name, data_dir, manual_dir)
    features = builder.info.features
    text_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
    if text_key is None:
        if not text_keys:
            raise ValueError(f"tfds dataset {name!r} has no text feature; its features are {sorted(features)}.")
        text_key = "text" if "text" in text_keys else text_keys[0]
    elif text_key not in features:
        raise ValueError(f"tfds dataset {name!r} has no feature {text_key!r}; text features: {text_keys}.")
    source = builder.as_data_source(split)
    sentences: list[str] = []
    for start in range(0, len(source), 1024):
        for example in source.__getitems__(list(range(start, min(start + 1024, len(source))))):
            sentences.extend(_lines(example[text_key]))
    return sentences


def _lines(value: Any) -> list[str]:
    text = value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)
    return [line.strip() for line in text.splitlines() if line.strip()]
