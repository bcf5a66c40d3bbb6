"""search/experiment.py: the experiment folder's statuses, records, ranking and storage, read
without Ray. Folders here are written in the exact format Ray Tune and gansearch write (one
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
    TrialRecord,
    TrialStatus,
    best,
    derive_status,
    error_reason,
    failures,
    open_experiment,
    ranked,
    write_summary,
)
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
                                                    "scheduler": "asha", "options": {"max_failures": 1}}))
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
    assert best(rows, "min").trial_id == "c"
    assert best(rows, "max").trial_id == "d"
    assert [r.trial_id for r in ranked(rows, "min")] == ["f", "c", "d"]
    assert best([row("a", "diverged", None)], "min") is None
    tie = [row("x", "stopped", 2.0, 50), row("y", "completed", 2.0, 100)]
    assert best(tie, "min").trial_id == "y"  # the same score after more images wins


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
    # The writer passes Ray's own view at the end of a search.
    assert derive_status(images=256, budget=512, ray_status="TERMINATED") == (TrialStatus.STOPPED,
                                                                             "at 256 of 512 images")
    assert derive_status(images=0, budget=512, ray_status="PENDING") == (TrialStatus.UNFINISHED,
                                                                        "pending when the search ended")
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
