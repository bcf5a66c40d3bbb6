"""A trial as read from its folder: :class:`TrialRecord`, the same for the writer (summary.json)
and every reader, and :class:`BestPoint`, where an exported config came from.

Reading relies on public artefacts only: each trial folder's result.json (one JSON line per
report, with Tune's documented auto-filled keys such as ``done`` and ``checkpoint_dir_name``),
params.json, error.txt and the checkpoint folders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gan_core.config import Config, from_dict
from gan_core.errors import ConfigError, GansearchError
from search.experiment.layout import (
    CHECKPOINT_FILES,
    CHECKPOINT_PREFIX,
    ERROR_FILE,
    PARAMS_FILE,
    RESULT_FILE,
    RUN_SUBDIR,
    trial_id_of,
)
from search.experiment.status import DIVERGED_NAME, DriverView, TrialStatus, derive_status
from search.objective import Direction, Objective, finite
from search.storage import Folder, is_uri

if TYPE_CHECKING:
    from search.experiment.reading import Experiment
    from search.space import Space

POINT = "point"  # PBT trials carry their values under this key
# Keys of a reported result that are bookkeeping, not parts of the score.
NOT_METRICS = frozenset({
    "step", "images_seen", "node_id", "device", "gpu_ids", "trial_seed", "started_at", "reported_at",
    "startup_s", "report_s", "train_eval_s", "timestamp", "checkpoint_dir_name", "should_checkpoint",
    "done", "training_iteration", "trial_id", "date", "time_this_iter_s", "time_total_s", "pid",
    "hostname", "node_ip", "config", "time_since_restore", "iterations_since_restore", "experiment_tag",
    "torch_threads", "classifier_digest", "images_per_s", "g_params",  # the last two: search/pareto.py
})


def parse_results(text: str) -> list[dict[str, Any]]:
    """result.json: one JSON object per line; a line cut by a crash (or a running search) ends it."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            break
        if isinstance(row, dict):
            out.append(row)
    return out


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values: the config itself, or its PBT member under ``point``."""
    return dict(config[POINT]) if isinstance(config.get(POINT), dict) else dict(config)


def best_report(results: list[dict[str, Any]], objective: Objective) -> int | None:
    """The index of the report with the best finite objective (the earliest of equals)."""
    return objective.best_index([r.get(objective.metric) for r in results])


@dataclass(eq=False)  # a record is one trial: `t in ranked` compares identities, not every report
class TrialRecord:
    """One trial of a search, the same for the writer (summary.json) and every reader.

    A GAN's score swings and may collapse late, so a trial is ranked by its best evaluation (the
    best point: ``score``, reached after ``best_images`` images, its checkpoint kept on disk by
    the search), shown next to its last one (``last_score`` after ``images_seen`` images, the
    checkpoint a resumed trial continues from)."""

    trial_id: str
    status: TrialStatus
    reason: str
    score: float | None  # the objective at the best point (None when diverged)
    images_seen: int  # images trained when the last report was made
    params: dict[str, Any]  # the sampled values (at the best point: a PBT member's change over its life)
    path: str  # the trial folder
    checkpoint: str | None  # the best point's checkpoint folder (None if it is not on disk)
    node_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # the last report's numbers and strings
    last_score: float | None = None  # the objective in the last report
    best_images: int | None = None  # images seen at the best point
    last_checkpoint: str | None = None  # the newest reported checkpoint folder
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)  # every report
    best_index: int | None = field(default=None, repr=False)  # the best point's report in results
    started: float = 0.0
    error: str = field(default="", repr=False)  # error.txt
    classifier: str | None = None  # digest of the reference classifier that scored the best point
    # Reads what it trained (``config``) on first use: review reads thousands of trials and
    # needs the configs of a few (parsing one config.yaml costs more than reading the trial).
    load_config: Callable[[], Config | None] | None = field(default=None, repr=False, compare=False)

    SUMMARY_KEYS = ("trial_id", "status", "reason", "score", "images_seen", "params", "path",
                    "checkpoint", "node_id", "metrics", "last_score", "best_images", "last_checkpoint",
                    "classifier")

    @cached_property
    def config(self) -> Config | None:
        """What the trial trained, when known (read from its folder on first use)."""
        return self.load_config() if self.load_config is not None else None

    @property
    def last(self) -> dict[str, Any]:
        return self.results[-1] if self.results else {}

    @property
    def best_result(self) -> dict[str, Any]:
        """The report of the best point (the last one when none has a finite score)."""
        return self.results[self.best_index] if self.best_index is not None else self.last

    @property
    def why(self) -> str:
        """The reason, without an exception name the status already says (diverged)."""
        if self.status is TrialStatus.DIVERGED and self.reason.startswith(f"{DIVERGED_NAME}: "):
            return self.reason[len(DIVERGED_NAME) + 2:]
        return self.reason

    def to_json(self) -> dict[str, Any]:
        """The record as summary.json keeps it."""
        out = {k: getattr(self, k) for k in self.SUMMARY_KEYS}
        out["status"] = str(self.status)
        return out


def read_json_object(folder: Folder, rel: str) -> dict[str, Any] | None:
    """params.json, summary.json: None when absent; a one-line error when not a JSON object."""
    try:
        data = None if (text := folder.read_text(rel)) is None else json.loads(text)
    except ValueError as exc:
        raise GansearchError(f"{folder.root}/{rel}: not valid JSON ({exc}); is the copy complete?") from None
    if data is not None and not isinstance(data, dict):
        raise GansearchError(f"{folder.root}/{rel}: expected a JSON object, got {type(data).__name__}")
    return data


def read_trial(folder: Folder, name: str, *, objective: Objective, budget: int | None, max_failures: int = 0,
               driver: DriverView | None = None, summary: dict[str, Any] | None = None,
               space: Space | None = None, with_config: bool = False) -> TrialRecord:
    """Read one trial folder (``name`` inside ``folder``)."""
    names = folder.entries(name)
    results = parse_results(folder.read_text(f"{name}/{RESULT_FILE}") or "")
    last = results[-1] if results else {}
    images = int(last.get("images_seen", 0) or 0)
    error = (folder.read_text(f"{name}/{ERROR_FILE}") or "") if ERROR_FILE in names else ""
    status, reason = derive_status(images=images, budget=budget, done=bool(last.get("done")), error=error,
                                   max_failures=max_failures, driver=driver, summary=summary)
    checkpoints = sorted(n for n, is_dir in names.items() if is_dir and n.startswith(CHECKPOINT_PREFIX))
    named = last.get("checkpoint_dir_name")
    latest = named if named in checkpoints else (checkpoints[-1] if checkpoints else None)
    diverged = status is TrialStatus.DIVERGED
    index = best_report(results, objective)
    at_best = results[index] if index is not None else {}
    # The values the trial had at its best point (what it is ranked by and exported with): a PBT
    # member's change when it takes another's checkpoint, and params.json holds its last ones.
    reported = at_best.get("config") if isinstance(at_best.get("config"), dict) else None
    if not reported:  # no scored report (each report carries the config): Ray's params.json
        raw = read_json_object(folder, f"{name}/{PARAMS_FILE}")
        reported = raw if isinstance(raw, dict) else (last.get("config") or {})
    params = trial_params(reported)
    ckpt = at_best.get("checkpoint_dir_name") if at_best.get("checkpoint_dir_name") in checkpoints else None
    score, last_score = at_best.get(objective.metric), last.get(objective.metric)
    started = last.get("started_at") or (results[0].get("timestamp") if results else None)
    record = TrialRecord(
        trial_id=str(last.get("trial_id") or trial_id_of(name)),
        status=status,
        reason=reason,
        score=float(score) if finite(score) and not diverged else None,
        images_seen=images,
        params=params,
        path=folder.locate(name),
        checkpoint=folder.locate(f"{name}/{ckpt}") if ckpt else None,
        node_id=last.get("node_id"),
        metrics={k: v for k, v in last.items() if finite(v) or isinstance(v, str)},
        last_score=float(last_score) if finite(last_score) and not diverged else None,
        best_images=int(at_best.get("images_seen", 0) or 0) if at_best and not diverged else None,
        last_checkpoint=folder.locate(f"{name}/{latest}") if latest else None,
        results=results,
        best_index=index,
        started=float(started) if finite(started) else 0.0,
        error=error,
        classifier=(at_best or last).get("classifier_digest"),
    )
    if with_config:
        record.load_config = lambda: _trial_config(folder, name, checkpoints, ckpt or latest, params, space)
    return record


def _trial_config(folder: Folder, name: str, checkpoints: list[str], preferred: str | None,
                  params: dict[str, Any], space: Space | None) -> Config | None:
    """What the trial trained: a checkpoint's config.yaml (the preferred one first, then the
    newest), its run folder's, else the space applied to its sampled values."""
    order = ([preferred] if preferred else []) + [c for c in reversed(checkpoints) if c != preferred]
    for rel in [f"{name}/{c}/config.yaml" for c in order] + [f"{name}/{RUN_SUBDIR}/config.yaml"]:
        text = folder.read_text(rel)
        if text is None:
            continue
        try:
            return from_dict(yaml.safe_load(text) or {})
        except (ConfigError, yaml.YAMLError):
            continue
    if space is not None and params:
        try:
            return space.config_for(params)
        except GansearchError:
            return None
    return None


def local_checkpoint(t: TrialRecord, tmp: Path) -> Path | None:
    """The trial's checkpoint.pt on this machine: the best point's, else the newest reported one,
    else its run folder's (a trial that has not reported yet); fetched into ``tmp`` when the
    experiment is remote."""
    name = CHECKPOINT_FILES[0]
    for where, rel in ((t.checkpoint, name), (t.last_checkpoint, name), (t.path, f"{RUN_SUBDIR}/{name}")):
        if not where:
            continue
        if not is_uri(where):
            if Path(where, rel).is_file():
                return Path(where, rel)
            continue
        dest = tmp / f"{t.trial_id}-{abs(hash(where))}.pt"
        if Folder(where).download(rel, dest) is not None:
            return dest
    return None


def ranked(trials: list[TrialRecord], objective: Objective) -> list[TrialRecord]:
    """Trials with a finite score, by their best points, best first; ties go to the trial that
    trained longer, then to the lower id."""
    ok = [t for t in trials if t.status.scored and finite(t.score)]
    return sorted(ok, key=lambda t: (objective.key(t.score), -t.images_seen, t.trial_id))  # type: ignore[arg-type]


def best(trials: list[TrialRecord], objective: Objective) -> TrialRecord | None:
    """The best trial that finished (completed or stopped early) with a finite score, if any."""
    return next((t for t in ranked(trials, objective) if t.status.finished), None)


def check_one_classifier(trials: list[TrialRecord], where: str) -> None:
    """GansearchError unless all scored trials (with a recorded digest) had one reference
    classifier: scores of different classifiers are on different scales, not comparable."""
    counts: dict[str, int] = {}
    for t in trials:
        if t.classifier and finite(t.score):
            counts[t.classifier] = counts.get(t.classifier, 0) + 1
    if len(counts) > 1:
        listed = ", ".join(f"{d} ({n} trials)" for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        raise GansearchError(f"{where}: trials were scored by different reference classifiers ({listed}); "
                             "their scores are not comparable, so they are not ranked")


@dataclass(frozen=True)
class BestPoint:
    """Where an exported config came from: the trial, its best point and that point's checkpoint.

    ``review --export`` writes it as comments at the top of the config file (the config itself
    stays a plain config), and ``retrain`` reports it next to the retrained score."""

    experiment: str
    trial: str
    metric: str
    mode: Direction
    score: float | None  # the objective at the best point
    images: int | None  # images seen at the best point
    last_score: float | None
    images_seen: int  # images the trial trained
    checkpoint: str | None  # the best point's checkpoint folder

    MARK = "# gansearch best point: "

    @classmethod
    def of(cls, exp: Experiment, t: TrialRecord) -> BestPoint:
        return cls(exp.path, t.trial_id, exp.objective.metric, exp.objective.direction, t.score, t.best_images,
                   t.last_score, t.images_seen, t.checkpoint)

    def comment(self) -> str:
        """Comment lines for the top of a config file: a sentence, then the same as JSON."""
        return (f"# exported from trial {self.trial} of {self.experiment}\n"
                f"# its best point: {self.metric} {self.score} after {self.images} images "
                f"(last: {self.last_score} after {self.images_seen}); checkpoint {self.checkpoint}\n"
                f"{self.MARK}{json.dumps(self.__dict__)}\n")

    @classmethod
    def from_config_text(cls, text: str) -> BestPoint | None:
        """The point a config file's comments record; None for a config not exported by review."""
        for line in text.splitlines():
            if line.startswith(cls.MARK):
                try:
                    data = json.loads(line[len(cls.MARK):])
                    return cls(**{**data, "mode": Direction(data.get("mode"))})
                except (TypeError, ValueError):
                    return None
            if line.strip() and not line.startswith("#"):
                return None
        return None
