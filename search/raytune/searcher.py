"""The searcher of a search: Ray's OptunaSearch, telling the Optuna study each trial's best point
and the budget it reached, and attaching each trial's newest sample grid to it (optuna-dashboard).
Used by tuner.py's Tuner; the study lives where search/study_db.py says, and the driver reads and
writes it through search/study_cache.py (its running trials in memory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from search.experiment import ARTIFACTS_DIR, RUN_SUBDIR, trial_folder_name
from search.objective import Direction, Objective, finite
from search.study_db import ORIGIN_ATTR, attach_samples, keep_newest_grid


class BudgetOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch, telling the study each trial's best point and the budget it reached.

    OptunaSearch tells Optuna a trial's last reported value and marks every trial that ends
    without an error COMPLETE, so a trial ASHA stopped at 128k images would look to TPE, to
    importance and to a best-of-n study like one scored at 384k. Here a trial that trained its
    whole budget is COMPLETE with its best score (what the leaderboard ranks by); one stopped
    early is PRUNED at the step it reached (TPE ranks pruned trials below complete ones, by step
    reached, then by value; importance uses complete trials only); and every trial carries user
    attributes: images_seen, budget_images, best_images, last_score, tune_trial_id.

    It relies on OptunaSearch's ``_ot_trials`` and ``_completed_trials`` (tests/test_review.py
    checks the study, so a Ray upgrade that renames them fails loudly)."""

    def __init__(self, *args: Any, budget_images: int, experiment: str = "", origin: str = "",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget_images = budget_images
        self.experiment = experiment  # a local experiment folder: sample grids become artifacts
        self.origin = origin  # the experiment (path or URI) each trial is tagged with in the study
        self.trial_dirs: dict[str, str] = {}  # trial id -> its folder on this node (progress.py fills it)
        self._points: dict[str, dict[str, Any]] = {}  # trial id -> best/last values and images

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """OptunaSearch's, and a new Optuna trial tagged at once with its experiment and Tune trial
        id, so that one a killed driver never got to tell can be found (study_db.fail_orphans)."""
        new = trial_id not in self._ot_trials
        config = super().suggest(trial_id)
        ot_trial = self._ot_trials.get(trial_id)
        origin = self.__dict__.get("origin", "")  # a searcher pickled by an older version has none
        if new and ot_trial is not None and origin:
            ot_trial.set_user_attr(ORIGIN_ATTR, origin)
            ot_trial.set_user_attr("tune_trial_id", trial_id)
        return config

    @property
    def quality(self) -> Objective:
        """The score's objective (the first of a multi-objective search's; the cost comes second),
        from OptunaSearch's own ``metric`` and ``mode`` (so a searcher pickled by an older
        version, which Tuner.restore brings back, has it too)."""
        metric = self.metric[0] if isinstance(self.metric, list) else self.metric
        mode = self.mode[0] if isinstance(self.mode, list) else self.mode
        return Objective(metric, Direction(mode))

    def _note(self, trial_id: str, result: dict[str, Any]) -> dict[str, Any]:
        p = self._points.setdefault(trial_id, {"best": None, "best_images": None, "last": None, "images": 0,
                                               "step": 0})
        value, images = result.get(self.quality.metric), int(result.get("images_seen", 0) or 0)
        p["images"], p["last"] = images, float(value) if finite(value) else None
        if finite(value) and self.quality.is_better(value, p["best"]):
            p["best"], p["best_images"] = float(value), images
        return p

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials:  # a late report of a trial already told (and let go)
            return
        step = result.get("training_iteration", 0)
        if step > self._points.get(trial_id, {}).get("step", 0):  # a resumed trial repeats a few
            super().on_trial_result(trial_id, result)
        p = self._note(trial_id, result)
        p["step"] = max(p["step"], step)
        if self.experiment:
            self._keep_grid(trial_id)

    def _keep_grid(self, trial_id: str) -> None:
        folders = [self.trial_dirs.get(trial_id), Path(self.experiment) / trial_folder_name(trial_id)]
        keep_newest_grid([Path(f) / RUN_SUBDIR / "samples" for f in folders if f], self._kept_grid(trial_id))

    def _kept_grid(self, trial_id: str) -> Path:
        """Where a trial's newest sample grid waits for its artifact (see keep_newest_grid)."""
        return Path(self.experiment) / ARTIFACTS_DIR / "latest" / trial_id

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        if result:
            p = self._note(trial_id, result)
            if not error and result.get("training_iteration", 0) > p["step"]:
                # The report the scheduler stopped the trial on never reached on_trial_result.
                super().on_trial_result(trial_id, result)
        p = self._points.get(trial_id, {})
        for key, value in (("images_seen", p.get("images", 0)), ("budget_images", self.budget_images),
                           ("best_images", p.get("best_images")), ("last_score", p.get("last")),
                           ("tune_trial_id", trial_id)):
            ot_trial.set_user_attr(key, value)
        if self.experiment:  # before it is told: a finished trial takes no more attributes
            self._keep_grid(trial_id)  # the last report may come with the completion only
            attach_samples(ot_trial, self._kept_grid(trial_id), Path(self.experiment) / ARTIFACTS_DIR)
        if error or not result:
            super().on_trial_complete(trial_id, result, error)
        elif p.get("images", 0) < self.budget_images:
            super().on_trial_complete(trial_id, None, False)  # no value and no error: PRUNED
        else:
            best = p.get("best")
            super().on_trial_complete(trial_id, {**result, self.quality.metric: best} if best is not None else result)
        # Told: the study has it. What is kept per trial stays bounded by the running trials, so
        # that the searcher's state, which Tune saves again and again, does not grow with the study.
        self._ot_trials.pop(trial_id, None)
        self._points.pop(trial_id, None)
        self.trial_dirs.pop(trial_id, None)
