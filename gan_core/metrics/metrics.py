"""The metrics as pure functions of features, probabilities and labels (no I/O, no models).

Each step is small and testable against a reference implementation (torch-fidelity's layout):
features -> statistics -> score.

Example::

    mu, sigma = feature_statistics(feats)
    cfd = frechet_distance(mu, sigma, ref_mu, ref_sigma)
    cis = classifier_inception_score(probs)
    kid = kernel_distance(ref_features, feats)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

COVERAGE_THRESHOLD = 0.02  # a class is covered when it holds at least 2 % of the samples
KNN_K = 3  # Kynkaanniemi et al. (2019) use k = 3
_CHUNK = 512  # rows of a distance matrix at once: 512 x 10k float32 = 20 MB stays cache-friendly


# ----------------------------------------------------------------------------- probabilities


def classifier_inception_score(probs: Tensor) -> float:
    """exp E_x[KL(p(y|x) || p(y))] over all samples at once; in [1, K].

    ``probs``: (N, K) class probabilities. 1 when every sample gets the same prediction (or every
    prediction is uniform); K when predictions are confident and the classes balanced.
    """
    p = probs.double()
    p = p / p.sum(dim=1, keepdim=True)
    marginal = p.mean(dim=0, keepdim=True)
    kl = torch.special.xlogy(p, p).sum(1) - torch.special.xlogy(p, marginal.expand_as(p)).sum(1)
    return float(torch.exp(kl.mean()).clamp(1.0, p.shape[1]))


def class_histogram(probs: Tensor) -> Tensor:
    """Fraction of samples predicted as each class (argmax), (K,) float64."""
    k = probs.shape[1]
    counts = torch.bincount(probs.argmax(1), minlength=k).double()
    return counts / max(len(probs), 1)


def class_coverage(probs: Tensor, threshold: float = COVERAGE_THRESHOLD) -> int:
    """How many classes hold at least ``threshold`` of the predicted samples."""
    return int((class_histogram(probs) >= threshold).sum())


def class_kl(probs: Tensor) -> float:
    """KL(predicted class histogram || uniform) in nats: 0 when balanced, log K for one class."""
    hist = class_histogram(probs)
    k = len(hist)
    return float(torch.special.xlogy(hist, hist * k).sum())


def conditional_accuracy(probs: Tensor, labels: Tensor) -> float:
    """Fraction of samples the classifier assigns to the label they were generated for."""
    if labels.ndim == 2:  # one-hot or mixed label vectors: the dominant class
        labels = labels.argmax(1)
    return float((probs.argmax(1).cpu() == labels.cpu().long()).double().mean())


# ----------------------------------------------------------------------------- Frechet distance


def feature_statistics(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64."""
    x = features.double().cpu().numpy()
    if len(x) < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {len(x)}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), exactly, via symmetric eigendecompositions.

    tr (S1 S2)^(1/2) equals the sum of the square roots of the eigenvalues of the symmetric PSD
    matrix S1^(1/2) S2 S1^(1/2) (which is similar to S1 S2). This needs no iterative ``sqrtm``, has
    no complex round-off to discard, and stays exact for singular covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not match: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    root = _psd_sqrt(s1)
    return _frechet_value(mu1 - mu2, np.trace(s1), np.trace(s2), root @ s2 @ root)


def _frechet_value(diff: np.ndarray, trace1: float, trace2: float, similar: np.ndarray) -> float:
    """||diff||^2 + trace1 + trace2 - 2 tr (S1 S2)^(1/2), where ``similar`` is a symmetric PSD
    matrix whose non-zero eigenvalues are those of S1 S2."""
    eig = np.linalg.eigvalsh((similar + similar.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    value = float(diff @ diff + trace1 + trace2 - 2.0 * tr_covmean)
    return max(value, 0.0)  # round-off can make identical statistics a hair negative


def frechet_distance_of_features(features: Tensor, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """:func:`frechet_distance` of (N, D) features' own statistics to (mu2, sigma2), the same
    number, found in N dimensions when N <= D (a feature network of 2,048 outputs scored on a
    few thousand samples or fewer: Inception's).

    With A the centred features over sqrt(N - 1), S1 = A^T A, and the non-zero eigenvalues of
    S1 S2 are those of the N x N matrix A S2 A^T: two D x D eigendecompositions (seconds each at
    D = 2,048) become one of N x N. Exact, like the D-dimensional path.
    """
    n, d = features.shape
    if n > d:
        return frechet_distance(*feature_statistics(features), mu2, sigma2)
    x = features.double().cpu().numpy()
    if n < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {n}")
    mu1, s2 = x.mean(axis=0), np.asarray(sigma2, np.float64)
    if s2.shape != (d, d) or np.shape(mu2) != (d,):
        raise ValueError(f"shapes do not match: features of {d} dimensions vs mu {np.shape(mu2)}, "
                         f"sigma {s2.shape}")
    a = (x - mu1) / np.sqrt(n - 1)
    return _frechet_value(mu1 - np.asarray(mu2, np.float64), float((a * a).sum()), np.trace(s2), a @ s2 @ a.T)


# ----------------------------------------------------------------------------- kernel distance


def _poly_kernel_sum(x: Tensor, y: Tensor, *, chunk: int = 2048) -> float:
    """sum_ij (x_i . y_j / D + 1)^3 in float64, a block of rows at a time (10k x 10k fits)."""
    d = x.shape[1]
    total = 0.0
    for i in range(0, len(x), chunk):
        total += float((torch.addmm(torch.ones((), dtype=x.dtype), x[i:i + chunk], y.T, alpha=1.0 / d) ** 3).sum())
    return total


def kernel_within(x: Tensor) -> float:
    """The mean of k(x_i, x_j) over pairs i != j: one sample's own term of the unbiased MMD^2
    (the reference's is computed once per sample count and reused)."""
    x = x.double()
    n, d = x.shape
    if n < 2:
        raise ValueError(f"need at least 2 samples for a kernel distance, got {n}")
    diag = float(((x.square().sum(1) / d + 1.0) ** 3).sum())
    return (_poly_kernel_sum(x, x) - diag) / (n * (n - 1))


def kernel_distance(real: Tensor, fake: Tensor, *, real_within: float | None = None) -> float:
    """Kernel distance (KID, Binkowski et al., 2018): the unbiased estimate of the squared MMD
    between two feature samples under the cubic polynomial kernel k(x, y) = (x . y / D + 1)^3.

    mean_{i!=j} k(r_i, r_j) + mean_{i!=j} k(f_i, f_j) - 2 mean_ij k(r_i, f_j), in float64. For
    equal sizes it is torchmetrics' ``poly_mmd`` and clean-fid's per-subset value on the whole
    sample: unbiased at any n (an estimate can be slightly negative), so small evaluations
    compare with large ones, unlike the Frechet distance, whose bias grows as n shrinks.
    clean-fid and torchmetrics average it over random 1000-sample subsets to bound memory; here
    kernel sums are taken in blocks, so the whole sample is used (lower variance, no extra seed).
    ``real_within``: ``kernel_within(real)`` when already known.
    """
    r, f = real.double(), fake.double()
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    rr = kernel_within(r) if real_within is None else real_within
    return rr + kernel_within(f) - 2.0 * _poly_kernel_sum(r, f) / (len(r) * len(f))


# ----------------------------------------------------------------------------- k-NN manifolds


def manifold_embedding(features: Tensor, pooled: Tensor) -> Tensor:
    """The space the k-NN manifolds live in: unit-norm penultimate features next to unit-norm
    globally pooled activations of the last convolution block, (N, D + C).

    The penultimate layer of a small classifier only has to separate classes, so it maps
    off-distribution images into class regions, and a few real outliers get huge k-NN balls.
    Measured with 3000 samples (precision of real / uniform noise / shuffled pixels):
    raw penultimate features, Fashion 0.86 / 0.54 / 0.21 and MNIST 0.86 / 0.00 / 0.65 (at 2000);
    this embedding, Fashion 0.85 / 0.08 / 0.02 and MNIST 0.84 / 0.00 / 0.00. The algorithm
    itself stays Kynkaanniemi et al.'s.
    """
    f = torch.nn.functional.normalize(features.float(), dim=1)
    p = torch.nn.functional.normalize(pooled.float(), dim=1)
    return torch.cat([f, p], dim=1)


def _sq_dists(a: Tensor, b: Tensor, a_sq: Tensor, b_sq: Tensor) -> Tensor:
    """Squared Euclidean distances (len(a), len(b)) by one matrix product, clamped at 0."""
    d2 = torch.addmm(b_sq[None, :], a, b.T, beta=1.0, alpha=-2.0)
    return d2.add_(a_sq[:, None]).clamp_min_(0.0)


def knn_radii(features: Tensor, k: int = KNN_K, *, chunk: int = _CHUNK) -> Tensor:
    """Distance from each row to its k-th nearest other row, (N,) float32."""
    x = features.float().contiguous()
    n = len(x)
    if n <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {n}")
    sq = x.square().sum(1)
    out = torch.empty(n)
    for i in range(0, n, chunk):
        d2 = _sq_dists(x[i:i + chunk], x, sq[i:i + chunk], sq)
        # The k+1 smallest include the point itself (distance ~0).
        out[i:i + chunk] = d2.topk(k + 1, dim=1, largest=False).values[:, k]
    return out.sqrt_()


def knn_manifold_metrics(real: Tensor, fake: Tensor, *, k: int = KNN_K, real_radii: Tensor | None = None,
                         fake_radii: Tensor | None = None, chunk: int = _CHUNK) -> dict[str, float]:
    """k-NN manifold metrics of a fake sample against a real one, from one pass over the distances.

    Each sample's ball reaches its k-th nearest neighbour in its own set.

    - ``precision`` (Kynkaanniemi et al., 2019): fraction of fakes inside at least one real ball.
    - ``recall`` (same): fraction of reals inside at least one fake ball.
    - ``density`` (Naeem et al., 2020): real balls containing each fake, averaged, divided by k;
      about 1 for real data and, unlike precision, not saturated by a few real outliers with
      huge balls.
    - ``coverage`` (Naeem et al., 2020): fraction of real balls holding at least one fake.

    Distances are compared squared, from one matrix product per chunk of rows; pass precomputed
    radii to skip their computation.
    """
    real, fake = real.float().contiguous(), fake.float().contiguous()
    r_real = knn_radii(real, k, chunk=chunk) if real_radii is None else real_radii.float()
    r_fake = knn_radii(fake, k, chunk=chunk) if fake_radii is None else fake_radii.float()
    r2_real, r2_fake = r_real.square(), r_fake.square()
    sq_real, sq_fake = real.square().sum(1), fake.square().sum(1)
    in_real = torch.zeros(len(fake), dtype=torch.bool)
    balls = torch.zeros(len(fake), dtype=torch.int64)
    in_fake = torch.zeros(len(real), dtype=torch.bool)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(fake), chunk):
        d2 = _sq_dists(fake[i:i + chunk], real, sq_fake[i:i + chunk], sq_real)  # (c, R)
        inside = d2 <= r2_real[None, :]  # fake j inside real ball i
        count = inside.sum(1, dtype=torch.int32)  # int32: 3x faster than the default int64
        in_real[i:i + chunk] = count > 0
        balls[i:i + chunk] = count
        covered |= inside.amax(0)  # amax: faster than any() on bool rows
        in_fake |= (d2 <= r2_fake[i:i + chunk, None]).amax(0)
    return {
        "precision": float(in_real.double().mean()),
        "recall": float(in_fake.double().mean()),
        "density": float(balls.sum()) / (k * len(fake)),
        "coverage": float(covered.double().mean()),
    }


def precision_recall(real: Tensor, fake: Tensor, *, k: int = KNN_K, real_radii: Tensor | None = None,
                     fake_radii: Tensor | None = None, chunk: int = _CHUNK) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) on k-NN feature manifolds.

    Precision: the fraction of fake samples inside the real manifold (the union of balls around
    each real sample reaching its k-th nearest real neighbour). Recall: the fraction of real
    samples inside the fake manifold.
    """
    out = knn_manifold_metrics(real, fake, k=k, real_radii=real_radii, fake_radii=fake_radii, chunk=chunk)
    return out["precision"], out["recall"]
