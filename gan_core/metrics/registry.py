"""The metric registry: name -> how to compute it from one batch of classified samples.

Reported names carry the protocol, the sample count (``cfd_2k``: Frechet distance of 2000
samples; StyleGAN's ``fid50k`` convention). ``eval.objective`` names a metric by its base name;
the evaluator reports it again as ``score``, negated when higher is better, so that ``score`` is
always lower-is-better.

Example::

    @register_metric("mean_confidence", higher_is_better=True, description="mean max p(y|x)")
    def _mean_confidence(x: MetricInputs) -> float:
        return float(x.probs.max(1).values.mean())
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gan_core.errors import ConfigError

# torch-free at import: the names (what a space may name, what review shows) without torch's 3 s.
# Each metric imports its computations (gan_core.metrics.metrics) when it first runs.
if TYPE_CHECKING:
    from torch import Tensor

    from gan_core.metrics.features import ReferenceStats


@dataclass
class MetricInputs:
    """What every metric may look at: the samples' features and probabilities, the reference."""

    features: Tensor  # (N, D) float32 penultimate features
    probs: Tensor | None  # (N, K) float64; None when the feature network has no classes
    manifold: Tensor  # (N, M) float32 k-NN manifold points
    reference: ReferenceStats
    labels: Tensor | None = None  # requested labels of a conditional generator
    memo: dict[str, Any] = field(default_factory=dict)

    def once(self, name: str, fn: Callable[[], Any]) -> Any:
        """Compute a shared intermediate once (precision and recall share their distances)."""
        if name not in self.memo:
            self.memo[name] = fn()
        return self.memo[name]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[[MetricInputs], float]
    higher_is_better: bool
    description: str
    needs_labels: bool = False
    needs_classes: bool = False  # reads class probabilities: left out for eval.features networks


METRICS: dict[str, MetricSpec] = {}
_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*")  # no digits after "_": those are protocols


def register_metric(name: str, *, higher_is_better: bool, description: str, needs_labels: bool = False,
                    needs_classes: bool = False) -> Callable[[Callable[[MetricInputs], float]], Callable]:
    """Decorator adding a metric under ``name`` (lower-case words; no count suffix)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"metric name {name!r}: use lower-case words joined by '_', e.g. 'class_kl'")
    if name in METRICS:
        raise ValueError(f"metric {name!r} is already registered")

    def wrap(fn: Callable[[MetricInputs], float]) -> Callable[[MetricInputs], float]:
        METRICS[name] = MetricSpec(name, fn, higher_is_better, description, needs_labels, needs_classes)
        return fn

    return wrap


def metric_names() -> list[str]:
    return list(METRICS)


def get_metric(name: str, *, key: str = "eval.objective") -> MetricSpec:
    """The registered metric ``name``; ConfigError naming ``key`` and the valid names otherwise."""
    if name not in METRICS:
        raise ConfigError(f"{key}: {name!r} is not one of {', '.join(METRICS)}")
    return METRICS[name]


def protocol_name(name: str, n: int) -> str:
    """``protocol_name("cfd", 2000) == "cfd_2k"``."""
    return f"{name}_{count_label(n)}"


def count_label(n: int) -> str:
    """The sample count as it appears in metric names: 2000 -> '2k', 500 -> '500', 2500 -> '2500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def compute_metrics(inputs: MetricInputs, only: Iterable[str] | None = None) -> dict[str, float]:
    """Every registered metric that applies (label metrics only with labels, class metrics only
    with class probabilities), protocol-named.

    ``only``: base names to compute instead of all (each checked against the registry).
    """
    n = len(inputs.features)
    wanted = None if only is None else {get_metric(name, key="metrics").name for name in only}
    out = {}
    for spec in METRICS.values():
        if ((spec.needs_labels and inputs.labels is None) or (spec.needs_classes and inputs.probs is None)
                or (wanted is not None and spec.name not in wanted)):
            continue
        out[protocol_name(spec.name, n)] = float(spec.fn(inputs))
    return out


def score_of(metrics: dict[str, float], objective: str, n: int) -> float:
    """The lower-is-better ``score``: the objective's value, negated when higher is better."""
    spec = get_metric(objective)
    key = protocol_name(objective, n)
    if key not in metrics:
        raise ConfigError(f"eval.objective: {objective!r} was not computed for this sample "
                          f"(needs labels: {spec.needs_labels}); computed: {', '.join(metrics)}")
    value = metrics[key]
    return -value if spec.higher_is_better else value


# ----------------------------------------------------------------------------- the metrics


def _knn(x: MetricInputs) -> dict[str, float]:
    from gan_core.metrics import metrics as M

    def compute() -> dict[str, float]:
        real, radii = x.reference.subset(len(x.features))
        return M.knn_manifold_metrics(real, x.manifold, k=x.reference.k, real_radii=radii)

    return x.once("knn", compute)


@register_metric("cfd", higher_is_better=False,
                 description="classifier Frechet distance to the test split's penultimate features")
def _cfd(x: MetricInputs) -> float:
    from gan_core.metrics import metrics as M

    return M.frechet_distance_of_features(x.features, x.reference.mu, x.reference.sigma)


@register_metric("cis", needs_classes=True, higher_is_better=True,
                 description="classifier Inception Score exp E[KL(p(y|x) || p(y))], 1..num_classes")
def _cis(x: MetricInputs) -> float:
    from gan_core.metrics import metrics as M

    assert x.probs is not None  # needs_classes
    return M.classifier_inception_score(x.probs)


# (reference key, sample count) -> the reference's own kernel term of ``kid``.
_KID_WITHIN: dict[tuple[str, int], float] = {}


@register_metric("kid", higher_is_better=False,
                 description="kernel distance (KID's unbiased cubic-kernel MMD^2) to as many test-split features")
def _kid(x: MetricInputs) -> float:
    from gan_core.metrics import metrics as M

    m = min(len(x.features), x.reference.n)  # equal sizes, as precision and recall compare
    real = x.reference.features[:m]
    key = (x.reference.key, m)
    if key not in _KID_WITHIN:
        _KID_WITHIN[key] = M.kernel_within(real)
    return M.kernel_distance(real, x.features, real_within=_KID_WITHIN[key])


@register_metric("coverage", needs_classes=True, higher_is_better=True,
                 description="classes predicted for at least 2 % of the samples")
def _coverage(x: MetricInputs) -> float:
    from gan_core.metrics import metrics as M

    assert x.probs is not None  # needs_classes
    return float(M.class_coverage(x.probs))


@register_metric("class_kl", needs_classes=True, higher_is_better=False,
                 description="KL(predicted class histogram || uniform), nats; 0 = balanced")
def _class_kl(x: MetricInputs) -> float:
    from gan_core.metrics import metrics as M

    assert x.probs is not None  # needs_classes
    return M.class_kl(x.probs)


@register_metric("precision", higher_is_better=True,
                 description="fraction of samples inside the test split's k-NN manifold (k=3)")
def _precision(x: MetricInputs) -> float:
    return _knn(x)["precision"]


@register_metric("recall", higher_is_better=True,
                 description="fraction of test images inside the samples' k-NN manifold (k=3)")
def _recall(x: MetricInputs) -> float:
    return _knn(x)["recall"]


@register_metric("density", higher_is_better=True,
                 description="test-split k-NN balls holding each sample, mean / k (Naeem et al., 2020); ~1 real")
def _density(x: MetricInputs) -> float:
    return _knn(x)["density"]


@register_metric("manifold_coverage", higher_is_better=True,
                 description="fraction of test-split k-NN balls holding a sample (Naeem et al., 2020)")
def _manifold_coverage(x: MetricInputs) -> float:
    return _knn(x)["coverage"]


@register_metric("cond_acc", needs_classes=True, higher_is_better=True, needs_labels=True,
                 description="conditional generators: classifier accuracy on the requested labels")
def _cond_acc(x: MetricInputs) -> float:
    from gan_core.metrics import metrics as M

    assert x.labels is not None and x.probs is not None
    return M.conditional_accuracy(x.probs, x.labels)
