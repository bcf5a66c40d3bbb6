"""The README's "Your GAN, your images" walk, at tiny size, as a user runs it: examples/make_shapes.py
writes a labelled image folder, ``gansearch search`` searches examples/shapes_gan (imported from
$PYTHONPATH, not installed) on it over the example space's own keys (model.options.*), then
``review --export``, ``retrain`` and ``explore`` on the winner. Scored with a small feature network
of the user's (eval.features as an import path), so the walk trains no reference classifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

FEATURES = '''
import torch
from torch import nn


def extractor(shape):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(shape[0], 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
'''


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=1800)  # a hang guard only
    assert out.returncode == 0, f"{args}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.e2e
def test_the_example_walk_search_review_retrain(tmp_path):
    from gan_core.config import DataConfig
    from gan_core.data import load_image_set

    subprocess.run([sys.executable, str(EXAMPLES / "make_shapes.py"), "data/shapes", "--per-class", "24",
                    "--size", "16"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tinyfeats.py").write_text(FEATURES)
    base = yaml.safe_load((EXAMPLES / "shapes.yaml").read_text())
    base["data"]["resolution"] = 16
    base["model"].update(latent_dim=16, options={**base["model"]["options"], "channels": 8})
    base["train"] = {"batch_size": 16, "images": 256, "log_every": 64, "sample_every": 128, "checkpoint_every": 128}
    base["eval"] = {"every": 128, "n": 64, "features": "tinyfeats:extractor", "objective": "cfd"}
    (tmp_path / "shapes.yaml").write_text(yaml.safe_dump(base))
    space = yaml.safe_load((EXAMPLES / "shapes_space.yaml").read_text())
    space["budget"] = {"images": 256, "eval_every": 128}
    space["objective"] = {"metric": "score", "mode": "min"}  # score: eval.objective's value (cfd here)
    space["params"]["model.options.channels"] = {"choice": [8, 16]}
    space["search"] = {"trials": 2, "scheduler": "fifo", "cpus_per_trial": 1}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(tmp_path / "mine")]),
           "GANSEARCH_CACHE": str(tmp_path / "cache")}
    out = _run(["search", "--space", "space.yaml", "--name", "shapes", "--storage", "runs", "--quiet"], tmp_path, env)
    assert "best config:" in out
    exp = tmp_path / "runs" / "shapes"
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["counts"]["completed"] == 2
    assert not (exp / "classifier.pt").exists()  # every trial scored by the user's features
    digest = load_image_set(DataConfig(name=f"folder:{tmp_path / 'data' / 'shapes'}", resolution=16,
                                       channels=3)).digest
    for trial in sorted(exp.glob("trial_*")):
        reports = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert reports and {r["data_digest"] for r in reports} == {digest}
        assert {r["config"]["model.options.channels"] for r in reports} <= {8, 16}

    _run(["review", "runs/shapes", "--top", "2", "--export", "best.yaml"], tmp_path, env)
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best["model"]["arch"] == "shapes_gan.nets:build" and best["model"]["options"]["channels"] in (8, 16)
    assert best["data"]["name"] == f"folder:{tmp_path / 'data' / 'shapes'}"
    _run(["retrain", "best.yaml", "--out", "runs/best", "--images", "256"], tmp_path, env)
    assert (tmp_path / "runs" / "best" / "checkpoint.pt").exists()
    _run(["explore", "runs/best", "samples", "--out", "samples.png"], tmp_path, env)
    assert (tmp_path / "samples.png").stat().st_size > 0
