"""One scoring classifier: the driver ships its reference classifier to every trial, each result
records the classifier's digest, review refuses to rank trials scored by different classifiers;
relative data paths are made absolute on the driver. (A real search with relative paths, its
driver killed and resumed, is in tests/test_faults.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_shipped_classifier_is_used_without_the_cache_and_tampering_is_refused(tmp_path, monkeypatch):
    from gan_core.config import DataConfig
    from gan_core.errors import DataError
    from gan_core.metrics import classifier as C
    from gan_core.metrics import features

    clf = C.get_classifier(DataConfig(name="mnist"))  # the suite's cache (trained once per machine)
    blob = clf.to_bytes()
    # A node that has never seen this classifier: an empty cache, nothing in memory.
    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path / "empty-cache"))
    C.clear_memory()
    features.clear_memory()
    try:
        shipped = C.install_classifier(blob)
        assert shipped.digest == clf.digest and len(shipped.digest) == 12 and shipped.key == clf.key
        got = C.get_classifier(DataConfig(name="mnist"))
        assert got is shipped and not got.trained
        assert not (tmp_path / "empty-cache" / "classifiers").exists()  # neither read nor trained
        import torch

        x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
        assert torch.equal(shipped.embed(x).features, clf.embed(x).features)

        bad = bytearray(blob)
        bad[len(bad) // 2] ^= 0xFF  # a flipped byte inside the weights
        with pytest.raises(DataError, match="shipped reference classifier"):
            C.install_classifier(bytes(bad))
    finally:
        C.clear_memory()
        features.clear_memory()


def _fake_experiment(root: Path, digests: list[str]) -> Path:
    exp = root / "exp"
    exp.mkdir(parents=True)
    (exp / "gansearch.json").write_text(json.dumps({"name": "exp", "metric": "score", "mode": "min"}))
    for i, d in enumerate(digests):
        trial = exp / f"trial_t{i}"
        trial.mkdir()
        (trial / "params.json").write_text("{}")
        (trial / "result.json").write_text(json.dumps({"score": 1.0 + i, "images_seen": 64, "trial_id": f"t{i}",
                                                       "done": True, "classifier_digest": d}) + "\n")
    return exp


def test_review_refuses_to_rank_trials_scored_by_different_classifiers(tmp_path):
    from gan_core.errors import GansearchError
    from search.experiment import open_experiment

    one = _fake_experiment(tmp_path / "a", ["aaaaaaaaaaaa"] * 3)
    exp = open_experiment(one)
    assert [t.trial_id for t in exp.ranked()] == ["t0", "t1", "t2"]
    assert {t.classifier for t in exp.trials} == {"aaaaaaaaaaaa"}

    mixed = open_experiment(_fake_experiment(tmp_path / "b", ["aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb"]))
    for rank in (mixed.ranked, mixed.best):
        with pytest.raises(GansearchError) as err:
            rank()
        msg = str(err.value)
        assert "\n" not in msg and "aaaaaaaaaaaa (2 trials)" in msg and "bbbbbbbbbbbb (1 trials)" in msg
    out = subprocess.run([sys.executable, "-m", "search.cli", "review", str(tmp_path / "b" / "exp")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)  # a hang guard only
    assert out.returncode == 2, out.stdout + out.stderr
    assert "different reference classifiers" in out.stderr and "Traceback" not in out.stderr


def test_absolute_paths():
    from gan_core.config import Config, DataConfig, EvalConfig
    from search.raytune.driver import absolute_paths

    cfg = Config(data=DataConfig(name="csv:sets/train.csv", data_dir="../data", background="~/bg.png"),
                 eval=EvalConfig(features="feats/net.pt"))
    absolute_paths(cfg, "/home/u/work")
    assert cfg.data.name == "csv:/home/u/work/sets/train.csv" and cfg.data.data_dir == "/home/u/data"
    assert cfg.data.background == os.path.expanduser("~/bg.png")
    assert cfg.eval.features == "/home/u/work/feats/net.pt"
    for name in ("folder:imgs", "npz:sets/x.npz"):
        other = Config(data=DataConfig(name=name), eval=EvalConfig(features="inception:w/inception.pth"))
        absolute_paths(other, "/home/u/work")
        assert other.data.name == name.replace(":", ":/home/u/work/", 1)
        assert other.eval.features == "inception:/home/u/work/w/inception.pth"
    mine = Config(data=DataConfig(name="mnist", data_dir="/abs/data"), eval=EvalConfig(features="my_pkg.f:net"))
    absolute_paths(mine, "/elsewhere")
    assert mine.data.name == "mnist" and mine.data.data_dir == "/abs/data" and mine.data.background is None
    assert mine.eval.features == "my_pkg.f:net"  # an import path, not a file
