"""Reference statistics: the classifier's view of the real test split, computed once and cached.

The cache key is a hash of the classifier (its key and its weights), the preprocessing, the test
split's content, the reference sample count and the k of the k-NN manifolds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from gan_core.config import DataConfig
from gan_core.metrics import cache
from gan_core.metrics.classifier import Embedding
from gan_core.metrics.metrics import KNN_K, feature_statistics, knn_radii

VERSION = 4  # 4: k-NN manifolds on unit-norm penultimate + pooled conv features; batch norm folded
REFERENCE_N = 10_000  # test images in the reference set (all of MNIST's and Fashion's test split)


@dataclass
class ReferenceStats:
    """Features of the first ``n`` test images, their mean and covariance, and k-NN radii."""

    mu: np.ndarray  # (D,) float64
    sigma: np.ndarray  # (D, D) float64
    features: Tensor  # (n, D) float32 penultimate features
    manifold: Tensor  # (n, M) float32 k-NN manifold points (see metrics.manifold_embedding)
    radii: Tensor  # (n,) k-NN radii within all n manifold points
    k: int
    key: str
    _radii: dict[int, Tensor] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.features)

    def subset(self, m: int) -> tuple[Tensor, Tensor]:
        """The first ``m`` reference points (manifold embedding) and their own k-NN radii (memoised).

        Precision and recall compare manifolds of equal sample counts, so a 2k evaluation uses
        the first 2k reference features, with radii measured within those 2k.
        """
        m = min(m, self.n)
        if m == self.n:
            return self.manifold, self.radii
        if m not in self._radii:
            self._radii[m] = knn_radii(self.manifold[:m], self.k)
        return self.manifold[:m], self._radii[m]


_LOADED: dict[str, ReferenceStats] = {}


class FeatureNet(Protocol):
    """What the metrics embed images with: the reference classifier or an ``eval.features`` network."""

    weights_digest: str
    shape: tuple[int, int, int]
    num_classes: int  # 0: no class probabilities

    @property
    def key(self) -> str: ...

    @property
    def digest(self) -> str: ...

    @property
    def preprocess_id(self) -> dict[str, Any]: ...

    def embed(self, images: Tensor) -> Embedding: ...


def reference_key(clf: FeatureNet, test: Any, n: int, k: int) -> str:
    return cache.digest({
        "version": VERSION, "classifier": clf.key, "weights": clf.weights_digest,
        "preprocess": clf.preprocess_id, "test": cache.dataset_fingerprint(test), "n": n, "k": k,
    })


def get_reference(clf: FeatureNet, data: DataConfig, *, n: int = REFERENCE_N, k: int = KNN_K,
                  force: bool = False) -> ReferenceStats:
    """The reference statistics of ``data``'s test split under ``clf``: memory, cache, or computed."""
    from gan_core.data import load_dataset

    test = load_dataset(data, "test")
    n = min(n, len(test))
    key = reference_key(clf, test, n, k)
    if key in _LOADED and not force:
        return _LOADED[key]
    path = cache.cache_root() / "refstats" / f"{cache.slug(data.name)}-{key[:16]}.pt"

    def build() -> dict[str, Any]:
        images, _ = test.take(n)
        emb = clf.embed(images)
        mu, sigma = feature_statistics(emb.features)
        return {"dataset": data.name, "n": n, "k": k, "mu": torch.from_numpy(mu),
                "sigma": torch.from_numpy(sigma), "features": emb.features, "manifold": emb.manifold,
                "radii": knn_radii(emb.manifold, k)}

    body = cache.cached(path, "refstats", key, build, force=force)
    ref = ReferenceStats(mu=body["mu"].numpy(), sigma=body["sigma"].numpy(), features=body["features"],
                         manifold=body["manifold"], radii=body["radii"], k=int(body["k"]), key=key)
    _LOADED[key] = ref
    return ref


def clear_memory() -> None:
    _LOADED.clear()
