"""``search --log-to``: a real tiny search logs every trial to MLflow's local file store (read
back through MLflow's client), resume logs on into the same runs, and a bad ``--log-to`` is one
line before Ray starts."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_space import tiny_space

REPO = Path(__file__).resolve().parents[1]


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "search.cli", *argv], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize(("value", "expect"), [
    ("nonsense", "'nonsense' is not a tracker"),
    ("mlflow", "mlflow needs its tracking URI"),
    ("mlflow:", "mlflow needs its tracking URI"),
    ("wandb:team/project", "a wandb project is a name without '/'"),
])
def test_a_bad_log_to_is_one_line_naming_the_flag_and_the_forms_before_anything_starts(tmp_path, value, expect):
    space = tmp_path / "s.yaml"
    space.write_text(tiny_space())
    proc = _cli(tmp_path, "search", "--space", str(space), "--name", "x", "--storage", str(tmp_path / "runs"),
                "--log-to", value)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-800:]
    assert lines[0].startswith("gansearch: error: --log-to: ") and expect in lines[0], lines
    assert "mlflow:URI" in lines[0] and "wandb[:PROJECT]" in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_tracker_whose_package_is_missing_says_how_to_install_it(tmp_path, tracker):
    if importlib.util.find_spec(tracker) is not None:
        pytest.skip(f"{tracker} is installed here")
    space = tmp_path / "s.yaml"
    space.write_text(tiny_space())
    value = f"mlflow:file://{tmp_path / 'mlruns'}" if tracker == "mlflow" else "wandb"
    proc = _cli(tmp_path, "search", "--space", str(space), "--name", "x", "--storage", str(tmp_path / "runs"),
                "--log-to", value)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-800:]
    assert lines == [f"gansearch: error: --log-to {tracker}: the {tracker} package is not installed: "
                     f"pip install 'gansearch[{tracker}]'"]
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow not installed (the test extra has it)")
def test_a_tracking_uri_mlflow_refuses_is_one_line_before_ray_starts(tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text(tiny_space())
    proc = _cli(tmp_path, "search", "--space", str(space), "--name", "x", "--storage", str(tmp_path / "runs"),
                "--log-to", "mlflow:nonsense://somewhere")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-800:]
    assert lines[0].startswith("gansearch: error: --log-to mlflow:nonsense://somewhere: MLflow refuses it: ")
    assert "nonsense://somewhere" in lines[0].split("refuses it: ", 1)[1]
    assert not (tmp_path / "runs").exists()


class StopAfterFirstTrial:
    """Sends this process SIGUSR1 (Tune's graceful stop, what Ctrl+C does) once, when the first
    trial completes; the marker keeps the resumed search (which unpickles it) from firing again."""

    def __new__(cls, marker: str):  # a Tune Callback, made here so that collecting needs no Ray
        from ray.tune import Callback

        class Stop(Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                if not os.path.exists(marker):
                    Path(marker).write_text(trial.trial_id)
                    os.kill(os.getpid(), signal.SIGUSR1)

        return Stop()


@pytest.mark.e2e
@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow not installed (the test extra has it)")
def test_mlflow_file_store_gets_every_trial_with_its_params_metrics_grids_and_tags_also_after_resume(tmp_path,
                                                                                                     monkeypatch):
    from mlflow.tracking import MlflowClient

    from search.experiment import SearchOptions, read_manifest
    from search.raytune.tune import resume_search, run_search
    from search.space import load_space
    from search.storage import Folder

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    (tmp_path / "s.yaml").write_text(tiny_space(images=1024))
    space = load_space(tmp_path / "s.yaml")
    uri = f"file://{tmp_path / 'mlruns'}"
    marker = tmp_path / "stopped-once"
    first = run_search(space, SearchOptions(name="tracked", storage=str(tmp_path / "runs"), trials=3, max_concurrent=1,
                                            verbose=0, log_to=f"mlflow:{uri}"),
                       callbacks=[StopAfterFirstTrial(str(marker))])
    assert first.interrupted
    exp = first.experiment_path
    assert read_manifest(Folder(exp)).options.log_to == f"mlflow:{uri}"  # what resume keeps
    out = resume_search(exp)  # logs on, with the callback Tune unpickles
    assert not out.interrupted and len(out.rows) == 3

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    by_trial = {r.data.tags["gansearch.trial_id"]: r for r in runs}
    assert len(runs) == 3 and sorted(by_trial) == sorted(r.trial_id for r in out.rows)  # one run each
    for row in out.rows:
        run = by_trial[row.trial_id]
        assert run.data.tags["gansearch.experiment"] == exp
        assert run.info.status == "FINISHED"
        assert float(run.data.params["optim.d.lr"]) == pytest.approx(row.params["optim.d.lr"])
        reports = [json.loads(line) for line in Path(row.path, "result.json").read_text().splitlines()]
        history = client.get_metric_history(run.info.run_id, "score")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == \
               pytest.approx([r["score"] for r in reports])
        assert [m.value for m in client.get_metric_history(run.info.run_id, "images_seen")] == \
               [r["images_seen"] for r in reports]
        grids = sorted(a.path for a in client.list_artifacts(run.info.run_id, "samples"))
        assert grids == sorted(f"samples/{g.name}" for g in Path(row.path, "run", "samples").glob("step-*.png"))
        assert grids
