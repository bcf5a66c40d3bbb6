"""The Tune callback of ``search --log-to`` (search/trackers.py parses it): Ray's own
MLflowLoggerCallback or WandbLoggerCallback, run in the driver.

MLflow: an MLflow experiment named after the search, one run per trial (named after its trial
folder) with the trial's sampled parameters, its metrics at every report (step: Tune's
``training_iteration``), its sample grids as artifacts (``samples/step-*.png``, those the driver
can read: trials on its own node, or the experiment folder's synced copy) and the tags
``gansearch.experiment`` (the experiment folder) and ``gansearch.trial_id``. A resumed trial
logs on into its run, found by those tags. Weights & Biases: a project (the search's name
unless given) whose runs are the trials, grouped by the search's name.
"""

from __future__ import annotations

from typing import Any

from search.trackers import check_tracker


def tracker_callbacks(log_to: str | None, *, name: str, exp: str, pbt: bool) -> list[Any]:
    """The Tune callbacks that log the search ``name`` in folder ``exp`` to ``log_to`` (none for
    None). ``pbt``: parameters are logged at a trial's end (PBT changes them in a running trial,
    and MLflow refuses a parameter's second value)."""
    if log_to is None:
        return []
    tracker = check_tracker(log_to)
    if tracker.kind == "mlflow":
        return [_mlflow_callback(tracker.target, name=name, exp=exp, pbt=pbt)]
    from ray.air.integrations.wandb import WandbLoggerCallback

    return [WandbLoggerCallback(project=tracker.target or name, group=name)]


def _mlflow_callback(uri: str | None, *, name: str, exp: str, pbt: bool) -> Any:
    # Imported here: Ray's MLflow integration imports mlflow, ~1.6 s of every search's start.
    from search.raytune.mlflow_runs import EXPERIMENT_TAG, GansearchMLflow

    return GansearchMLflow(exp, tracking_uri=uri, experiment_name=name, tags={EXPERIMENT_TAG: exp},
                           log_params_on_trial_end=pbt)


def __getattr__(name: str) -> Any:
    """``GansearchMLflow`` by its old address: the Tuner state of a search logged to MLflow
    before it moved to mlflow_runs.py names it here."""
    if name == "GansearchMLflow":
        from search.raytune.mlflow_runs import GansearchMLflow

        return GansearchMLflow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
