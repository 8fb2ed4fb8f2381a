"""Classifier metrics for small domains: an MNIST CNN trained by gan_jax, and what it measures.

- FID-MNIST: the Frechet distance in the classifier's 128-d penultimate features, a
  feature space that knows digits (Inception was never trained on them).
- Label statistics of generated digits: the entropy of the predicted-class histogram and
  its KL from uniform (class balance), and the mean confidence.
- Stacked MNIST (PacGAN's protocol, Lin et al. 2018): three MNIST digits stacked as
  RGB channels give 1000 modes; the classifier labels each channel, a sample's mode is
  100 c_R + 10 c_G + c_B; report the modes hit among 26,000 samples and KL(p_gen || uniform).

The classifier is trained once (`train_classifier`, `gan-jax train-classifier`) and saved
with Orbax under `<cache>/gan_jax/classifiers/<name>/`; `MNISTClassifier.load` reads it back.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

NUM_CLASSES = 10
STACKED_MODES = 1000
STACKED_NUM_SAMPLES = 26_000
DEFAULT_NAME = "mnist_cnn"

# PacGAN (Lin et al. 2018), Table 2: Stacked MNIST, modes hit (of 1000) and KL over 26,000 samples.
PACGAN_TABLE2 = {"DCGAN": (99, 3.40), "VEEGAN": (150, 2.95), "PacDCGAN2": (1000, 0.06)}


class CNN(nn.Module):
    """28x28x1 in [-1, 1] -> (features [N, 128], logits [N, 10])."""

    @nn.compact
    def __call__(self, x):
        # Strided convolutions rather than max pools: a quarter of the work, and cheap on CPU.
        x = nn.relu(nn.Conv(32, (3, 3), strides=(2, 2), name="conv1")(x))
        x = nn.relu(nn.Conv(64, (3, 3), strides=(2, 2), name="conv2")(x))
        features = nn.relu(nn.Dense(128, name="dense")(x.reshape((x.shape[0], -1))))
        return features, nn.Dense(NUM_CLASSES, name="logits")(features)


def cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "gan_jax" / "classifiers"


def trained_dir(directory: str | pathlib.Path | None = None) -> pathlib.Path:
    """The folder of a saved classifier (default: the cache's); FileNotFoundError with the fix if it holds none."""
    directory = pathlib.Path(directory or cache_dir() / DEFAULT_NAME).absolute()
    if not (directory / "params").exists():
        raise FileNotFoundError(
            f"No trained MNIST classifier in {directory}; train one first: gan-jax train-classifier "
            f"--manual_dir PATH/TO/mnist (or give its directory with --classifier).")
    return directory


def train_classifier(images: np.ndarray, labels: np.ndarray, num_steps: int = 2000, batch_size: int = 128,
                     learning_rate: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Adam on cross-entropy; images uint8 [N, 28, 28, 1] or float in [-1, 1]. Returns the params."""
    x = _to_float(images)
    y = np.asarray(labels, np.int32)
    model = CNN()
    params = model.init(jax.random.key(seed), jnp.zeros((1, 28, 28, 1)))["params"]
    tx = optax.adam(learning_rate)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            _, logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    for _ in range(num_steps):
        idx = rng.integers(0, len(x), batch_size)
        params, opt_state, _ = step(params, opt_state, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
    return jax.device_get(params)


def _to_float(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return images.astype(np.float32)


class MNISTClassifier:
    """A trained CNN: features, predictions, and stacked-MNIST mode labels of images in [-1, 1]."""

    def __init__(self, params: dict[str, Any], meta: dict[str, Any] | None = None, batch_size: int = 1000):
        self.params = jax.tree.map(jnp.asarray, params)
        self.meta = dict(meta or {})
        self.batch_size = batch_size
        model = CNN()
        self._apply = jax.jit(lambda p, x: model.apply({"params": p}, x))
        accuracy = self.meta.get("test_accuracy")
        self.name = f"{self.meta.get('name', DEFAULT_NAME)}" + (f" (test acc {accuracy:.4f})" if accuracy else "")

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = _to_float(images)
        if x.ndim != 4 or x.shape[1:] != (28, 28, 1):
            raise ValueError(f"the MNIST classifier takes [N, 28, 28, 1] images, got {x.shape}.")
        feats, logits = [], []
        for start in range(0, len(x), self.batch_size):
            f, l = self._apply(self.params, jnp.asarray(x[start:start + self.batch_size]))
            feats.append(np.asarray(f, np.float64))
            logits.append(np.asarray(l, np.float64))
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._run(images)[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.argmax(self._run(images)[1], axis=1)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """[N, 10] softmax class probabilities (float64)."""
        logits = self._run(images)[1]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict(images) == np.asarray(labels)))

    def predict_stacked(self, images: np.ndarray) -> np.ndarray:
        """[N, 28, 28, 3] -> mode index 100 c_R + 10 c_G + c_B in [0, 1000)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"stacked MNIST samples are [N, 28, 28, 3], got {images.shape}.")
        digits = [self.predict(images[..., c:c + 1]) for c in range(3)]
        return 100 * digits[0] + 10 * digits[1] + digits[2]

    def save(self, directory: str | pathlib.Path) -> pathlib.Path:
        import orbax.checkpoint as ocp

        directory = pathlib.Path(directory).absolute()
        directory.mkdir(parents=True, exist_ok=True)
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(directory / "params", jax.device_get(self.params), force=True)
        checkpointer.wait_until_finished()
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | pathlib.Path | None = None) -> "MNISTClassifier":
        import orbax.checkpoint as ocp

        directory = trained_dir(directory)
        target = jax.eval_shape(lambda: CNN().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"])
        params = ocp.StandardCheckpointer().restore(directory / "params", target)
        meta = json.loads((directory / "meta.json").read_text()) if (directory / "meta.json").exists() else {}
        return cls(params, meta)


def label_statistics(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> dict[str, float]:
    """Class balance of predicted labels: entropy (nats), KL(p || uniform), classes hit, largest class share."""
    p = np.bincount(np.asarray(labels), minlength=num_classes) / max(len(labels), 1)
    nonzero = p > 0
    entropy = float(-np.sum(p[nonzero] * np.log(p[nonzero])))
    return {"entropy": entropy, "kl_uniform": float(np.log(num_classes) - entropy),
            "classes_hit": float(nonzero.sum()), "max_class_fraction": float(p.max())}


CONFIDENT = 0.9


def confidence_statistics(probabilities: np.ndarray, threshold: float = CONFIDENT) -> dict[str, float]:
    """How sure the classifier is of each sample's digit: the share of samples whose top class
    probability is at least `threshold` ("confident"), the mean top probability, and the classes that at
    least one confident sample is labelled with ("classes_confident": `classes_hit` counts every argmax, so
    pure noise hits all 10; this counts only the digits the classifier recognises)."""
    probabilities = np.asarray(probabilities)
    top = probabilities.max(axis=1)
    sure = top >= threshold
    classes = np.unique(np.argmax(probabilities[sure], axis=1)).size if sure.any() else 0
    return {"confident": float(np.mean(sure)), "mean_top_probability": float(top.mean()),
            "classes_confident": float(classes)}


def stacked_mnist_modes(modes: np.ndarray) -> dict[str, float]:
    """PacGAN's Stacked MNIST numbers, modes hit (of 1000) and KL(p_gen || uniform over 1000), and the KL
    split exactly in two: `kl_digits`, the sum over the three channels of each channel's digit
    distribution's KL to uniform over 10 (the digits' own imbalance), and `kl_dependence`, the rest, the
    total correlation sum_c H(channel c) - H(mode) (the channels' digits depending on one another).

    A generator that is exactly uniform still scores a KL of about (1000 - 1) / (2 N) on N samples
    (0.019 at N = 26,000), the bias of the plug-in estimate."""
    modes = np.asarray(modes)
    joint = label_statistics(modes, STACKED_MODES)
    kl_digits = sum(label_statistics(digit)["kl_uniform"] for digit in (modes // 100, modes // 10 % 10, modes % 10))
    return {"modes": joint["classes_hit"], "kl": joint["kl_uniform"], "kl_digits": kl_digits,
            "kl_dependence": joint["kl_uniform"] - kl_digits}


def format_stacked_table(result: dict[str, float], num_samples: int) -> str:
    rows = [f"Stacked MNIST: {num_samples} samples   modes (of 1000)   KL(p || uniform)",
            f"  this run                 {result['modes']:6.0f}          {result['kl']:8.3f}"]
    for name, (modes, kl) in PACGAN_TABLE2.items():
        rows.append(f"  PacGAN Table 2 {name:<9} {modes:6d}          {kl:8.2f}")
    return "\n".join(rows)


# ---- the classifier metrics, as metric plugins (metrics.base) ----------------------------------------------

from gan_jax.metrics.base import MetricError, register_metric  # noqa: E402  (below the network they use)


def _mnist_like(inputs, name: str) -> None:
    shape = inputs.samples.shape[1:]
    if shape[-1] != 1 or shape[:2] != (28, 28):
        raise MetricError(f"{name} needs 28x28x1 MNIST-like samples, got {shape}.")


@register_metric("fid_mnist", kinds=("image",), needs=("classifier", "reference"),
                 protocol="Frechet distance of gan_jax's MNIST CNN's 128-d features, N samples vs N_real of the split")
def _fid_mnist(inputs):
    from gan_jax.metrics import fid, reference

    _mnist_like(inputs, "fid_mnist")
    classifier = inputs.classifier
    real = reference.reference_features(inputs.dataset, inputs.split, inputs.real, inputs.num_real, classifier.name,
                                        lambda x: {"features": classifier.features(x)}, inputs.cache_dir)["features"]
    return [{"metric": "fid_mnist", "value": fid.fid_from_features(real, classifier.features(inputs.samples))}]


@register_metric("labels", kinds=("image",), needs=("classifier",),
                 protocol="the MNIST CNN's labels of N samples: entropy, KL from uniform, classes hit, share with "
                          "p >= 0.9, classes of those confident samples")
def _labels(inputs):
    _mnist_like(inputs, "labels")
    probabilities = inputs.classifier.probabilities(inputs.samples)
    result = {**label_statistics(np.argmax(probabilities, axis=1)), **confidence_statistics(probabilities)}
    return [{"metric": f"labels/{k}", "value": v} for k, v in result.items()]


def requested_class_shares(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, dict[int, float]]:
    """The share of samples predicted as the class they were drawn for, overall and per requested class."""
    labels = np.asarray(labels)
    hit = np.asarray(predicted) == labels
    return float(np.mean(hit)), {int(c): float(np.mean(hit[labels == c])) for c in np.unique(labels)}


def _check_class_share(inputs):
    if inputs.labels is None:
        raise MetricError("class_share scores a class-conditional generator (the share of samples in the class "
                          "they were drawn for); this run is unconditional: use --metrics labels for its class "
                          "balance.")


@register_metric("class_share", kinds=("image",), needs=("classifier",), check=_check_class_share,
                 protocol="a class-conditional G's N samples, classes requested in turn: the share the MNIST CNN "
                          "assigns to the requested class, overall and in the worst class")
def _class_share(inputs):
    _check_class_share(inputs)
    _mnist_like(inputs, "class_share")
    overall, per_class = requested_class_shares(inputs.classifier.predict(inputs.samples), inputs.labels)
    return [{"metric": "class_share", "value": overall},
            {"metric": "class_share/worst_class", "value": min(per_class.values())}]


@register_metric("stacked_mnist", kinds=("image",), needs=("classifier",),
                 protocol="Stacked MNIST: the CNN labels each channel; modes hit of 1000 and KL(p || uniform) over N "
                          "samples (26,000 in PacGAN's protocol)")
def _stacked_mnist(inputs):
    channels = inputs.samples.shape[-1]
    if channels != 3:
        raise MetricError(f"stacked_mnist needs 3-channel samples (one digit per channel), got {channels}.")
    result = stacked_mnist_modes(inputs.classifier.predict_stacked(inputs.samples))
    return [{"metric": f"stacked_mnist/{k}", "value": v} for k, v in result.items()]
