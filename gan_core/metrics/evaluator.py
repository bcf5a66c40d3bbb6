"""The evaluator the training loop calls: uint8 images in, a flat dict of metrics plus ``score`` out.

Example::

    evaluate = make_evaluator(cfg, "cpu")        # loads (or trains) the classifier and reference once
    evaluate(images_uint8, None)
    # {'cfd_2k': 3.1, 'cis_2k': 9.2, 'coverage_2k': 10.0, 'class_kl_2k': 0.01,
    #  'precision_2k': 0.71, 'recall_2k': 0.66, 'score': 3.1}
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from gan_core.config import Config, DataConfig
from gan_core.errors import ConfigError, GansearchError
from gan_core.metrics.classifier import ClassifierConfig, Embedding, get_classifier
from gan_core.metrics.extractors import load_features
from gan_core.metrics.features import REFERENCE_N, FeatureNet, ReferenceStats, get_reference
from gan_core.metrics.registry import METRICS, MetricInputs, compute_metrics, get_metric, score_of


class Evaluator:
    """Scores generated samples of one dataset against its test split.

    Building one loads (or, the first time for a dataset, trains) the reference classifier and the
    reference statistics; both are then shared by every Evaluator of the process.
    """

    def __init__(self, data: DataConfig, *, device: torch.device | str = "cpu", objective: str = "cfd",
                 classifier: ClassifierConfig | None = None, reference_n: int = REFERENCE_N,
                 progress: bool | None = None, features: str | None = None) -> None:
        spec = get_metric(objective)
        self.objective = spec.name
        self.data = data
        self.device = torch.device(device)
        self.classifier: FeatureNet
        if features:  # eval.features: the user's network, or Inception (no class probabilities)
            from gan_core.data import load_dataset

            train = load_dataset(data, "train")
            self.classifier = load_features(features, train.shape, device=self.device)
            self._num_classes = train.num_classes  # the data's labels, which the network knows nothing of
            if spec.needs_classes:
                usable = ", ".join(m.name for m in METRICS.values() if not m.needs_classes and not m.needs_labels)
                raise ConfigError(f"eval.objective: {objective} needs class probabilities, which eval.features "
                                  f"{features} has none of; choose one of {usable}")
        else:
            self.classifier = get_classifier(data, config=classifier, device=self.device, progress=progress)
            self._num_classes = self.classifier.num_classes
        self.reference: ReferenceStats = get_reference(self.classifier, data, n=reference_n)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.classifier.shape

    @property
    def num_classes(self) -> int:
        """The classes a sample's labels may name (the data's)."""
        return self._num_classes

    def check(self, images: Tensor, labels: Tensor | None = None, *, where: str = "images") -> None:
        """GansearchError unless ``images`` is uint8 (N, C, H, W) of the dataset's shape, N >= 4."""
        if not isinstance(images, Tensor) or images.dtype != torch.uint8:
            raise GansearchError(f"{where}: expected a uint8 tensor, got {getattr(images, 'dtype', type(images))}")
        if images.ndim != 4 or tuple(images.shape[1:]) != self.shape:
            raise GansearchError(f"{where}: expected shape (N, {', '.join(map(str, self.shape))}) for "
                                 f"{self.data.name}, got {tuple(images.shape)}")
        if len(images) <= self.reference.k:
            raise GansearchError(f"{where}: need more than {self.reference.k} images, got {len(images)}")
        if labels is not None:
            if labels.shape[0] != len(images):
                raise GansearchError(f"{where}: {labels.shape[0]} labels for {len(images)} images")
            flat = labels.argmax(1) if labels.ndim == 2 else labels
            if len(flat) and (int(flat.min()) < 0 or int(flat.max()) >= self.num_classes):
                raise GansearchError(f"{where}: labels must be in 0..{self.num_classes - 1}, "
                                     f"got {int(flat.min())}..{int(flat.max())}")

    def embed(self, images: Tensor) -> Embedding:
        """Checked uint8 images -> features, probabilities and manifold points."""
        self.check(images)
        return self.classifier.embed(images)

    def metrics(self, images: Tensor, labels: Tensor | None = None, *,
                only: Iterable[str] | None = None) -> dict[str, float]:
        """Every metric (protocol-named, e.g. ``cfd_2k``) without ``score``; ``only``: these base names."""
        self.check(images, labels)
        return self.metrics_of(self.classifier.embed(images), labels, only=only)

    def metrics_of(self, emb: Embedding, labels: Tensor | None = None, *,
                   only: Iterable[str] | None = None) -> dict[str, float]:
        """The metrics of an already embedded sample (see ``embed``)."""
        return compute_metrics(MetricInputs(emb.features, emb.probs, emb.manifold, self.reference, labels), only)

    def __call__(self, images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
        out = self.metrics(images, labels)
        out["score"] = score_of(out, self.objective, len(images))
        return out


def make_evaluator(cfg: Config, device: torch.device | str = "cpu") -> Evaluator:
    """The evaluator for a training config: its dataset and feature network (``eval.features``,
    else the reference classifier), ``eval.objective`` as ``score``."""
    return Evaluator(cfg.data, device=device, objective=cfg.eval.objective, features=cfg.eval.features)


def score_images(images: Tensor, labels: Tensor | None = None, *, data: DataConfig,
                 objective: str = "cfd", device: torch.device | str = "cpu") -> dict[str, float]:
    """One-shot scoring: every metric plus ``score`` for uint8 ``images`` of ``data``'s shape."""
    return Evaluator(data, device=device, objective=objective)(images, labels)
