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
