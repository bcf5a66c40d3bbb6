"""Reference classifiers: the real MNIST one (trained once per cache), caching, corruption, determinism."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from gan_core.config import DataConfig
from gan_core.errors import DataError
from gan_core.metrics import cache, classifier
from gan_core.metrics.classifier import Classifier, ClassifierConfig, get_classifier, train_classifier

torch.set_num_threads(min(2, torch.get_num_threads()))

# A few dozen steps of a very narrow network: exercises every code path in about a second.
TINY = ClassifierConfig(width=4, features=16, epochs=0.0, min_steps=40, batch_size=64)
MNIST = DataConfig(name="mnist")


@pytest.fixture(scope="session")
def mnist_classifier():
    """The real MNIST reference classifier: from the cache, or trained here once (about a minute)."""
    return get_classifier(MNIST, progress=False)


def test_mnist_classifier_reaches_target_and_is_recorded(mnist_classifier):
    clf = mnist_classifier
    assert clf.test_accuracy >= 0.99
    assert clf.num_classes == 10 and clf.shape == (1, 28, 28)
    body = cache.load_entry(clf.path, "classifier", clf.key)
    assert body is not None
    assert body["test_accuracy"] == clf.test_accuracy and body["train_seconds"] > 0
    assert body["test_size"] == 10_000 and body["config"]["epochs"] == clf.config.epochs


def test_embed_shapes_and_probabilities(mnist_classifier):
    from gan_core.data import load_dataset

    x, y = load_dataset(MNIST, "test").take(300)
    emb = mnist_classifier.embed(x, batch=128)
    feats, probs = emb.features, emb.probs
    assert feats.shape == (300, 128) and feats.dtype == torch.float32
    assert emb.manifold.shape == (300, 128 + 64) and len(emb.head(10)) == 10
    torch.testing.assert_close(emb.manifold.norm(dim=1), torch.full((300,), 2**0.5))
    assert probs.shape == (300, 10) and probs.dtype == torch.float64
    torch.testing.assert_close(probs.sum(1), torch.ones(300, dtype=torch.float64))
    assert (probs.argmax(1) == y).double().mean() > 0.98


def test_second_use_loads_from_cache_without_training(mnist_classifier, monkeypatch):
    classifier.clear_memory()

    def refuse(*args, **kwargs):
        raise AssertionError("the cached classifier was retrained")

    monkeypatch.setattr(classifier, "train_classifier", refuse)
    again = get_classifier(MNIST, progress=False)
    assert not again.trained and again.weights_digest == mnist_classifier.weights_digest
    assert get_classifier(MNIST) is again  # then from memory


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"
    classifier.clear_memory()


def test_corrupt_cache_file_is_rebuilt_with_a_warning(tmp_cache):
    first = get_classifier(MNIST, config=TINY, progress=False)
    assert first.trained and first.path.parent == tmp_cache / "classifiers"
    first.path.write_bytes(first.path.read_bytes()[:1000])  # truncated: unreadable
    classifier.clear_memory()
    with pytest.warns(UserWarning, match="corrupt classifier cache entry, unreadable"):
        rebuilt = get_classifier(MNIST, config=TINY, progress=False)
    assert rebuilt.trained and rebuilt.weights_digest == first.weights_digest  # deterministic
    classifier.clear_memory()
    assert not get_classifier(MNIST, config=TINY).trained  # the rebuilt file is good


def test_tampered_cache_file_fails_its_checksum(tmp_cache):
    first = get_classifier(MNIST, config=TINY, progress=False)
    body = torch.load(first.path, weights_only=True)
    body["state_dict"]["head.2.bias"] += 1.0  # still a valid file, different weights
    torch.save(body, first.path)
    classifier.clear_memory()
    with pytest.warns(UserWarning, match="checksum mismatch"):
        rebuilt = get_classifier(MNIST, config=TINY, progress=False)
    assert rebuilt.trained and rebuilt.weights_digest == first.weights_digest


def test_reference_statistics_are_cached_and_rebuilt_when_corrupt(tmp_cache):
    from gan_core.metrics import features

    clf = get_classifier(MNIST, config=TINY, progress=False)
    ref = features.get_reference(clf, MNIST, n=400)
    assert ref.n == 400 and ref.features.shape == (400, 16) and ref.radii.shape == (400,)
    assert ref.manifold.shape == (400, 16 + 8)
    assert features.get_reference(clf, MNIST, n=400) is ref  # memory
    assert features.get_reference(clf, MNIST, n=300).key != ref.key  # n is part of the key
    (path,) = (tmp_cache / "refstats").glob(f"mnist-{ref.key[:16]}.pt")
    path.write_bytes(b"garbage")
    features.clear_memory()
    with pytest.warns(UserWarning, match="corrupt refstats cache entry"):
        again = features.get_reference(clf, MNIST, n=400)
    torch.testing.assert_close(again.features, ref.features, rtol=0, atol=0)
    features.clear_memory()


def test_cache_key_depends_on_config_and_content(tmp_cache):
    from gan_core.data import load_dataset

    train, test = load_dataset(MNIST, "train"), load_dataset(MNIST, "test")
    fashion = load_dataset(DataConfig(name="fashion"), "train")
    key = classifier.classifier_key(train, test, TINY)
    assert key == classifier.classifier_key(train, test, ClassifierConfig(**TINY.__dict__))
    assert key != classifier.classifier_key(train, test, ClassifierConfig(**{**TINY.__dict__, "seed": 1}))
    assert key != classifier.classifier_key(fashion, test, TINY)
    assert cache.slug("csv:/data/x/train.csv") == "csv-train"


def test_training_is_deterministic():
    from gan_core.data import load_dataset

    train, test = load_dataset(MNIST, "train"), load_dataset(MNIST, "test")
    rng_before = torch.get_rng_state()
    a, info = train_classifier(train, test, TINY, progress=False)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched
    b, _ = train_classifier(train, test, TINY, progress=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert info["steps"] == 40 and 0.5 < info["test_accuracy"] < 1.0


def _write_csv(path, images, labels=None):
    header = (["label"] if labels is not None else []) + [f"pixel{i}" for i in range(784)]
    rows = images.reshape(len(images), -1).numpy().astype(np.int64)
    if labels is not None:
        rows = np.concatenate([labels.numpy()[:, None], rows], axis=1)
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=",".join(header), comments="")


def test_labeled_csv_gets_a_classifier_and_unlabeled_is_refused(tmp_cache, tmp_path):
    from gan_core.data import load_dataset

    x, y = load_dataset(MNIST, "train").take(1200)
    labeled = tmp_path / "digits.csv"
    _write_csv(labeled, x, y)
    clf = get_classifier(DataConfig(name=f"csv:{labeled}"), config=TINY, progress=False)
    assert clf.path.name.startswith("csv-digits-") and clf.test_accuracy > 0.5
    unlabeled = tmp_path / "nolabels.csv"
    _write_csv(unlabeled, x[:60])
    with pytest.raises(DataError, match="unlabeled dataset; classifier metrics need labels"):
        get_classifier(DataConfig(name=f"csv:{unlabeled}"), config=TINY)


def test_color_mnist_classifier_resizes_and_trains(tmp_cache):
    model = Classifier((3, 64, 64), 10, TINY)
    x = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    feats, logits = model.eval().features_and_logits(classifier.preprocess(x, TINY.max_side))
    assert feats.shape == (5, 16) and logits.shape == (5, 10)
    clf = get_classifier(DataConfig(name="color-mnist", resolution=32), config=TINY, progress=False)
    assert clf.shape == (3, 32, 32) and clf.test_accuracy > 0.15  # chance: 0.1


def test_classifier_command(mnist_classifier, capsys):
    from search.commands import classifier as command

    args = argparse.Namespace(action="train", dataset="mnist", data_dir=None, image_size=None,
                              background=None, change_colors=False, force=False, device="cpu", quiet=True)
    assert command.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["test_accuracy"] == mnist_classifier.test_accuracy and out["path"] == str(mnist_classifier.path)
    args.action = "info"
    assert command.run(args) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True
    args.dataset = "cifar"
    with pytest.raises(Exception, match="'cifar' is not one of mnist, fashion, color-mnist, csv:PATH"):
        command.run(args)


def test_training_progress_redirected_is_plain_lines(capsys):
    """Asked for progress with stderr redirected (a log file): plain lines, no carriage returns."""
    from gan_core.data import load_dataset

    train, test = load_dataset(MNIST, "train"), load_dataset(MNIST, "test")
    train_classifier(train, test, TINY, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if "steps" in line]
    assert 10 <= len(lines) <= 25 and lines[-1].split(":")[1].strip().startswith("100%"), lines
