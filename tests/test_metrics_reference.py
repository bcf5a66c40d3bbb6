"""cfd, kid and the k-NN manifold metrics against independent implementations (torchmetrics'
``_compute_fid`` and ``poly_mmd``, prdc's ``compute_prdc``), on random features and on the real
MNIST classifier's features of real images, with the classifier as the feature extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.config import DataConfig
from gan_core.metrics import metrics as M

prdc = pytest.importorskip("prdc")  # the `test` extra
tm_fid = pytest.importorskip("torchmetrics.image.fid")
tm_kid = pytest.importorskip("torchmetrics.image.kid")


def torchmetrics_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    mu1, s1 = (torch.from_numpy(v) for v in M.feature_statistics(a))
    mu2, s2 = (torch.from_numpy(v) for v in M.feature_statistics(b))
    return float(tm_fid._compute_fid(mu1, s1, mu2, s2))


def our_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    return M.frechet_distance(*M.feature_statistics(a), *M.feature_statistics(b))


def prdc_metrics(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    out = prdc.compute_prdc(real_features=real.double().numpy(), fake_features=fake.double().numpy(),
                            nearest_k=M.KNN_K)
    return {k: float(v) for k, v in out.items()}


def brute_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 written out pair by pair (unequal sizes too)."""
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_on_random_features(shift):
    g = torch.Generator().manual_seed(int(shift * 10))
    real = torch.randn(600, 32, generator=g, dtype=torch.float64)
    fake = torch.randn(600, 32, generator=g, dtype=torch.float64) * (1 + shift) + shift
    assert our_fid(real, fake) == pytest.approx(torchmetrics_fid(real, fake), rel=1e-6)
    kid = M.kernel_distance(real, fake)
    assert kid == pytest.approx(float(tm_kid.poly_mmd(real, fake)), rel=1e-9, abs=1e-12)
    ours = M.knn_manifold_metrics(real.float(), fake.float())
    theirs = prdc_metrics(real.float(), fake.float())
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-9), key


def test_kernel_distance_unequal_sizes_and_unbiased():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randn(25, 5, generator=g, dtype=torch.float64)
    assert M.kernel_distance(x, y) == pytest.approx(brute_mmd2(x.numpy(), y.numpy()), rel=1e-10)
    assert M.kernel_distance(x, y, real_within=M.kernel_within(x)) == M.kernel_distance(x, y)
    # Two samples of one distribution: about 0 on average (unbiased), either sign.
    values = [M.kernel_distance(torch.randn(50, 5, generator=g), torch.randn(50, 5, generator=g))
              for _ in range(200)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))
    assert min(values) < 0 < max(values)


@pytest.fixture(scope="module")
def mnist():
    from gan_core.data import load_dataset
    from gan_core.metrics import Evaluator

    data = DataConfig(name="mnist")
    ev = Evaluator(data, progress=False)
    images, _ = load_dataset(data, "train").take(1000)
    return ev, ev.embed(images)


def test_on_real_classifier_features_of_mnist(mnist):
    ev, emb = mnist
    ref = ev.reference
    out = ev.metrics_of(emb)
    n = len(emb.features)
    # cfd: the samples' statistics against the whole reference's (10k test images).
    mu, sigma = M.feature_statistics(emb.features)
    theirs = float(tm_fid._compute_fid(torch.from_numpy(mu), torch.from_numpy(sigma),
                                       torch.from_numpy(ref.mu), torch.from_numpy(ref.sigma)))
    assert out["cfd_1k"] == pytest.approx(theirs, rel=1e-6)
    # kid: against as many reference features (the first n), like precision and recall.
    real = ref.features[:n].double()
    assert out["kid_1k"] == pytest.approx(float(tm_kid.poly_mmd(real, emb.features.double())), rel=1e-6)
    assert 0 < out["kid_1k"] < 0.1 * ev.metrics(torch.zeros(n, 1, 28, 28, dtype=torch.uint8) + 255,
                                                 only=["kid"])["kid_1k"]
    # k-NN manifold metrics: the first n reference manifold points against the samples'.
    theirs = prdc_metrics(ref.manifold[:n], emb.manifold)
    for key, name in (("precision", "precision"), ("recall", "recall"), ("density", "density"),
                      ("coverage", "manifold_coverage")):
        assert out[f"{name}_1k"] == pytest.approx(theirs[key], abs=1.5 / n), key  # a tie at most
