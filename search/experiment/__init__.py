"""The experiment folder: one owner for its layout, manifest, trial statuses, records and ranking.

``gansearch search`` (search/raytune/, the Ray adapter) creates and writes an experiment folder
through this package, and every later command reads it here without Ray: review (a search still
running, an interrupted one, or one on s3:// / gs://), export, retrain, explore and resume.
Reading relies on public artefacts only: each trial folder's result.json (one JSON line per
report, with Tune's documented auto-filled keys such as ``done`` and ``checkpoint_dir_name``),
params.json, error.txt, the checkpoint folders, the Optuna study, and the toolkit's own
gansearch.json and summary.json. Ray's private experiment_state-*.json is never read.

One concept per module:

- ``layout``: every file name of the folder (its map is there), the trial folders' names;
- ``manifest``: gansearch.json as a frozen, typed ``Manifest`` (with ``SearchOptions``);
- ``status``: ``TrialStatus`` (derived from gan_core.loop.RunStatus) and how the files tell it;
- ``records``: ``TrialRecord`` (one trial as read), ranking, ``BestPoint``;
- ``reading``: ``Experiment`` and ``open_experiment``, summary.json;
- ``create``: creating an experiment and growing it (``resume --trials N``).

What "better" means (min or max) is search/objective.py's ``Objective``.

Example::

    exp = open_experiment("runs/quick")          # or s3://bucket/gansearch/quick
    for t in exp.ranked():   # by the best evaluation of each trial, not its last
        print(t.trial_id, t.status.label, t.score, t.best_images, t.last_score)
"""

from search.experiment.layout import (
    ARTIFACTS_DIR,
    BASE_FILE,
    BEST_CONFIG_FILE,
    CHECKPOINT_FILES,
    CHECKPOINT_PREFIX,
    CLASSIFIER_FILE,
    CONFIRM_DIR,
    CONFIRM_FILE,
    CONFIRMED_CONFIG,
    ERROR_FILE,
    OPTUNA_FILE,
    PARAMS_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    RUN_SUBDIR,
    SPACE_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    TRIAL_PREFIX,
    experiment_path,
    trial_folder_name,
    trial_folders,
    trial_id_of,
)
from search.experiment.manifest import ClassifierRecord, Growth, Manifest, SearchOptions, read_manifest
from search.experiment.reading import Experiment, open_experiment, read_space, write_summary
from search.experiment.records import (
    NOT_METRICS,
    POINT,
    BestPoint,
    TrialRecord,
    best,
    best_report,
    local_checkpoint,
    parse_results,
    ranked,
    read_json_object,
    read_trial,
    trial_params,
)
from search.experiment.status import (
    DIVERGED_NAME,
    DriverView,
    TrialDiverged,
    TrialStatus,
    derive_status,
    error_reason,
    failures,
)

__all__ = [
    "ARTIFACTS_DIR", "BASE_FILE", "BEST_CONFIG_FILE", "CHECKPOINT_FILES", "CHECKPOINT_PREFIX", "CLASSIFIER_FILE",
    "CONFIRMED_CONFIG", "CONFIRM_DIR", "CONFIRM_FILE", "DIVERGED_NAME", "ERROR_FILE", "NOT_METRICS",
    "OPTUNA_FILE", "PARAMS_FILE", "POINT", "PROGRESS_FILE", "RESULT_FILE", "RUN_SUBDIR", "SPACE_FILE",
    "STATE_FILE", "SUMMARY_FILE", "TRIAL_PREFIX", "BestPoint", "ClassifierRecord", "DriverView", "Experiment",
    "Growth", "Manifest", "SearchOptions", "TrialDiverged", "TrialRecord", "TrialStatus", "best",
    "best_report", "derive_status", "error_reason", "experiment_path", "failures", "local_checkpoint",
    "open_experiment", "parse_results", "ranked", "read_json_object", "read_manifest", "read_space",
    "read_trial", "trial_folder_name", "trial_folders", "trial_id_of", "trial_params", "write_summary",
]
