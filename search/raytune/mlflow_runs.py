"""The MLflow logger of ``search --log-to mlflow[:URI]`` (search/raytune/trackers.py builds
it): Ray's MLflowLoggerCallback, one run per trial, found again by its tags when the search
resumes, with the trial's sample grids as artifacts. Its own module because importing Ray's
MLflow integration imports mlflow (~1.6 s), which a search without --log-to never pays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback

from search.experiment import RUN_SUBDIR, trial_folder_name
from search.storage import is_uri

EXPERIMENT_TAG = "gansearch.experiment"
TRIAL_TAG = "gansearch.trial_id"


class GansearchMLflow(MLflowLoggerCallback):
    """Ray's MLflow logger; a trial's run carries its id as a tag, is found again when the
    search resumes, and gets the trial's sample grids."""

    def __init__(self, exp: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exp = exp
        self.grids_logged: dict[str, set[str]] = {}  # per trial: the grid files its run has

    def log_trial_start(self, trial: Any) -> None:
        if trial not in self._trial_runs:  # a resumed search: the trial's run, if it has one
            run_id = self._run_of(trial.trial_id)
            if run_id is not None:
                self._trial_runs[trial] = run_id
        shared = self.tags
        self.tags = {**(shared or {}), TRIAL_TAG: trial.trial_id}
        try:
            super().log_trial_start(trial)
        finally:
            self.tags = shared

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        super().log_trial_result(iteration, trial, result)
        self._log_grids(trial, result.get("run_dir"))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._log_grids(trial, (trial.last_result or {}).get("run_dir"))
        super().log_trial_end(trial, failed)

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def _run_of(self, trial_id: str) -> str | None:
        """The MLflow run an earlier session of this search logged ``trial_id`` to, if any."""
        client = self._client()
        found = client.get_experiment_by_name(self.experiment_name)
        if found is None:
            return None
        runs = client.search_runs([found.experiment_id], filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}'")
        mine = [r.info.run_id for r in runs if r.data.tags.get(EXPERIMENT_TAG) == self.exp]
        return mine[0] if mine else None

    def _log_grids(self, trial: Any, run_dir: Any) -> None:
        """Each sample grid of ``trial`` the driver can read and has not logged yet."""
        run_id = self._trial_runs.get(trial)
        folders = [Path(str(run_dir)) / "samples"] if run_dir else []
        if not is_uri(self.exp):
            folders.append(Path(self.exp) / trial_folder_name(trial.trial_id) / RUN_SUBDIR / "samples")
        grids = {g.name: g for folder in folders if folder.is_dir() for g in folder.glob("step-*.png")}
        logged = self.grids_logged.setdefault(trial.trial_id, set())
        for grid_name in sorted(set(grids) - logged):
            if run_id is None:
                return
            try:
                self._client().log_artifact(run_id, str(grids[grid_name]), artifact_path="samples")
            except FileNotFoundError:  # the trial's folder was removed meanwhile (Ray's clean-up)
                continue
            logged.add(grid_name)
