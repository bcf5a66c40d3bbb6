"""The module paths an older experiment's pickles name, pointed at where those names live now.

Ray keeps pickles in the experiment folder: the Tuner with its searcher, callbacks and trial-name
function (tuner.pkl, searcher-state-*.pkl, and inside experiment_state-*.json), and each failed
trial's error (error.pkl). A pickle names a class or function by its module path, and the
search's Ray modules had other paths before they moved into search/raytune/ (search/tune.py,
search/tune_searcher.py, ...). So that such an experiment (tests/fixtures/search_2026_12) still
resumes and grows, :func:`install_legacy_paths` makes each old path a module holding the names
its pickles ask for, before Ray reads them. search.experiment.TrialDiverged kept its path;
``search.raytune.trackers.GansearchMLflow`` (now in mlflow_runs.py) is found by trackers.py's
module ``__getattr__``, lazily, since it imports mlflow.
"""

from __future__ import annotations

import sys
import types


def legacy_names() -> dict[str, dict[str, object]]:
    """Old module path -> {name pickled under it: the object of that name now}."""
    from search.raytune import cluster, progress, recovery, searcher, tuner

    return {
        "search.tune": {"_trial_name": tuner.trial_name},
        "search.tune_searcher": {"BudgetOptunaSearch": searcher.BudgetOptunaSearch},
        "search.tune_progress": {"StatusLines": progress.StatusLines, "_SilentReporter": progress.SilentReporter,
                                 "_TrialFolders": progress.TrialFolders},
        "search.tune_recovery": {"ResultJsonLog": recovery.ResultJsonLog, "ProgressCsvLog": recovery.ProgressCsvLog},
        "search.tune_cluster": {"PendingWatch": cluster.PendingWatch},
    }


def install_legacy_paths() -> None:
    """Register each old module path (once) so that unpickling finds its names."""
    for path, names in legacy_names().items():
        if path not in sys.modules:
            module = types.ModuleType(path, f"gansearch: where {', '.join(names)} lived before search/raytune/")
            module.__dict__.update(names)
            sys.modules[path] = module
