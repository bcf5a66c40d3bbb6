"""gan_core.metrics: pure functions against reference implementations, then real MNIST orderings.

The real-data tests use the real MNIST reference classifier (trained once per cache, see
test_classifier.py) and the real test split as reference.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import torch

from gan_core.config import DataConfig
from gan_core.errors import ConfigError, GansearchError
from gan_core.metrics import metrics as M
from gan_core.metrics.registry import METRICS, get_metric, protocol_name, register_metric, score_of

torch.set_num_threads(min(2, torch.get_num_threads()))


# ----------------------------------------------------------------------------- Frechet distance


def reference_frechet(mu1, s1, mu2, s2):
    """The usual formula (pytorch-fid): scipy's sqrtm of the product, real part."""
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def gaussian_samples(rng, n, d, scale):
    a = rng.normal(size=(d, d)) * scale
    return rng.normal(size=(n, d)) @ a + rng.normal(size=d)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_equals_scipy_reference_on_random_gaussians(d):
    rng = np.random.default_rng(d)
    x, y = gaussian_samples(rng, 4 * d + 50, d, 1.0), gaussian_samples(rng, 4 * d + 80, d, 0.5)
    mu1, s1 = M.feature_statistics(torch.from_numpy(x))
    mu2, s2 = M.feature_statistics(torch.from_numpy(y))
    np.testing.assert_allclose(mu1, x.mean(0))
    np.testing.assert_allclose(s1, np.cov(x, rowvar=False))
    ours = M.frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(reference_frechet(mu1, s1, mu2, s2), rel=1e-7, abs=1e-9)
    assert ours == pytest.approx(M.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric


def test_frechet_distance_closed_form_for_diagonal_covariances():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.0])  # one zero variance: singular
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 1 + 4 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_identical_and_singular_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 50))  # 20 samples in 50 dims: rank-19 covariance
    mu, s = M.feature_statistics(torch.from_numpy(x))
    assert M.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)
    y = rng.normal(size=(30, 50)) + 0.5
    mu2, s2 = M.feature_statistics(torch.from_numpy(y))
    ours = M.frechet_distance(mu, s, mu2, s2)
    assert np.isfinite(ours) and ours > 0
    assert ours == pytest.approx(reference_frechet(mu, s, mu2, s2), rel=1e-5)


@pytest.mark.parametrize("n", [2, 7, 64, 65])
def test_frechet_distance_of_features_is_the_statistics_one_in_fewer_dimensions(n):
    """Fewer samples than dimensions (a 2,048-output network scored on a few thousand samples):
    the N-dimensional path gives the D-dimensional number; more samples take that path itself."""
    rng = np.random.default_rng(n)
    d = 64
    x = torch.from_numpy(gaussian_samples(rng, n, d, 1.0))
    mu2, s2 = M.feature_statistics(torch.from_numpy(gaussian_samples(rng, 300, d, 0.5)))
    want = M.frechet_distance(*M.feature_statistics(x), mu2, s2)
    # Below D samples S1 is singular, and the D-dimensional path sums the square roots of its
    # round-off eigenvalues (~1e-8 of the value); the N-dimensional one never forms them.
    assert M.frechet_distance_of_features(x, mu2, s2) == pytest.approx(want, rel=1e-7)
    assert M.frechet_distance_of_features(x, *M.feature_statistics(x)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="shapes"):
        M.frechet_distance_of_features(x, mu2[:-1], s2[:-1, :-1])


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        M.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------- probabilities


def reference_cis(p):
    marginal = p.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0).sum(1)
    return float(np.exp(kl.mean()))


def test_classifier_inception_score_bounds_and_reference():
    k = 10
    assert M.classifier_inception_score(torch.full((50, k), 1 / k)) == pytest.approx(1.0)
    one_hot = torch.eye(k).repeat(7, 1)
    assert M.classifier_inception_score(one_hot) == pytest.approx(k)
    assert M.classifier_inception_score(torch.eye(k)[[3] * 40]) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(k, 0.3), size=500)
    ours = M.classifier_inception_score(torch.from_numpy(p))
    assert ours == pytest.approx(reference_cis(p), rel=1e-10)
    assert 1.0 <= ours <= k


def test_class_coverage_and_kl():
    k = 10
    balanced = torch.eye(k).repeat(10, 1)
    assert M.class_coverage(balanced) == k
    assert M.class_kl(balanced) == pytest.approx(0.0, abs=1e-12)
    single = torch.eye(k)[[4] * 100]
    assert M.class_coverage(single) == 1
    assert M.class_kl(single) == pytest.approx(np.log(k))
    # 2 % threshold: 2 of 100 samples count, 1 of 100 does not
    labels = [0] * 97 + [1] * 2 + [2]
    assert M.class_coverage(torch.eye(k)[labels]) == 2


def test_conditional_accuracy():
    probs = torch.eye(4)[[0, 1, 2, 3, 0, 0]].double()
    assert M.conditional_accuracy(probs, torch.tensor([0, 1, 2, 3, 1, 2])) == pytest.approx(4 / 6)
    assert M.conditional_accuracy(probs, torch.eye(4)[[0, 1, 2, 3, 0, 0]]) == 1.0  # one-hot labels


# ----------------------------------------------------------------------------- k-NN manifolds


def reference_knn_metrics(real, fake, k):
    """Straight from the papers' definitions, with full distance matrices."""
    def radii(x):
        return np.sort(scipy.spatial.distance.cdist(x, x), axis=1)[:, k]

    d = scipy.spatial.distance.cdist(fake, real)  # (F, R)
    inside = d <= radii(real)[None, :]  # fake j in real ball i
    return {"precision": inside.any(1).mean(), "recall": (d <= radii(fake)[:, None]).any(0).mean(),
            "density": inside.sum() / (k * len(fake)), "coverage": inside.any(0).mean()}


def test_knn_radii_match_brute_force():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    expected = np.sort(scipy.spatial.distance.cdist(x.numpy(), x.numpy()), axis=1)[:, 3]
    np.testing.assert_allclose(M.knn_radii(x, 3, chunk=64).numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk", [7, 2048])
def test_knn_manifold_metrics_match_brute_force(chunk):
    g = torch.Generator().manual_seed(3)
    real = torch.randn(400, 6, generator=g)
    fake = 0.7 * torch.randn(300, 6, generator=g) + 0.8  # overlapping, shifted, narrower
    ours = M.knn_manifold_metrics(real, fake, k=3, chunk=chunk)
    ref = reference_knn_metrics(real.numpy().astype(np.float64), fake.numpy().astype(np.float64), 3)
    assert ours["precision"] == pytest.approx(ref["precision"], abs=1 / 300)
    assert ours["recall"] == pytest.approx(ref["recall"], abs=1 / 400)
    assert ours["density"] == pytest.approx(ref["density"], abs=1 / 300)
    assert ours["coverage"] == pytest.approx(ref["coverage"], abs=1 / 400)
    assert M.precision_recall(real, fake, chunk=chunk) == (ours["precision"], ours["recall"])
    assert 0.2 < ours["precision"] < 1 and 0.05 < ours["recall"] < 0.95  # neither degenerate


def test_precision_recall_extremes():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(200, 5, generator=g)
    assert M.precision_recall(x, x.clone()) == (1.0, 1.0)
    assert M.precision_recall(x, x + 100.0) == (0.0, 0.0)
    collapsed = x[:1].repeat(200, 1)  # mode collapse: fake radii are 0
    p, r = M.precision_recall(x, collapsed)
    assert p == 1.0 and r <= 1 / 200


# ----------------------------------------------------------------------------- registry


def test_registry_names_protocol_and_objective():
    assert {"cfd", "cis", "coverage", "class_kl", "precision", "recall", "density", "manifold_coverage",
            "cond_acc"} <= set(METRICS)
    assert protocol_name("cfd", 2000) == "cfd_2k"
    assert protocol_name("cis", 10_000) == "cis_10k"
    assert protocol_name("cis", 500) == "cis_500"
    assert protocol_name("cis", 2500) == "cis_2500"
    with pytest.raises(ConfigError, match=r"eval.objective: 'fid' is not one of cfd, cis"):
        get_metric("fid")
    metrics = {"cfd_2k": 3.0, "precision_2k": 0.7}
    assert score_of(metrics, "cfd", 2000) == 3.0
    assert score_of(metrics, "precision", 2000) == -0.7  # higher is better: negated
    with pytest.raises(ValueError, match="already registered"):
        register_metric("cfd", higher_is_better=False, description="again")
    with pytest.raises(ValueError, match="lower-case"):
        register_metric("fid_50k", higher_is_better=False, description="protocol in the name")


# ----------------------------------------------------------------------------- real MNIST


@pytest.fixture(scope="module")
def mnist():
    """The real MNIST evaluator (classifier and reference statistics from the cache, or built once)."""
    from gan_core.data import load_dataset
    from gan_core.metrics import Evaluator

    data = DataConfig(name="mnist")
    ev = Evaluator(data, progress=False)
    train_x, train_y = load_dataset(data, "train").take(10_000)
    test_x, test_y = load_dataset(data, "test").take(10_000)
    return argparse.Namespace(ev=ev, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                              train_e=ev.embed(train_x), test_e=ev.embed(test_x))


def _noise(n, seed=0):
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _shuffled(x, seed=0):
    g = torch.Generator().manual_seed(seed)
    flat = x.reshape(len(x), -1)
    idx = torch.argsort(torch.rand(flat.shape, generator=g), dim=1)
    return flat.gather(1, idx).reshape(x.shape)


def test_real_scores_far_better_than_noise_on_every_metric(mnist):
    n = 2000
    real = mnist.ev(mnist.train_x[:n])
    noise = mnist.ev(_noise(n))
    assert noise["precision_2k"] < 0.01 and noise["recall_2k"] < 0.01
    for bad in (noise, mnist.ev(_shuffled(mnist.train_x[:n]))):
        assert real["cfd_2k"] * 20 < bad["cfd_2k"]
        assert real["cis_2k"] > 2 * bad["cis_2k"]
        assert real["coverage_2k"] == 10 and bad["coverage_2k"] < 10
        assert real["class_kl_2k"] < 0.05 < bad["class_kl_2k"]
        assert real["precision_2k"] > 0.7 > 0.25 > bad["precision_2k"]
        assert real["recall_2k"] > 0.7 > 0.05 > bad["recall_2k"]
        assert real["density_2k"] > 0.7 > 0.05 > bad["density_2k"]
        assert real["manifold_coverage_2k"] > 0.6 > 0.05 > bad["manifold_coverage_2k"]
        assert real["score"] < bad["score"]
    half = mnist.ev(mnist.train_x[:n] // 2)
    assert real["cfd_2k"] < half["cfd_2k"]


def test_single_class_covers_one_class(mnist):
    sevens = mnist.train_x[mnist.train_y == 7][:1000]
    out = mnist.ev(sevens)
    assert out["coverage_1k"] == 1
    assert np.log(10) - 0.15 < out["class_kl_1k"] <= np.log(10)  # a few misclassified sevens
    assert out["cis_1k"] < 1.2
    assert out["recall_1k"] < 0.3  # the other nine digits are missing
    assert out["manifold_coverage_1k"] < 0.3
    assert out["precision_1k"] > 0.6  # but every sample is a real digit


def test_cis_of_5k_within_3_percent_of_10k_and_at_most_num_classes(mnist):
    full = mnist.ev.metrics_of(mnist.train_e, only=["cis"])
    half = mnist.ev.metrics(mnist.train_x[:5000], only=["cis"])
    assert set(half) == {"cis_5k"}
    assert abs(half["cis_5k"] - full["cis_10k"]) <= 0.03 * full["cis_10k"]
    assert full["cis_10k"] <= mnist.ev.num_classes
    assert full["cis_10k"] > 9.0  # confident and balanced on real digits


def test_cfd_of_the_test_split_against_itself_is_zero(mnist):
    out = mnist.ev.metrics_of(mnist.test_e, only=["cfd"])
    assert out["cfd_10k"] == pytest.approx(0.0, abs=1e-6)
    # 2k samples meet the first 2k reference images: the same points, so both manifolds agree
    out = mnist.ev.metrics_of(mnist.test_e.head(2000), only=["precision", "recall"])
    assert out == {"precision_2k": 1.0, "recall_2k": 1.0}
    train = mnist.ev.metrics_of(mnist.train_e, only=["cfd"])
    assert 0 < train["cfd_10k"] < 2.0  # real vs real: small, not zero


def test_conditional_accuracy_on_requested_labels(mnist):
    x, y = mnist.test_x[:1000], mnist.test_y[:1000]
    out = mnist.ev(x, y)
    assert out["cond_acc_1k"] > 0.98
    wrong = mnist.ev(x, (y + 1) % 10)
    assert wrong["cond_acc_1k"] < 0.05
    assert "cond_acc_1k" not in mnist.ev(x)


def test_evaluator_rejects_bad_images(mnist):
    with pytest.raises(GansearchError, match="uint8"):
        mnist.ev(mnist.test_x[:100].float())
    with pytest.raises(GansearchError, match=r"shape \(N, 1, 28, 28\) for mnist"):
        mnist.ev(torch.zeros(100, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(GansearchError, match="labels must be in 0..9"):
        mnist.ev(mnist.test_x[:100], torch.full((100,), 10))


def test_make_evaluator_score_follows_the_objective(mnist, tiny_cfg):
    from gan_core.config import apply_overrides
    from gan_core.metrics import make_evaluator

    x = mnist.train_x[:500]
    out = make_evaluator(tiny_cfg(), "cpu")(x, None)
    assert out["score"] == out["cfd_500"]
    assert all(isinstance(v, float) for v in out.values())
    out = make_evaluator(apply_overrides(tiny_cfg(), ["eval.objective=precision"]), "cpu")(x, None)
    assert out["score"] == -out["precision_500"]
    with pytest.raises(ConfigError, match="eval.objective"):
        make_evaluator(apply_overrides(tiny_cfg(), ["eval.objective=fid"]), "cpu")
    cond = make_evaluator(apply_overrides(tiny_cfg(), ["eval.objective=cond_acc"]), "cpu")
    with pytest.raises(ConfigError, match="cond_acc"):
        cond(x, None)
    assert cond(x, mnist.train_y[:500])["score"] < -0.95


# ----------------------------------------------------------------------------- gansearch score


def _score(capsys, source, **kw):
    from search.commands import score

    args = argparse.Namespace(source=str(source), dataset=kw.get("dataset"), n=kw.get("n"), seed=0,
                              objective=kw.get("objective"), data_dir=None, device="cpu", features=None)
    assert score.run(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_score_npz_prints_one_json_line(mnist, tmp_path, capsys):
    path = tmp_path / "real.npz"
    np.savez(path, images=mnist.test_x[:600, 0].numpy(), labels=mnist.test_y[:600].numpy())
    out = _score(capsys, path, dataset="mnist", n=500)
    assert out["n"] == 500 and out["dataset"] == "mnist"
    for name in ("cfd", "cis", "coverage", "class_kl", "precision", "recall", "density", "manifold_coverage",
                 "cond_acc"):
        assert f"{name}_500" in out
    assert out["score"] == out["cfd_500"] and out["cond_acc_500"] > 0.95


@pytest.mark.parametrize(("arrays", "message"), [
    ({"pictures": np.zeros((10, 28, 28), np.uint8)}, r"missing array 'images' \(found: pictures\)"),
    ({"images": np.zeros((10, 28, 28), np.float32)}, "expected dtype uint8 .* got float32"),
    ({"images": np.full((10, 28, 28), 300, np.int64)}, "got int64, values 300..300; values outside 0..255"),
    ({"images": np.zeros((10, 32, 32), np.uint8)}, r"expected shape \(N, 28, 28\) for mnist, got \(10, 32, 32\)"),
    ({"images": np.zeros((10, 28, 28, 3), np.uint8)}, r"expected shape \(N, 28, 28\)"),
    ({"images": np.zeros((0, 28, 28), np.uint8)}, "no images"),
    ({"images": np.zeros((10, 28, 28), np.uint8), "labels": np.full(10, 12)}, "labels: values 12..12 outside 0..9"),
    ({"images": np.zeros((10, 28, 28), np.uint8), "labels": np.zeros(9, np.int64)}, "9 labels for 10 images"),
])
def test_score_rejects_malformed_npz(tmp_path, arrays, message):
    from gan_core.samples import score_source

    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    args = argparse.Namespace(source=str(path), dataset="mnist", n=None, seed=0, objective=None,
                              data_dir=None, device="cpu", features=None)
    with pytest.raises(GansearchError, match=message) as info:
        score_source(**vars(args))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_score_rejects_unreadable_files_and_missing_dataset(tmp_path):
    from gan_core.samples import score_source

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    cases = [(garbage, "mnist", "not a readable .npz"), (tmp_path / "missing.npz", "mnist", "no such file"),
             (garbage, None, "--dataset is required"), (garbage, "cifar", "'cifar' is not one of mnist"),
             (tmp_path / "nothing", None, "no such run directory")]
    for source, dataset, message in cases:
        args = argparse.Namespace(source=str(source), dataset=dataset, n=None, seed=0, objective=None,
                                  data_dir=None, device="cpu", features=None)
        with pytest.raises(GansearchError, match=message):
            score_source(**vars(args))


def test_score_run_dir(mnist, tiny_cfg, tmp_path, capsys):
    from gan_core.loop import train

    run_dir = tmp_path / "run"
    train(tiny_cfg(steps=2), run_dir, device="cpu", progress=False)
    out = _score(capsys, run_dir, n=200)
    assert out["kind"] == "run" and out["n"] == 200 and out["dataset"] == "mnist"
    assert out["score"] == out["cfd_200"] > 10  # two steps of training: far from real digits
