"""The experiment folder's layout: every file name, and the name of a trial's folder.

``<storage>/<name>`` (a local folder or an s3:// / gs:// / file:// URI)::

    gansearch.json      the manifest: how the search was started, and its growth (manifest.py)
    space.yaml          the space file's text; base.yaml the resolved base config
    optuna.db           the Optuna study (optuna-dashboard sqlite:///.../optuna.db)
    optuna-artifacts/   each trial's newest sample grid, attached to its Optuna trial
    trial_<id>/         Ray's trial folder: result.json, params.json, error.txt if it failed,
                        checkpoint_NNNNNN/ (checkpoint.pt, metrics.jsonl, config.yaml),
                        run/ (samples, learning.gif, curves.png), stdout and stderr
    classifier.pt       the reference classifier the driver shipped to every trial (a cache entry)
    summary.json        every trial's record when the search ended, and the best trial
    best_config.yaml    the best trial's full config (gansearch train --config best_config.yaml)
    confirm/, confirm.json, confirmed_config.yaml   review --confirm (search/confirm.py)
"""

from __future__ import annotations

from pathlib import Path

from search.storage import Folder, is_uri

STATE_FILE = "gansearch.json"
SPACE_FILE = "space.yaml"
BASE_FILE = "base.yaml"
OPTUNA_FILE = "optuna.db"
ARTIFACTS_DIR = "optuna-artifacts"  # the sample grids attached to the study's trials
SUMMARY_FILE = "summary.json"
BEST_CONFIG_FILE = "best_config.yaml"
CLASSIFIER_FILE = "classifier.pt"  # the reference classifier every trial was scored by (shipped to them)
RESULT_FILE = "result.json"  # Ray Tune: one JSON line per report
PROGRESS_FILE = "progress.csv"  # Ray Tune: one CSV row per report
PARAMS_FILE = "params.json"  # Ray Tune: the trial's config
ERROR_FILE = "error.txt"  # Ray Tune: one "Failure # N" entry per crash
TRIAL_PREFIX = "trial_"
CHECKPOINT_PREFIX = "checkpoint_"
RUN_SUBDIR = "run"  # the loop's own run directory inside a trial folder
# Files a reported checkpoint carries: enough to resume the loop exactly (samples stay in run/).
CHECKPOINT_FILES = ("checkpoint.pt", "metrics.jsonl", "config.yaml")
CONFIRM_DIR = "confirm"
CONFIRM_FILE = "confirm.json"
CONFIRMED_CONFIG = "confirmed_config.yaml"  # the best mean's config, as best_config.yaml is the search's best


def trial_folder_name(trial_id: str) -> str:
    """The folder of trial ``trial_id`` (Ray's trial name and folder: the searcher names both)."""
    return TRIAL_PREFIX + trial_id


def trial_id_of(name: str) -> str:
    """The trial id of a trial folder's name (an id given with its prefix is an id too)."""
    return name.removeprefix(TRIAL_PREFIX)


def experiment_path(storage: str | None, name: str) -> str:
    """``<storage>/<name>``: an absolute local path, or a URI."""
    root = storage or "runs"
    if is_uri(root):
        return root.rstrip("/") + "/" + name
    return str(Path(root).expanduser().resolve() / name)


def trial_folders(folder: Folder) -> list[str]:
    """The names of the trial folders (those holding Ray's params.json or result.json)."""
    out = []
    for name, is_dir in sorted(folder.entries().items()):
        if is_dir:
            inside = folder.entries(name)
            if PARAMS_FILE in inside or RESULT_FILE in inside:
                out.append(name)
    return out
