"""search/experiment/: the experiment folder's manifest, statuses, records, ranking and storage,
read without Ray, and search/objective.py. Folders here are written in the exact format Ray Tune and gansearch write (one
result.json line per report, error.txt with one "Failure # N" entry per crash, gansearch.json);
tests/test_review.py covers the same reader on a real search."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gan_core.errors import GansearchError
from search.experiment import (
    BestPoint,
    DriverView,
    Manifest,
    SearchOptions,
    TrialRecord,
    TrialStatus,
    best,
    derive_status,
    error_reason,
    failures,
    open_experiment,
    ranked,
    read_manifest,
    write_summary,
)
from search.objective import Direction, Objective
from search.storage import Folder

REPO = Path(__file__).resolve().parents[1]
SPACE = """
base: mnist-mlp
budget: {images: 512, eval_every: 256, grace_images: 256}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
  model.width: 0.0625
"""
DIVERGED_TRACE = ("Traceback (most recent call last):\n  File \"x.py\", line 3, in f\n    raise X\n"
                  "ray.exceptions.RayTaskError(TrialDiverged): boom\n"
                  "search.experiment.TrialDiverged: non-finite loss_g at step 2\n")
CRASH_TRACE = "Traceback (most recent call last):\n  File \"y.py\", line 1\nRuntimeError: out of memory\n"


def failure_log(trace: str, n: int) -> str:
    """error.txt as Ray's Trial.handle_error appends it, once per crash."""
    return "".join(f"Failure # {i} (occurred at 2026-11-25_16-45-58)\n{trace}" for i in range(1, n + 1))


def report(images: int, score: float, **extra) -> dict:
    return {"images_seen": images, "score": score, "cfd_64": score, "trial_seed": 7,
            "checkpoint_dir_name": f"checkpoint_{images // 256 - 1:06d}", "started_at": 100.0 + images,
            **extra}


def write_trial(exp: Path, tid: str, reports: list[dict], *, error: str = "", lr: float = 1e-3) -> Path:
    d = exp / f"trial_{tid}"
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps({"optim.d.lr": lr, "train.seed": 7}))
    (d / "result.json").write_text("".join(json.dumps({**r, "trial_id": tid}) + "\n" for r in reports))
    for r in reports:
        (d / r["checkpoint_dir_name"]).mkdir()
        (d / r["checkpoint_dir_name"] / "checkpoint.pt").write_bytes(b"x")
    if error:
        (d / "error.txt").write_text(error)
    return d


@pytest.fixture
def experiment(tmp_path) -> Path:
    """One trial of every status, as a search with --max-failures 1 leaves them."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "gansearch.json").write_text(json.dumps({"name": "exp", "metric": "score", "mode": "min",
                                                    "scheduler": "asha", "options": {"name": "exp", "max_failures": 1}}))
    (exp / "space.yaml").write_text(SPACE)
    write_trial(exp, "done", [report(256, 9.0), report(512, 5.0)])
    write_trial(exp, "asha", [report(256, 4.0, done=True)], lr=2e-3)  # ASHA stopped it at 256
    write_trial(exp, "nan", [], error=failure_log(DIVERGED_TRACE, 2))
    write_trial(exp, "oom", [report(256, 1.0)], error=failure_log(CRASH_TRACE, 2))
    write_trial(exp, "retried", [report(256, 8.0), report(512, 6.0)], error=failure_log(CRASH_TRACE, 1))
    write_trial(exp, "live", [report(256, 3.0)])  # running (or its driver died)
    write_trial(exp, "worse", [report(256, 4.5), report(512, 7.0)])  # its best point is not its last
    (exp / "not-a-trial").mkdir()
    return exp


def test_statuses_from_the_files_alone(experiment):
    exp = open_experiment(experiment)
    status = {t.trial_id: t.status for t in exp.trials}
    assert status == {"done": TrialStatus.COMPLETED, "asha": TrialStatus.STOPPED, "nan": TrialStatus.DIVERGED,
                      "oom": TrialStatus.FAILED, "retried": TrialStatus.COMPLETED, "live": TrialStatus.UNFINISHED,
                      "worse": TrialStatus.COMPLETED}
    why = {t.trial_id: t.why for t in exp.trials}
    assert why["asha"] == "at 256 of 512 images"
    assert why["nan"] == "non-finite loss_g at step 2"
    assert exp.trial("nan").reason == "TrialDiverged: non-finite loss_g at step 2" and exp.trial("nan").score is None
    assert why["oom"] == "RuntimeError: out of memory"
    assert why["live"] == "running or interrupted at 256 of 512 images"
    assert [s.label for s in TrialStatus] == ["completed", "stopped early", "diverged", "failed", "unfinished"]
    assert [s for s in TrialStatus if s.finished] == [TrialStatus.COMPLETED, TrialStatus.STOPPED]
    # Statuses are strings: summary.json, tables and older code compare them as such.
    assert exp.trial("asha").status == "stopped" and json.dumps(exp.trial("asha").status) == '"stopped"'
    assert exp.count("completed") == exp.count(TrialStatus.COMPLETED) == 3


def test_records_and_ranking(experiment):
    exp = open_experiment(experiment)
    done = exp.trial("trial_done")
    assert done.score == 5.0 and done.images_seen == 512 and done.params["optim.d.lr"] == 1e-3
    assert done.checkpoint == str(experiment / "trial_done" / "checkpoint_000001")
    assert done.config is not None and done.config.optim.d.lr == 1e-3  # the space applied to its values
    # The live trial (3.0) ranks but cannot be best; failed and diverged ones do not rank.
    assert [t.trial_id for t in exp.ranked()] == ["live", "asha", "worse", "done", "retried"]
    assert exp.best().trial_id == "asha"
    # A trial is ranked by its best point; its last evaluation and checkpoint are kept beside it.
    worse = exp.trial("worse")
    assert (worse.score, worse.best_images, worse.last_score, worse.images_seen) == (4.5, 256, 7.0, 512)
    assert worse.checkpoint == str(experiment / "trial_worse" / "checkpoint_000000")
    assert worse.last_checkpoint == str(experiment / "trial_worse" / "checkpoint_000001")
    assert worse.best_result["images_seen"] == 256 and worse.last["images_seen"] == 512
    (experiment / "trial_worse" / "checkpoint_000000" / "checkpoint.pt").unlink()
    (experiment / "trial_worse" / "checkpoint_000000").rmdir()  # an old search kept the newest only
    assert open_experiment(experiment).trial("worse").checkpoint is None
    with pytest.raises(GansearchError, match="--trial: 'nope' is not a trial of"):
        exp.trial("nope")


def test_best_skips_failed_and_non_finite():
    def row(tid, status, score, images=100):
        return TrialRecord(tid, TrialStatus(status), "", score, images, {}, "", None)

    rows = [row("a", "diverged", None), row("b", "completed", float("nan")), row("c", "stopped", 5.0, 50),
            row("d", "completed", 7.0), row("e", "failed", 1.0), row("f", "unfinished", 0.5)]
    lower, higher = Objective("score", Direction.MIN), Objective("score", Direction.MAX)
    assert best(rows, lower).trial_id == "c"
    assert best(rows, higher).trial_id == "d"
    assert [r.trial_id for r in ranked(rows, lower)] == ["f", "c", "d"]
    assert [r.trial_id for r in ranked(rows, higher)] == ["d", "c", "f"]
    assert best([row("a", "diverged", None)], lower) is None
    tie = [row("x", "stopped", 2.0, 50), row("y", "completed", 2.0, 100)]
    assert best(tie, lower).trial_id == "y"  # the same score after more images wins


def test_error_reason_and_failures():
    assert error_reason(DIVERGED_TRACE) == "TrialDiverged: non-finite loss_g at step 2"
    assert error_reason(failure_log(CRASH_TRACE, 3)) == "RuntimeError: out of memory"
    assert error_reason("") == "unknown error"
    assert failures(failure_log(CRASH_TRACE, 3)) == 3 and failures("") == 0 and failures("boom") == 1


def test_derive_status_rules():
    # Ray retries a crash max_failures times; unlimited retries never make it final from files.
    assert derive_status(images=0, budget=512, error=failure_log(CRASH_TRACE, 1), max_failures=1)[0] == "unfinished"
    assert derive_status(images=0, budget=512, error=failure_log(CRASH_TRACE, 2), max_failures=1)[0] == "failed"
    assert derive_status(images=0, budget=512, error=failure_log(CRASH_TRACE, 9), max_failures=-1)[0] == "unfinished"
    # The writer passes the driver's view (Ray's, mapped by search/raytune) at the end of a search.
    assert derive_status(images=256, budget=512, driver=DriverView.TERMINATED) == (TrialStatus.STOPPED,
                                                                                  "at 256 of 512 images")
    assert derive_status(images=0, budget=512, driver=DriverView.PENDING) == (TrialStatus.UNFINISHED,
                                                                             "pending when the search ended")
    assert derive_status(images=0, budget=512, driver=DriverView.ERRORED, error=DIVERGED_TRACE)[0] == "diverged"
    # summary.json knows what the files cannot (the time budget stopped it) ...
    summary = {"status": "stopped", "reason": "at 256 of 512 images"}
    assert derive_status(images=256, budget=512, summary=summary)[0] == "stopped"
    # ... but never overrides them.
    assert derive_status(images=512, budget=512, summary=summary)[0] == "completed"
    assert derive_status(images=256, budget=None, done=True)[0] == "completed"  # no budget: not "early"


def test_summary_round_trip(experiment):
    exp = open_experiment(experiment)
    write_summary(exp, best_config=None, interrupted=True)
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["best"]["trial_id"] == "asha" and summary["interrupted"] is True
    assert summary["counts"] == {"completed": 3, "stopped": 1, "diverged": 1, "failed": 1, "unfinished": 1}
    worse = {t["trial_id"]: t for t in summary["trials"]}["worse"]
    assert (worse["score"], worse["best_images"], worse["last_score"]) == (4.5, 256, 7.0)
    assert {t["trial_id"]: t["status"] for t in summary["trials"]}["oom"] == "failed"
    # A trial that is "unfinished" in the files but was stopped by the time budget: summary.json says so.
    row = next(t for t in summary["trials"] if t["trial_id"] == "live")
    row.update(status="stopped", reason="at 256 of 512 images")
    (experiment / "summary.json").write_text(json.dumps(summary))
    assert open_experiment(experiment).trial("live").status is TrialStatus.STOPPED


def test_best_point_of_an_export(experiment, tmp_path):
    from gan_core.config import dump_config, load_config

    exp = open_experiment(experiment)
    t = exp.trial("worse")
    point = BestPoint.of(exp, t)
    text = point.comment() + dump_config(t.config)
    (tmp_path / "best.yaml").write_text(text)
    assert load_config(tmp_path / "best.yaml") == t.config  # comments leave the config as it was
    assert BestPoint.from_config_text(text) == point
    assert (point.score, point.images, point.last_score, point.images_seen) == (4.5, 256, 7.0, 512)
    assert "its best point: score 4.5 after 256 images (last: 7.0 after 512)" in text
    assert BestPoint.from_config_text(dump_config(t.config)) is None  # not exported by review


def test_uri_and_local_folders_read_the_same(experiment):
    local = open_experiment(experiment)
    uri = open_experiment(f"file://{experiment}")
    assert uri.path == f"file://{experiment}"
    assert [(t.trial_id, t.status, t.score, t.checkpoint, t.path) for t in uri.trials] == \
           [(t.trial_id, t.status, t.score, t.checkpoint, t.path) for t in local.trials]
    folder = Folder(f"file://{experiment}")
    assert folder.local and folder.read_text("missing.txt") is None
    assert folder.write_text("note.txt", "hi") == f"file://{experiment}/note.txt"
    assert (experiment / "note.txt").read_text() == "hi"
    assert folder.entries()["trial_done"] is True and folder.entries("nope") == {}


@pytest.mark.parametrize("what, message", [
    ("missing", "no such experiment folder"),
    ("empty", "not a gansearch experiment (no gansearch.json)"),
    ("trial", "this is one trial's folder; review its experiment"),
])
def test_not_an_experiment(experiment, tmp_path, what, message):
    (tmp_path / "empty").mkdir()
    path = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "trial": experiment / "trial_done"}[what]
    with pytest.raises(GansearchError, match=re.escape(message)):
        open_experiment(path)


def test_reading_needs_no_ray():
    code = ("import sys, search.experiment, search.review, search.commands.review; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'torch', 'optuna'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the objective


def test_objective_decides_better_best_and_order():
    import optuna

    low, high = Objective("cfd_64", Direction.MIN), Objective("recall_64", Direction.MAX)
    assert (low.sign, high.sign) == (1.0, -1.0)
    assert low.is_better(4.0, 5.0) and not low.is_better(5.0, 4.0) and not low.is_better(4.0, 4.0)
    assert high.is_better(5.0, 4.0) and not high.is_better(4.0, 5.0)
    assert low.is_better(9.0, None) and high.is_better(-9.0, None)  # anything beats no score
    values = [5.0, float("nan"), 4.0, None, 4.0, float("inf"), 6.0]
    assert low.best_of(values) == 4.0 and high.best_of(values) == 6.0
    assert low.worst_of(values) == 6.0 and high.worst_of(values) == 4.0
    assert low.best_index(values) == 2 and high.best_index(values) == 6  # the earliest of equals
    assert low.best_of([]) is None and low.best_index([None, float("nan")]) is None
    assert low.best_first([3.0, 1.0, 2.0]) == [1.0, 2.0, 3.0] and high.best_first([3.0, 1.0, 2.0]) == [3.0, 2.0, 1.0]
    assert (low.mode, high.mode, low.better, high.better) == ("min", "max", "lower is better", "higher is better")
    assert low.study_direction is optuna.study.StudyDirection.MINIMIZE
    assert high.study_direction is optuna.study.StudyDirection.MAXIMIZE
    with pytest.raises(GansearchError, match=r"^f: mode: 'lowest' is not one of min, max$"):
        Direction.parse("lowest", "f: mode")


def test_statuses_are_the_runs_and_two_more():
    """A trial is a training run (gan_core.loop.RunStatus) plus what only a search knows."""
    from gan_core.loop import RunStatus

    assert [TrialStatus.of_run(s) for s in RunStatus] == [TrialStatus.COMPLETED, TrialStatus.STOPPED,
                                                          TrialStatus.DIVERGED]
    assert {s.value for s in TrialStatus} - {s.value for s in RunStatus} == {"failed", "unfinished"}


# ----------------------------------------------------------------------------- the manifest

FULL_MANIFEST = Manifest(
    name="quick", space_file="spaces/quick.yaml",
    options=SearchOptions(name="quick", storage="runs", trials=8, cpus_per_trial=1.0, cost="params"),
    scheduler="asha", optuna_storage="sqlite:////tmp/runs/quick/optuna.db", metric="cfd_2k", mode=Direction.MAX,
    created=1.5, cwd="/tmp",
)


def test_manifest_round_trips_and_grows():
    data = json.loads(json.dumps(FULL_MANIFEST.to_json()))
    assert Manifest.from_json(data, "m") == FULL_MANIFEST
    assert list(data) == ["version", "name", "space_file", "options", "scheduler", "optuna_storage", "metric",
                          "mode", "created", "cwd"]  # the order `gansearch search` has always written
    assert FULL_MANIFEST.objective() == Objective("cfd_2k", Direction.MAX) and FULL_MANIFEST.cost == "params"
    grown = FULL_MANIFEST.grow(8, 4, at=2.0).grow(12, 2, at=3.0)
    assert grown.options.trials == 14 and [(g.added, g.before, g.total) for g in grown.grown] == [(4, 8, 12), (2, 12, 14)]
    assert Manifest.from_json(json.loads(grown.dumps()), "m") == grown
    # What an older or hand-written manifest leaves out comes from the space, then the default.
    partial = Manifest.from_json({"metric": "kid_64"}, "m")
    assert partial.objective(Objective("x", Direction.MAX)) == Objective("kid_64", Direction.MAX)
    assert Manifest().objective() == Objective("score", Direction.MIN) and Manifest().max_failures == 0
    assert partial.missing == ("name", "scheduler", "options", "options.cpus_per_trial", "options.gpus_per_trial")
    assert Manifest.from_json(data, "m").missing == ()


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "colour": "red"}, "gansearch.json: colour: unknown key (known: version, name, "),
    ({"options": {"name": "x", "trails": 3}}, "gansearch.json: options.trails: unknown key (known: name, storage, "),
    ({"options": {"trials": 3}}, "gansearch.json: options.name: missing"),
    ({"mode": "sideways", "metric": 3}, "gansearch.json: mode: 'sideways' is not one of min, max"),
    ({"metric": 3}, "gansearch.json: metric: expected a string, got 3"),
    ({"options": {"name": "x", "trials": "8"}}, 'gansearch.json: options.trials: expected an integer, got "8"'),
    ({"grown": [{"added": 1, "before": 2, "total": 3}]}, "gansearch.json: grown[0].at: missing"),
    ({"classifier": "abc"}, 'gansearch.json: classifier: expected an object, got "abc"'),
])
def test_manifest_refuses_in_one_line(tmp_path, data, message):
    (tmp_path / "gansearch.json").write_text(json.dumps(data))
    with pytest.raises(GansearchError) as err:
        read_manifest(Folder(tmp_path))
    assert str(err.value).startswith(f"{tmp_path}/{message}") and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- an experiment of older code

FIXTURE = REPO / "tests" / "fixtures" / "search_2026_12"


def test_an_experiment_written_before_the_typed_core_still_reads(tmp_path):
    """tests/fixtures/search_2026_12 is a real search of three tiny trials written by the code
    before search/experiment/ was a package (its checkpoint weights and images left out): its
    manifest parses and writes back byte for byte, and its trials read as that code recorded
    them in its summary.json."""
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(FIXTURE, copy)
    text = (copy / "gansearch.json").read_text()
    manifest = read_manifest(Folder(copy))
    assert manifest.dumps() == text  # the typed manifest holds all of it, in its order
    assert (manifest.name, manifest.scheduler, manifest.options.seed, manifest.classifier.dataset) == \
           ("old", "asha", 1, "mnist")
    exp = open_experiment(copy)
    old = json.loads((copy / "summary.json").read_text())
    assert exp.objective == Objective("score", Direction.MIN) and exp.budget_images == 1024
    assert {t.trial_id: (str(t.status), t.score, t.images_seen, t.best_images, t.last_score) for t in exp.trials} == \
           {r["trial_id"]: (r["status"], r["score"], r["images_seen"], r["best_images"], r["last_score"])
            for r in old["trials"]}
    assert exp.best().trial_id == old["best"]["trial_id"]
    assert {str(s): exp.count(s) for s in TrialStatus} == old["counts"]
    assert exp.best().config is not None and exp.best().config.train.images == 1024
