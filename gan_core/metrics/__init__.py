"""Classifier-based metrics for generated images: a trustworthy, stable and fast ``score``.

A small reference CNN per dataset (trained by the toolkit, cached) embeds images; the metrics
are pure functions of its penultimate features and class probabilities:

- ``cfd``: classifier Frechet distance to the test split (the default ``score``; lower is better)
- ``kid``: kernel distance on the same features, KID's unbiased cubic-kernel MMD^2 (unbiased at any n)
- ``cis``: classifier Inception Score exp E[KL(p(y|x) || p(y))], 1..num_classes
- ``coverage``: classes predicted for >= 2 % of the samples; ``class_kl``: KL(histogram || uniform)
- ``precision``/``recall``: k-NN manifolds, k=3 (Kynkaanniemi et al., 2019), on unit-norm
  penultimate features next to unit-norm pooled convolution features; ``density`` and
  ``manifold_coverage`` (Naeem et al., 2020) on the same manifolds, robust to real outliers
- ``cond_acc``: conditional generators, accuracy on the requested labels

Reported names carry the sample count (``cfd_2k``); ``score`` is the ``eval.objective`` metric,
negated when higher is better, so ``score`` is always lower-is-better.

Example::

    from gan_core.metrics import make_evaluator
    evaluate = make_evaluator(cfg, "cpu")
    evaluate(images_uint8, None)["score"]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The package imports lazily (PEP 562): the metric registry's names, read by every review and
# space check, must not cost torch's import (3 s); the rest loads on first use.
if TYPE_CHECKING:
    from gan_core.metrics.classifier import (
        ClassifierConfig,
        Embedding,
        ReferenceClassifier,
        default_config,
        get_classifier,
        install_classifier,
        train_classifier,
    )
    from gan_core.metrics.evaluator import Evaluator, make_evaluator, score_images
    from gan_core.metrics.features import ReferenceStats, get_reference
    from gan_core.metrics.metrics import (
        class_coverage,
        class_kl,
        classifier_inception_score,
        conditional_accuracy,
        feature_statistics,
        frechet_distance,
        frechet_distance_of_features,
        kernel_distance,
        kernel_within,
        knn_manifold_metrics,
        knn_radii,
        manifold_embedding,
        precision_recall,
    )
    from gan_core.metrics.registry import METRICS, MetricInputs, metric_names, protocol_name, register_metric

_WHERE = {  # each public name -> its module, imported on first use
    "ClassifierConfig": "gan_core.metrics.classifier",
    "Embedding": "gan_core.metrics.classifier",
    "Evaluator": "gan_core.metrics.evaluator",
    "METRICS": "gan_core.metrics.registry",
    "MetricInputs": "gan_core.metrics.registry",
    "ReferenceClassifier": "gan_core.metrics.classifier",
    "ReferenceStats": "gan_core.metrics.features",
    "class_coverage": "gan_core.metrics.metrics",
    "class_kl": "gan_core.metrics.metrics",
    "classifier_inception_score": "gan_core.metrics.metrics",
    "conditional_accuracy": "gan_core.metrics.metrics",
    "default_config": "gan_core.metrics.classifier",
    "feature_statistics": "gan_core.metrics.metrics",
    "frechet_distance": "gan_core.metrics.metrics",
    "frechet_distance_of_features": "gan_core.metrics.metrics",
    "get_classifier": "gan_core.metrics.classifier",
    "get_reference": "gan_core.metrics.features",
    "install_classifier": "gan_core.metrics.classifier",
    "kernel_distance": "gan_core.metrics.metrics",
    "kernel_within": "gan_core.metrics.metrics",
    "knn_manifold_metrics": "gan_core.metrics.metrics",
    "knn_radii": "gan_core.metrics.metrics",
    "make_evaluator": "gan_core.metrics.evaluator",
    "manifold_embedding": "gan_core.metrics.metrics",
    "metric_names": "gan_core.metrics.registry",
    "precision_recall": "gan_core.metrics.metrics",
    "protocol_name": "gan_core.metrics.registry",
    "register_metric": "gan_core.metrics.registry",
    "score_images": "gan_core.metrics.evaluator",
    "train_classifier": "gan_core.metrics.classifier",
}

__all__ = [
    "METRICS",
    "ClassifierConfig",
    "Embedding",
    "Evaluator",
    "MetricInputs",
    "ReferenceClassifier",
    "ReferenceStats",
    "class_coverage",
    "class_kl",
    "classifier_inception_score",
    "conditional_accuracy",
    "default_config",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of_features",
    "get_classifier",
    "get_reference",
    "kernel_distance",
    "kernel_within",
    "install_classifier",
    "knn_manifold_metrics",
    "knn_radii",
    "make_evaluator",
    "manifold_embedding",
    "metric_names",
    "precision_recall",
    "protocol_name",
    "register_metric",
    "score_images",
    "train_classifier",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
