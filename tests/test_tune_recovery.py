"""search/tune_recovery.py on real Ray Tune objects (Result, Checkpoint) over real folders: the
checkpoint a killed driver's saved state names but Ray had deleted. The whole path (a search
killed with its Ray, then resumed) runs in tests/test_faults.py."""

from __future__ import annotations

from pathlib import Path

from ray.tune import Checkpoint, Result

from search.tune_recovery import refill_missing_checkpoints


def _trial(root: Path, name: str, kept: list[int]) -> Path:
    folder = root / name
    for i in kept:
        (folder / f"checkpoint_{i:06d}").mkdir(parents=True)
        (folder / f"checkpoint_{i:06d}" / "checkpoint.pt").write_text(f"state after report {i + 1}")
    return folder


def _result(folder: Path, index: int | None) -> Result:
    ckpt = None if index is None else Checkpoint(str(folder / f"checkpoint_{index:06d}"))
    return Result(metrics={}, checkpoint=ckpt, error=None, path=str(folder))


def test_a_deleted_checkpoint_is_replaced_by_the_newest_older_one_and_newer_ones_go(tmp_path):
    # The saved state names checkpoint 5; Ray kept 1 and 4 (best by score) and wrote 6 and 7 after.
    cut = _trial(tmp_path, "trial_cut", [1, 4, 6, 7])
    notes = refill_missing_checkpoints([_result(cut, 5)])
    assert notes == ["trial_cut: checkpoint_000005 was deleted after Ray's last saved state; "
                     "resuming from checkpoint_000004"]
    assert sorted(p.name for p in cut.iterdir()) == ["checkpoint_000001", "checkpoint_000004", "checkpoint_000005"]
    assert (cut / "checkpoint_000005" / "checkpoint.pt").read_text() == "state after report 5"
    assert (cut / "checkpoint_000004" / "checkpoint.pt").read_text() == "state after report 5"


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
