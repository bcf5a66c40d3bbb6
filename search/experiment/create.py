"""Growing a search: the bookkeeping of ``gansearch resume EXPERIMENT --trials N``.

Ray Tune's restore cannot raise a search's sample count, so ``N`` more trials are a new Tune run
written into the same experiment folder (new ``trial_<id>/`` folders next to the old ones; Ray's
trial ids are random, so none collide) whose Optuna searcher loads the same study: TPE starts
from every stored trial and no trial runs again. Every reader (review, export, retrain, resume)
already reads all trial folders of the experiment, so it sees all trials once. gansearch.json
keeps the new total in ``options.trials`` and one entry per growth in ``grown``.
An interrupted search is first finished by the ordinary restore, then grown.

Example::

    state, before, total = grown_state(folder, space, 4)   # 4 more trials
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from gan_core.errors import GansearchError
from search.experiment.records import STATE_FILE, SUMMARY_FILE, read_state, trial_folders
from search.storage import Folder

if TYPE_CHECKING:
    from search.space import Space


def check_growable(state: dict[str, Any], more: int) -> None:
    """A one-line error for a growth that cannot work."""
    if more < 1:
        raise GansearchError(f"--trials: must be >= 1 (trials to add), got {more}")
    if state.get("scheduler") == "pbt":
        raise GansearchError("--trials: a PBT search cannot grow (its population trains together); "
                             "start a new search with more --trials")


def needs_restore(folder: Folder) -> bool:
    """Whether the search's last Tune run still has unfinished or undrawn trials: summary.json
    is written when a run ends and says so; without it the driver died first."""
    summary = folder.read_json(SUMMARY_FILE)
    return not isinstance(summary, dict) or bool(summary.get("interrupted", True))


def grown_state(folder: Folder, space: Space, more: int) -> tuple[dict[str, Any], int, int]:
    """Record ``more`` trials in gansearch.json: (the new state, trials before, the new total)."""
    state = read_state(folder)
    opts = state.setdefault("options", {})
    before = max(int(opts.get("trials") or space.search.trials), len(trial_folders(folder)))
    total = before + more
    opts["trials"] = total
    state.setdefault("grown", []).append({"added": more, "before": before, "total": total, "at": time.time()})
    folder.write_text(STATE_FILE, json.dumps(state, indent=2))
    return state, before, total
