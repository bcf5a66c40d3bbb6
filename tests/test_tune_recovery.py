"""search/raytune/recovery.py on real Ray Tune objects (Result, Checkpoint) over real folders: the
checkpoint a killed driver's saved state names but Ray had deleted, the loggers' repeated
reports, and a state file a kill cut short. The whole path (a search killed with its Ray, then
resumed) runs in tests/test_faults.py."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.tune import Checkpoint, Result

from gan_core.errors import GansearchError
from search.raytune.recovery import (
    ProgressCsvLog,
    ResultJsonLog,
    clear_unsaved_start,
    recover_torn_state,
    refill_missing_checkpoints,
    unsaved_start,
)


def test_the_layout_names_tunes_result_files():
    """search/experiment/layout.py names the files Tune's loggers write (a private Ray module
    holds Ray's names: listed in search/raytune/__init__.py)."""
    from ray.air.constants import EXPR_ERROR_FILE, EXPR_PARAM_FILE, EXPR_PROGRESS_FILE, EXPR_RESULT_FILE

    from search.experiment import ERROR_FILE, PARAMS_FILE, PROGRESS_FILE, RESULT_FILE

    assert (RESULT_FILE, PROGRESS_FILE, PARAMS_FILE, ERROR_FILE) == \
           (EXPR_RESULT_FILE, EXPR_PROGRESS_FILE, EXPR_PARAM_FILE, EXPR_ERROR_FILE)


def _trial(root: Path, name: str, kept: list[int]) -> Path:
    folder = root / name
    for i in kept:
        (folder / f"checkpoint_{i:06d}").mkdir(parents=True)
        (folder / f"checkpoint_{i:06d}" / "checkpoint.pt").write_text(f"state after report {i + 1}")
    return folder


def _result(folder: Path, index: int | None, *, best: tuple[int, ...] = (), done: bool = False,
            at: Path | None = None) -> Result:
    """A trial's saved result: its latest checkpoint (in ``at``, another trial's folder, under
    PBT) and its best ones."""
    ckpt = None if index is None else Checkpoint(str((at or folder) / f"checkpoint_{index:06d}"))
    kept = [(Checkpoint(str(folder / f"checkpoint_{i:06d}")), {}) for i in best]
    return Result(metrics={"done": done}, checkpoint=ckpt, error=None, path=str(folder), best_checkpoints=kept)


def test_a_deleted_checkpoint_is_replaced_by_the_newest_older_one_and_newer_ones_go(tmp_path):
    # The saved state names checkpoint 5; Ray kept 1 and 4 (best by score) and wrote 6 and 7 after.
    cut = _trial(tmp_path, "trial_cut", [1, 4, 6, 7])
    notes = refill_missing_checkpoints([_result(cut, 5)])
    assert notes == ["trial_cut: checkpoint_000005 was deleted after Ray's last saved state; "
                     "resuming from checkpoint_000004"]
    assert sorted(p.name for p in cut.iterdir()) == ["checkpoint_000001", "checkpoint_000004", "checkpoint_000005"]
    assert (cut / "checkpoint_000005" / "checkpoint.pt").read_text() == "state after report 5"
    assert (cut / "checkpoint_000004" / "checkpoint.pt").read_text() == "state after report 5"


def test_a_deleted_checkpoint_is_never_replaced_by_an_emptied_best_one(tmp_path):
    # Kept by checkpoints.py's callback: Ray's books name every checkpoint (num_to_keep=None),
    # the callback deleted 2, 3 and 4; the saved state names 5, deleted after it was saved.
    cut = _trial(tmp_path, "trial_cut", [1, 6])
    notes = refill_missing_checkpoints([_result(cut, 5, best=(1, 2, 3, 4, 5))])
    assert notes == ["trial_cut: checkpoint_000005 was deleted after Ray's last saved state; "
                     "resuming from checkpoint_000001"]
    assert (cut / "checkpoint_000005" / "checkpoint.pt").read_text() == "state after report 2"
    assert not any((cut / "checkpoint_000004").iterdir())  # emptied for Ray's books, not resumed from


def test_with_no_older_checkpoint_the_trial_starts_over(tmp_path):
    early = _trial(tmp_path, "trial_early", [1])
    notes = refill_missing_checkpoints([_result(early, 0)])
    assert notes == ["trial_early: checkpoint_000000 was deleted after Ray's last saved state and no older one "
                     "is kept; the trial starts over"]
    assert sorted(p.name for p in early.iterdir()) == ["checkpoint_000000"]
    assert not any((early / "checkpoint_000000").iterdir())  # empty: gan_trial restores nothing from it


def test_trials_whose_checkpoint_exists_or_that_have_none_are_left_alone(tmp_path):
    fine = _trial(tmp_path, "trial_fine", [0, 3, 4])
    fresh = tmp_path / "trial_fresh"
    fresh.mkdir()
    assert refill_missing_checkpoints([_result(fine, 3), _result(fresh, None)]) == []
    assert sorted(p.name for p in fine.iterdir()) == ["checkpoint_000000", "checkpoint_000003", "checkpoint_000004"]
    assert list(fresh.iterdir()) == []


def test_a_deleted_best_checkpoint_gets_an_empty_folder_ray_can_delete_again(tmp_path):
    trial = _trial(tmp_path, "trial_best", [2, 5])
    assert refill_missing_checkpoints([_result(trial, 5, best=(1, 2, 5))]) == []
    assert sorted(p.name for p in trial.iterdir()) == ["checkpoint_000001", "checkpoint_000002", "checkpoint_000005"]
    assert not any((trial / "checkpoint_000001").iterdir())


def test_finished_trials_are_not_touched(tmp_path):
    done = _trial(tmp_path, "trial_done", [1, 4, 6])
    assert refill_missing_checkpoints([_result(done, 7, best=(1, 4), done=True)]) == []
    assert sorted(p.name for p in done.iterdir()) == ["checkpoint_000001", "checkpoint_000004", "checkpoint_000006"]


def test_under_pbt_another_trials_checkpoints_are_refilled_but_never_deleted(tmp_path):
    # B exploited A: B's saved latest is A's checkpoint 5, which A then dropped; A's latest is 6.
    a = _trial(tmp_path, "trial_a", [4, 6])
    b = _trial(tmp_path, "trial_b", [2])
    notes = refill_missing_checkpoints([_result(a, 6, best=(4, 6)), _result(b, 5, at=a)])
    assert notes == ["trial_b: checkpoint_000005 was deleted after Ray's last saved state; "
                     "resuming from checkpoint_000004"]
    assert sorted(p.name for p in a.iterdir()) == ["checkpoint_000004", "checkpoint_000005", "checkpoint_000006"]
    assert sorted(p.name for p in b.iterdir()) == ["checkpoint_000002"]


class _Trial:
    """What Tune's file loggers use of a trial: its id, config, its folder on the driver and its
    folder in the experiment (``checkpoint`` None: nothing to bring back from storage)."""

    def __init__(self, folder: Path, stored: Path | None = None) -> None:
        import pyarrow.fs

        self.trial_id = folder.name.removeprefix("trial_")
        self.config: dict = {}
        self.local_path = str(folder)
        self.checkpoint: Checkpoint | None = None
        self.storage = SimpleNamespace(trial_fs_path=str(stored or folder),
                                       storage_filesystem=pyarrow.fs.LocalFileSystem())
        folder.mkdir(parents=True)  # Tune makes it before a trial starts

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def _log(logger, trial, *images: int, extra: dict | None = None) -> None:
    for i, n in enumerate(images):
        logger.log_trial_result(i + 1, trial, {"images_seen": n, "score": float(n), "pid": 1, **(extra or {})})


def test_a_repeated_report_replaces_the_rows_from_its_point_on_in_both_files(tmp_path):
    trial = _Trial(tmp_path / "trial_x")
    loggers = [ResultJsonLog(), ProgressCsvLog()]
    for logger in loggers:
        _log(logger, trial, 512, 1024, 1536, 2048)
        _log(logger, trial, 1024, 1536, extra={"pid": 2, "new_key": 7})  # resumed from the 512 checkpoint
        _log(logger, trial, 2048, 2560, extra={"pid": 2, "new_key": 7})
        logger.log_trial_end(trial)
    rows = [json.loads(line) for line in (tmp_path / "trial_x" / "result.json").read_text().splitlines()]
    assert [(r["images_seen"], r["pid"]) for r in rows] == [(512, 1), (1024, 2), (1536, 2), (2048, 2), (2560, 2)]
    with open(tmp_path / "trial_x" / "progress.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["images_seen", "score", "pid"]  # the first result's columns; the new key has none
    assert all(len(row) == 3 for row in table), table
    assert [(int(r[0]), int(r[2])) for r in table[1:]] == [(512, 1), (1024, 2), (1536, 2), (2048, 2), (2560, 2)]


def test_reports_without_images_or_moving_forward_are_logged_as_tune_would(tmp_path):
    trial = _Trial(tmp_path / "trial_y")
    logger = ResultJsonLog()
    _log(logger, trial, 512, 1024)
    logger.log_trial_result(3, trial, {"score": 1.0})
    logger.log_trial_end(trial)
    rows = [json.loads(line) for line in (tmp_path / "trial_y" / "result.json").read_text().splitlines()]
    assert [r.get("images_seen") for r in rows] == [512, 1024, None]


@pytest.mark.parametrize("logger_class", [ResultJsonLog, ProgressCsvLog])
def test_a_restarted_trial_keeps_the_rows_this_driver_wrote_and_a_new_driver_takes_the_stored_ones(
        tmp_path, logger_class):
    """Tune copies a trial's file back from the experiment folder when the trial restarts with a
    checkpoint (every PBT perturbation); the folder's copy is the driver's of a few seconds ago."""
    stored = tmp_path / "experiment" / "trial_p"
    trial = _Trial(tmp_path / "staging" / "trial_p", stored)
    logger = logger_class()
    _log(logger, trial, 512)
    logger.log_trial_end(trial)
    stored.mkdir(parents=True)
    shutil.copy(Path(trial.local_path, logger.file_name), stored / logger.file_name)  # Ray's sync
    _log(logger, trial, 1024, 1536)  # restarted (a retry; CSV reopens its file then)
    logger.log_trial_end(trial)
    trial.checkpoint = Checkpoint(str(stored))
    logger.log_trial_start(trial)  # PBT: paused at the perturbation, started again
    logger.log_trial_result(4, trial, {"images_seen": 2048, "score": 2048.0, "pid": 1})
    logger.log_trial_end(trial)
    assert _logged_images(Path(trial.local_path, logger.file_name)) == [512, 1024, 1536, 2048]

    resumed = _Trial(tmp_path / "staging2" / "trial_p", stored)  # a resumed search's driver
    resumed.checkpoint = trial.checkpoint
    fresh = logger_class()
    fresh.log_trial_start(resumed)
    fresh.log_trial_result(2, resumed, {"images_seen": 1024, "score": 1024.0, "pid": 2})
    fresh.log_trial_end(resumed)
    assert _logged_images(Path(resumed.local_path, logger.file_name)) == [512, 1024]


def _logged_images(path: Path) -> list[int]:
    if path.suffix == ".json":
        return [json.loads(line)["images_seen"] for line in path.read_text().splitlines()]
    with open(path, newline="") as f:
        return [int(row["images_seen"]) for row in csv.DictReader(f)]


SESSION = "2026-11-26_02-22-02"


def _state_files(folder: Path, *, torn: bool = False) -> None:
    """Ray's three state files of one session (the second one is a pickle despite its name)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = json.dumps({"trial_data": [["trial_a", {}]], "runner_data": {}}).encode()
    (folder / f"experiment_state-{SESSION}.json").write_bytes(state[: len(state) // 2] if torn else state)
    (folder / f"search_gen_state-{SESSION}.json").write_bytes(pickle.dumps({"counter": 2}))
    (folder / f"searcher-state-{SESSION}.pkl").write_bytes(pickle.dumps({"ot_trials": [0, 1]}))


def _staging(ray_tmp: Path, name: str) -> Path:
    """Ray's staging folder of an experiment's driver, as a killed driver leaves it."""
    staging = ray_tmp / "ray" / "session_2026-11-26_02-21-54_786990_21812" / "artifacts" / SESSION / name / \
        "driver_artifacts"
    _state_files(staging)
    (staging / "trial_a").mkdir()
    (staging / "trial_a" / "result.json").write_text('{"images_seen": 1024}\n{"images_seen": 2048}\n')
    return staging


def test_a_state_cut_short_by_a_kill_is_restored_from_rays_staging_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    exp = tmp_path / "runs" / "search1"
    _state_files(exp, torn=True)
    (exp / "trial_a").mkdir()
    (exp / "trial_a" / "result.json").write_text('{"images_seen": 1024}\n')
    staging = _staging(tmp_path / "raytmp", "search1")
    _staging(tmp_path / "raytmp" / "other", "another-search")  # never taken for this one
    notes = recover_torn_state(str(exp))
    assert notes == [f"experiment_state-{SESSION}.json cut short when the driver was killed; "
                     f"restored from Ray's staging copy {staging}"]
    for name in (f"experiment_state-{SESSION}.json", f"searcher-state-{SESSION}.pkl", "trial_a/result.json"):
        assert (exp / name).read_bytes() == (staging / name).read_bytes(), name
    assert recover_torn_state(str(exp)) == []  # whole now


def test_a_state_cut_short_with_no_copy_left_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    exp = tmp_path / "runs" / "search2"
    _state_files(exp)
    (exp / f"searcher-state-{SESSION}.pkl").write_bytes(pickle.dumps({"ot_trials": [0, 1]})[:-1])
    with pytest.raises(GansearchError) as err:
        recover_torn_state(str(exp))
    text = str(err.value)
    assert "\n" not in text and f"searcher-state-{SESSION}.pkl cut short" in text and "cannot resume" in text


def test_whole_states_and_object_stores_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    exp = tmp_path / "runs" / "search3"
    _state_files(exp)
    _staging(tmp_path / "raytmp", "search3")
    assert recover_torn_state(str(exp)) == []
    assert not (exp / "trial_a").exists()
    assert recover_torn_state("s3://bucket/gansearch/search3") == []


def test_a_pbt_search_has_other_state_files_and_those_it_lacks_are_not_torn(tmp_path, monkeypatch):
    """PBT's population is a grid (BasicVariantGenerator): no searcher state, a state of its own."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    exp = tmp_path / "runs" / "pbt"
    exp.mkdir(parents=True)
    (exp / f"experiment_state-{SESSION}.json").write_text(json.dumps({"trial_data": [], "runner_data": {}}))
    (exp / f"basic-variant-state-{SESSION}.json").write_bytes(pickle.dumps({"counter": 3}))
    assert recover_torn_state(str(exp)) == []


def test_a_state_file_the_kill_left_uncopied_is_restored_from_the_staging_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    exp = tmp_path / "runs" / "search4"
    _state_files(exp)
    (exp / f"searcher-state-{SESSION}.pkl").unlink()  # Ray had not copied it yet
    staging = _staging(tmp_path / "raytmp", "search4")
    notes = recover_torn_state(str(exp))
    assert notes == [f"searcher-state-{SESSION}.pkl missing when the driver was killed; "
                     f"restored from Ray's staging copy {staging}"]
    assert (exp / f"searcher-state-{SESSION}.pkl").read_bytes() == (staging / f"searcher-state-{SESSION}.pkl").read_bytes()


def _working_dir(ray_tmp: Path, session: str, lines: list[dict], grids: range) -> Path:
    """A trial's run folder in Ray's working folder of one driver session, as the trial left it."""
    run = ray_tmp / session / "artifacts" / "2026-12-05_10-00-00" / "exp" / "working_dirs" / "trial_x" / "run"
    (run / "samples").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for step in grids:
        (run / "samples" / f"step-{step:06d}.png").write_bytes(f"grid {step} of {session}".encode())
    (run / f"events.out.tfevents.{session}").write_bytes(b"events")
    return run


def test_grids_and_events_a_killed_session_left_on_the_node_come_back_up_to_the_checkpoint(tmp_path):
    from search.raytune.recovery import recover_run_artifacts

    history = [{"kind": "train", "step": s, "loss": s / 10} for s in range(1, 11)]
    _working_dir(tmp_path, "session_old", history, range(0, 11, 2))  # killed after step 10
    other = _working_dir(tmp_path, "session_other", [{"kind": "train", "step": s, "loss": 9} for s in range(1, 20)],
                         range(0, 20, 2))  # another lineage of the same names (a PBT member's donor): never taken
    new = _working_dir(tmp_path, "session_new", history[:6], range(0))  # resumed from step 6
    for f in new.iterdir():
        if f.name.startswith("events"):
            f.unlink()
    notes = recover_run_artifacts(new.parent, new)
    assert len(notes) == 1 and "4 sample grids and 1 TensorBoard event files up to step 6" in notes[0]
    assert sorted(p.name for p in (new / "samples").iterdir()) == [f"step-{s:06d}.png" for s in (0, 2, 4, 6)]
    assert (new / "samples" / "step-000004.png").read_bytes() == b"grid 4 of session_old"
    assert (new / "events.out.tfevents.session_old").exists()
    assert not (new / "samples" / "step-000008.png").exists()  # later ones: the trial draws them again
    shutil.rmtree(new / "samples")  # a PBT restart in this session starts from the checkpoint again
    assert recover_run_artifacts(new.parent, new) == []  # said once
    assert (new / "samples" / "step-000004.png").read_bytes() == b"grid 4 of session_old"
    assert other.exists()


def test_a_restart_on_another_actor_of_the_session_keeps_the_grids_its_earlier_actor_drew(tmp_path):
    """CI's fault test (PBT, Ctrl-C, resume): Tune kept a paused member's actor and restarted the
    member on another one, which emptied the run folder before the first actor had copied its
    last grids out; the trial ended without them. The earlier run folder (moved aside by the
    trainable) gives back its grids up to the checkpoint and its event files, and says nothing."""
    from search.raytune.recovery import recover_run_artifacts

    history = [{"kind": "train", "step": s, "loss": s / 10} for s in range(1, 11)]
    earlier = _working_dir(tmp_path, "session_now", history, range(0, 11, 2))  # paused after step 10
    moved = tmp_path / "aside" / "run"
    moved.parent.mkdir()
    earlier.rename(moved)
    new = _working_dir(tmp_path, "session_now", history[:8], range(0))  # restarted from step 8
    (new / "events.out.tfevents.session_now").unlink()
    assert recover_run_artifacts(new.parent, new, moved) == []  # nothing to tell: same session
    assert sorted(p.name for p in (new / "samples").iterdir()) == [f"step-{s:06d}.png" for s in (0, 2, 4, 6, 8)]
    assert (new / "samples" / "step-000008.png").read_bytes() == b"grid 8 of session_now"
    assert (new / "events.out.tfevents.session_now").read_bytes() == b"events"
    assert recover_run_artifacts(new.parent, new, tmp_path / "gone") == []  # no earlier folder: nothing


def test_a_search_stopped_before_ray_saved_a_trial_is_told_and_cleared_but_not_one_with_reports(tmp_path):
    """Issue 23 item 4: Ctrl-C as soon as gansearch.json appears left Ray no trial to restore
    (its restore logged a traceback and ran its searcher on from its pickled start): such a
    search is told (resume starts it over) and emptied of all but what gansearch wrote first.
    Trials that reported without a saved state cannot be resumed: one line, nothing removed."""
    exp = tmp_path / "runs" / "early"
    exp.mkdir(parents=True)
    for name in ("gansearch.json", "space.yaml", "optuna.db"):
        (exp / name).write_text("kept")
    (exp / "trial_a").mkdir()  # made by Ray, never reported
    (exp / "tuner.pkl").write_bytes(b"")  # Ray's Tuner, pickled before any trial
    assert unsaved_start(str(exp))
    clear_unsaved_start(str(exp), keep=("gansearch.json", "space.yaml", "optuna.db"))
    assert sorted(p.name for p in exp.iterdir()) == ["gansearch.json", "optuna.db", "space.yaml"]

    (exp / "trial_b").mkdir()
    (exp / "trial_b" / "result.json").write_text('{"images_seen": 1024}\n')
    with pytest.raises(GansearchError) as err:
        unsaved_start(str(exp))
    assert "\n" not in str(err.value) and "trial_b" in str(err.value) and "cannot resume" in str(err.value)
    assert (exp / "trial_b" / "result.json").exists()
