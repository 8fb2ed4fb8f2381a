"""Metric plugins: each metric declares the data kinds it applies to, what it needs and its protocol.

`register_metric(name, kinds=..., needs=..., protocol=...)` decorates `compute(inputs) -> records`, where
`inputs` is a `MetricInputs` (the generated samples, and on request the real reference, Inception
features, the MNIST classifier) and a record is `{"metric": NAME, "value": float, ...}` (the caller adds the
structured protocol: sample counts, split, network). What a metric needs:

- "inception": the FID Inception network (`metrics.inception.FeatureExtractor`);
- "classifier": gan_jax's MNIST CNN (`metrics.classifier.MNISTClassifier`);
- "reference": real examples of the run's data (a split, or the mixture a 2-D run samples).

Training-time evaluation, `gan-jax evaluate` and `gan-jax sweep --evaluate` look metrics up here: training
computes the metrics of its data kind that need no network; the tools load what the asked-for metrics
need. A metric is one file that registers itself (any module of this package, or one an experiment imports).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from gan_jax.errors import GanJaxError
from gan_jax.registry import Registry

NEEDS = ("inception", "classifier", "reference")


class MetricError(GanJaxError, ValueError):
    """A metric that cannot be computed here, with the reason and the fix."""


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    kinds: tuple[str, ...]  # data kinds it applies to: "image", "points", "text"
    needs: tuple[str, ...]  # of NEEDS
    protocol: str  # one line: what is measured, on what, how
    compute: Callable[["MetricInputs"], list[dict]]
    records: tuple[str, ...] = ()  # the record names it writes, when not NAME or NAME/...
    check: Callable[["MetricInputs"], None] | None = None  # raises MetricError before any sample is drawn

    def writes(self, record_name: str) -> bool:
        if self.records:
            return record_name in self.records
        return record_name == self.name or record_name.startswith(self.name + "/")


METRICS: Registry[Metric] = Registry("metric", "--metrics", ("gan_jax.metrics",))


def register_metric(name: str, *, kinds: tuple[str, ...], needs: tuple[str, ...] = (), protocol: str,
                    records: tuple[str, ...] = (), check: Callable | None = None) -> Callable:
    """Decorator: `compute(inputs: MetricInputs) -> list of records` becomes the metric `name`; `check(inputs)`,
    given the networks but no samples yet, raises `MetricError` for a request that cannot be met."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"metric {name!r} needs unknown {sorted(unknown)}; a metric may need {', '.join(NEEDS)}.")

    def wrap(compute):
        METRICS.register(name, Metric(name, tuple(kinds), tuple(needs), protocol, compute, tuple(records), check))
        return compute

    return wrap


@dataclasses.dataclass
class MetricInputs:
    """What a metric may read. Features are computed once per evaluation and shared by the metrics."""

    samples: np.ndarray
    real: np.ndarray | None = None  # real examples (images in [-1, 1]) of `dataset` / `split`
    num_real: int = 0  # how many of them the reference uses
    dataset: str = ""
    split: str = ""
    source: str = ""  # the run's data source (2-D runs: "synthetic:grid25")
    extractor: Any = None  # Inception FeatureExtractor
    classifier: Any = None  # MNISTClassifier
    cache_dir: Any = None  # reference features' cache (default: reference.cache_root())
    labels: np.ndarray | None = None  # a conditional generator's requested class of each sample
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def inception(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(the reference's pool3 features [num_real, 2048], the samples' {"features", "logits"?})."""
        from gan_jax.metrics import reference

        def featurize(images):
            features, logits = self.extractor(images)
            out = {"features": features.astype(np.float32)}
            if logits is not None:
                out["logits"] = logits.astype(np.float32)
            return out

        def make():
            real = reference.reference_features(self.dataset, self.split, self.real, self.num_real,
                                                self.extractor.protocol["network"], featurize,
                                                self.cache_dir)["features"]
            return real, featurize(self.samples)

        return self.once("inception", make)

    def protocol(self, metric: Metric) -> dict:
        """The structured protocol of a record of `metric`: sample counts, reference and network."""
        out: dict = {"num_samples": len(self.samples)}
        if "reference" in metric.needs and self.real is not None:
            out.update(num_real=self.num_real, dataset=self.dataset, split=self.split)
        if "inception" in metric.needs:
            out.update(self.extractor.protocol)
        elif "classifier" in metric.needs:
            out["network"] = self.classifier.name
        return out


def parse_metrics(text: str, kind: str | None = None) -> list[str]:
    """Comma-separated metric names, each registered (and applying to data of `kind`, when given)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise MetricError(f"Unknown metric(s) {', '.join(unknown) or '(none given)'}; known: "
                          f"{', '.join(METRICS.names())}.")
    if kind is not None:
        wrong = [m for m in names if kind not in METRICS.get(m).kinds]
        if wrong:
            raise MetricError(f"{', '.join(wrong)} do(es) not apply to {kind} data; metrics for it: "
                              f"{', '.join(names_for(kind)) or 'none'}.")
    return names


def names_for(kind: str, needs: tuple[str, ...] | None = None) -> list[str]:
    """The metrics that apply to data of `kind` (and need nothing beyond `needs`, when given)."""
    return [m.name for m in METRICS.values()
            if kind in m.kinds and (needs is None or set(m.needs) <= set(needs))]


def needed(names: list[str]) -> set[str]:
    """What the metrics `names` need, together."""
    return {n for name in names for n in METRICS.get(name).needs}


def check(names: list[str], inputs: MetricInputs) -> None:
    """Every metric's own check of a request (its networks loaded, no samples yet)."""
    for name in names:
        metric = METRICS.get(name)
        if metric.check is not None:
            metric.check(inputs)


def compute(names: list[str], inputs: MetricInputs) -> list[dict]:
    """The records of the metrics `names`, each with its structured protocol."""
    records = []
    for name in names:
        metric = METRICS.get(name)
        protocol = inputs.protocol(metric)
        for record in metric.compute(inputs):
            records.append({**record, "protocol": {**protocol, **record.get("protocol", {})}})
    return records


def describe() -> str:
    """A table of the registered metrics: name, data kinds, needs, protocol."""
    rows = [f"{'metric':<14} {'data':<13} {'needs':<22} protocol"]
    for m in METRICS.values():
        rows.append(f"{m.name:<14} {','.join(m.kinds):<13} {','.join(m.needs) or '-':<22} {m.protocol}")
    return "\n".join(rows)
