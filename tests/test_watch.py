"""Watching a search: a real tiny `gansearch search --quiet` (real Ray and Optuna), its captured
output, its trials' TensorBoard events and the sample grids attached to the Optuna study."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_events import read_events
from tests.tiny_space import tiny_space

REPO = Path(__file__).resolve().parents[1]

SPACE = tiny_space(1024, "{trials: 2, max_concurrent: 2, scheduler: fifo}")


@pytest.mark.e2e  # make test-e2e: a whole workflow; CI runs it
def test_quiet_search_prints_status_lines_only_and_feeds_tensorboard_and_the_dashboard(tmp_path):
    import optuna

    space = tmp_path / "watch.yaml"
    space.write_text(SPACE)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "search.cli", "search", "--space", str(space), "--name", "w",
                           "--storage", str(tmp_path / "runs"), "--quiet"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True,
                          timeout=600)
    out = done.stdout
    assert done.returncode == 0, out
    assert "\r" not in out
    for noise in (" INFO ", "[I 20", "Checkpoint successfully created", "ValueError when calling",
                  "tensorboard --logdir", "Configuration for experiment", "Trial status"):
        assert noise not in out, noise
    started = re.findall(r"trial (\w+) started \(\d/2\): optim\.d\.lr=\S+\n", out)
    completed = re.findall(r"trial (\w+) completed: score [\d.]+ after 1024 images \(best", out)
    assert len(started) == 2 and sorted(started) == sorted(completed)
    assert "2/2 done (2 completed, 0 stopped early, 0 failed), 0 running; best score" in out

    exp = tmp_path / "runs" / "w"
    # TensorBoard: each trial's run folder holds its scalars and sample grids on the images axis.
    for trial in started:
        scalars, images = read_events(exp / f"trial_{trial}" / "run")
        assert [s for s, _ in scalars["eval/score"]] == [512, 1024]
        assert [s for s, _ in scalars["train/loss_d"]] == [512, 1024]
        assert [s for s, _ in images["samples"]] == [0, 512, 1024]
    # optuna-dashboard: every trial carries its newest sample grid, a PNG in the experiment folder.
    study = optuna.load_study(study_name="w", storage=f"sqlite:///{exp / 'optuna.db'}")
    store = optuna.artifacts.FileSystemArtifactStore(str(exp / "optuna-artifacts"))
    assert len(study.trials) == 2
    for t in study.trials:
        (meta,) = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert meta.filename == "step-000032.png" and meta.mimetype == "image/png"
        with store.open_reader(meta.artifact_id) as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
