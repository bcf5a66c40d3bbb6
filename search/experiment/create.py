"""Creating and growing an experiment folder.

``gansearch search`` creates it before any trial starts (:func:`create_experiment`): the space
file's text, the resolved base config, the reference classifier every trial is scored by, and
last the manifest (gansearch.json), whose presence makes the folder an experiment.

``gansearch resume EXPERIMENT --trials N`` grows it. Ray Tune's restore cannot raise a search's
sample count, so ``N`` more trials are a new Tune run written into the same experiment folder
(new ``trial_<id>/`` folders next to the old ones; Ray's trial ids are random, so none collide)
whose Optuna searcher loads the same study: TPE starts from every stored trial and no trial runs
again. Every reader (review, export, retrain, resume) already reads all trial folders of the
experiment, so it sees all trials once. The manifest keeps the new total in ``options.trials``
and one entry per growth in ``grown``. An interrupted search is first finished by the ordinary
restore, then grown.

Example::

    manifest, before, total = grow_experiment(folder, space, 4)   # 4 more trials
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gan_core.config import dump_config
from gan_core.errors import GansearchError
from search.experiment.layout import (
    BASE_FILE,
    CLASSIFIER_FILE,
    SPACE_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    trial_folders,
)
from search.experiment.manifest import Manifest, read_manifest
from search.storage import Folder

if TYPE_CHECKING:
    from search.space import Space


def create_experiment(exp: str, space: Space, manifest: Manifest, classifier: bytes | None) -> Folder:
    """Write a new experiment's files into ``exp`` (a path or a URI): space.yaml, base.yaml,
    classifier.pt (``classifier``: ReferenceClassifier.to_bytes; None when every trial scores
    with its own eval.features), then gansearch.json."""
    folder = Folder(exp)
    folder.write_text(SPACE_FILE, space.text)
    folder.write_text(BASE_FILE, dump_config(space.base_config))
    if classifier is not None:
        folder.write_bytes(CLASSIFIER_FILE, classifier)
    folder.write_text(STATE_FILE, manifest.dumps())
    return folder


def check_growable(manifest: Manifest, more: int) -> None:
    """A one-line error for a growth that cannot work."""
    if more < 1:
        raise GansearchError(f"--trials: must be >= 1 (trials to add), got {more}")
    if manifest.is_pbt:
        raise GansearchError("--trials: a PBT search cannot grow (its population trains together); "
                             "start a new search with more --trials")


def needs_restore(folder: Folder) -> bool:
    """Whether the search's last Tune run still has unfinished or undrawn trials: summary.json
    is written when a run ends and says so; without it the driver died first."""
    summary = folder.read_json(SUMMARY_FILE)
    return not isinstance(summary, dict) or bool(summary.get("interrupted", True))


def grow_experiment(folder: Folder, space: Space, more: int) -> tuple[Manifest, int, int]:
    """Record ``more`` trials in gansearch.json: (the new manifest, trials before, the new total)."""
    manifest = read_manifest(folder)
    recorded = manifest.options.trials if manifest.options is not None else None
    before = max(int(recorded or space.search.trials), len(trial_folders(folder)))
    grown = manifest.grow(before, more, time.time())
    folder.write_text(STATE_FILE, grown.dumps())
    return grown, before, before + more
