"""Which of a trial's checkpoints stay on storage: its latest, and its best ``keep`` by score.

Ray Tune does the same with ``CheckpointConfig(num_to_keep=K)``, but then forces a snapshot of
the whole experiment state (every trial's state, saved and copied to storage, the driver
waiting for it) whenever any trial has reported K checkpoints since the last snapshot: Ray's
workaround to keep its saved state from naming a checkpoint it deleted since. With 64 trials
reporting that is a snapshot at almost every step of the driver, each one as large as the whole
experiment (30 KB a trial: 150 MB at 5,000 trials), so the driver's work per report grows with
the experiment (bench/bench_scale.py). Here Tune keeps every checkpoint in its books
(``num_to_keep=None``: it snapshots on its own period, ~5 % of the time) and
:class:`CheckpointRetention` deletes the superseded ones from storage as they are superseded;
a driver killed before Tune's next snapshot leaves a state that may name a deleted one, which
recovery.py's ``refill_missing_checkpoints`` puts right before a resume, as it always did.

The callback's books are saved with Tune's experiment state (``get_state``), so a resumed trial
goes on dropping the checkpoints of its earlier session as it supersedes them. A driver killed
with kill -9 saved books as old as Tune's last snapshot: checkpoints made after it stay on storage
(they cost only space).
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from search.objective import Objective, finite


class CheckpointRetention(Callback):
    """Deletes each trial's checkpoints other than its latest and its best ``keep`` by the
    objective's metric (a checkpoint without a finite score ranks last)."""

    def __init__(self, keep: int, objective: Objective) -> None:
        self.keep, self.objective = keep, objective
        self._score: dict[str, float | None] = {}  # trial id -> the score of its last report
        self._kept: dict[str, list[tuple[float | None, Any]]] = {}  # trial id -> (score, checkpoint), oldest first

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        value = result.get(self.objective.metric)
        self._score[trial.trial_id] = float(value) if finite(value) else None

    def on_checkpoint(self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any) -> None:
        kept = self._kept.setdefault(trial.trial_id, [])
        kept.append((self._score.get(trial.trial_id), checkpoint))
        ranked = sorted(kept, key=lambda e: (0, self.objective.key(e[0])) if e[0] is not None else (1, 0.0))
        stay = {id(e) for e in ranked[:self.keep]} | {id(kept[-1])}
        for entry in [e for e in kept if id(e) not in stay]:
            _delete(entry[1])
        kept[:] = [e for e in kept if id(e) in stay]

    def get_state(self) -> dict[str, Any] | None:
        return {"score": dict(self._score), "kept": {t: list(v) for t, v in self._kept.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self._score = dict(state.get("score", {}))
        self._kept = {t: list(v) for t, v in state.get("kept", {}).items()}

    def _forget(self, trial: Any) -> None:
        self._score.pop(trial.trial_id, None)
        self._kept.pop(trial.trial_id, None)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._forget(trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._forget(trial)


def _delete(checkpoint: Any) -> None:
    """Remove a checkpoint's folder from its storage (gone already: nothing to do)."""
    import pyarrow.fs

    fs, path = checkpoint.filesystem, checkpoint.path
    try:
        if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
            fs.delete_dir(path)
    except OSError:
        pass  # another process removed it first, or storage refused: it only costs space
