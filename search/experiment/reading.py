"""An experiment folder as read: :class:`Experiment`, from :func:`open_experiment`, and the
summary.json the search writes from it when it ends.

Every command reads an experiment here without Ray: review (a search still running, an
interrupted one, or one on s3:// / gs://), export, retrain and resume. Ray's private
experiment_state-*.json is never read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from gan_core.config import from_dict
from gan_core.errors import GansearchError
from search.experiment.layout import (
    BASE_FILE,
    SPACE_FILE,
    SUMMARY_FILE,
    trial_folder_name,
    trial_folders,
    trial_id_of,
)
from search.experiment.manifest import Manifest, read_manifest
from search.experiment.records import (
    TrialRecord,
    best,
    check_one_classifier,
    ranked,
    read_json_object,
    read_trial,
)
from search.experiment.status import DriverView, TrialStatus
from search.objective import Objective
from search.storage import Folder

if TYPE_CHECKING:
    from search.space import Space


@dataclass
class Experiment:
    """An experiment folder as read: its manifest, its objective, its space, and every trial."""

    path: str
    name: str
    manifest: Manifest
    objective: Objective
    budget_images: int | None
    trials: list[TrialRecord]
    space: Space | None = None  # when space.yaml could be read
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Folder:
        return Folder(self.path)

    @property
    def metric(self) -> str:
        return self.objective.metric

    def ranked(self) -> list[TrialRecord]:
        check_one_classifier(self.trials, self.path)
        return ranked(self.trials, self.objective)

    def best(self) -> TrialRecord | None:
        check_one_classifier(self.trials, self.path)
        return best(self.trials, self.objective)

    def base_trial(self) -> TrialRecord | None:
        """The trial that ran the space's base point (an Optuna search evaluates it first), None
        when none did (a PBT population is drawn at random) or the space file is unreadable."""
        if self.space is None or self.manifest.scheduler == "pbt":
            return None
        point = self.space.base_point()
        same = [t for t in self.trials if point and all(t.params.get(k) == v for k, v in point.items())]
        return min(same, key=lambda t: t.started) if same else None

    def trial(self, trial_id: str) -> TrialRecord:
        want = trial_id_of(trial_id)
        for t in self.trials:
            if t.trial_id == want:
                return t
        ids = ", ".join(t.trial_id for t in self.trials[:12]) + (" ..." if len(self.trials) > 12 else "")
        raise GansearchError(f"--trial: {trial_id!r} is not a trial of {self.path} (trials: {ids or 'none'})")

    def count(self, status: TrialStatus) -> int:
        return sum(t.status == status for t in self.trials)  # a status compares equal to its string


def read_space(folder: Folder) -> Space:
    """The search space saved in the experiment (parsed without Ray or models)."""
    from search.space import parse_space

    text = folder.read_text(SPACE_FILE)
    if text is None:
        raise GansearchError(f"{folder.root}: no {SPACE_FILE} in the experiment")
    base_text = folder.read_text(BASE_FILE)
    try:
        base = from_dict(yaml.safe_load(base_text) or {}) if base_text is not None else None
    except yaml.YAMLError as exc:
        raise GansearchError(f"{folder.root}/{BASE_FILE}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_space(text, f"{folder.root}/{SPACE_FILE}", base_config=base, dry_run=0)


def _try_space(folder: Folder) -> tuple[Space | None, str | None]:
    """The saved space, or None and a note why not (review guesses the searched keys then)."""
    if folder.read_bytes(SPACE_FILE) is None:
        return None, f"no {SPACE_FILE} in the experiment: searched parameters guessed from the trials"
    try:
        return read_space(folder), None
    except (GansearchError, yaml.YAMLError) as exc:
        return None, (f"{folder.root}/{SPACE_FILE}: could not be read ({str(exc).splitlines()[0]}); "
                      "searched parameters guessed")


def open_experiment(path: str | Path, *, driver: dict[str, DriverView] | None = None,
                    with_configs: bool = True) -> Experiment:
    """Read an experiment folder written by ``gansearch search`` (a path or a URI).

    ``driver`` maps trial ids to what the search's driver saw of them; only the writer at the
    end of a search has it. Trials come in the order they started."""
    folder = Folder(path)
    manifest = read_manifest(folder)
    space, note = _try_space(folder)
    notes = [note] if note else []
    objective = manifest.objective(space.objective if space is not None else None)
    budget = space.budget.images if space is not None else None
    summary = read_json_object(folder, SUMMARY_FILE) or {}
    rows = summary.get("trials", []) if isinstance(summary, dict) else []
    by_id = {str(r.get("trial_id")): r for r in rows if isinstance(r, dict)}
    names = trial_folders(folder)
    known = {trial_id_of(n) for n in names}
    names += [trial_folder_name(tid) for tid in sorted(driver or {}) if tid not in known]  # never started
    trials = []
    for name in names:
        tid = trial_id_of(name)
        trials.append(read_trial(folder, name, objective=objective, budget=budget,
                                 max_failures=manifest.max_failures, driver=(driver or {}).get(tid),
                                 summary=by_id.get(tid), space=space, with_config=with_configs))
    trials.sort(key=lambda t: (t.started, t.trial_id))
    if not trials:
        notes.append("no trials yet (the search may be starting)")
    return Experiment(folder.root, manifest.name or folder.root.rstrip("/").rsplit("/", 1)[-1],
                      manifest, objective, budget, trials, space, notes)


def write_summary(exp: Experiment, *, best_config: str | None, interrupted: bool) -> str:
    """summary.json: every trial's record and the best one, for readers after the search."""
    top = exp.best()
    summary = {
        "experiment": exp.path,
        "metric": exp.objective.metric,
        "mode": exp.objective.mode,
        "interrupted": interrupted,
        "best": None if top is None else {**top.to_json(), "config": best_config},
        "counts": {str(s): exp.count(s) for s in TrialStatus},
        "trials": [t.to_json() for t in sorted(exp.trials, key=lambda t: t.trial_id)],
    }
    return exp.folder.write_text(SUMMARY_FILE, json.dumps(summary, indent=2, default=str))
