"""The experiment folder: one owner for its layout, trial statuses, trial records and ranking.

``gansearch search`` (search/tune.py, the Ray adapter) writes an experiment folder through this
module, and every later command reads it through this module without Ray: review (a search still
running, an interrupted one, or one on s3:// / gs://), export, retrain and resume. Reading relies
on public artefacts only: each trial folder's result.json (one JSON line per report, with Tune's
documented auto-filled keys such as ``done`` and ``checkpoint_dir_name``), params.json,
error.txt, the checkpoint folders, the Optuna study, and the toolkit's own gansearch.json and
summary.json. Ray's private experiment_state-*.json is never read.

Layout (``<storage>/<name>``, a local folder or an s3:// / gs:// / file:// URI)::

    gansearch.json      how the search was started (options, space file, Optuna storage)
    space.yaml          the space file's text; base.yaml the resolved base config
    optuna.db           the Optuna study (optuna-dashboard sqlite:///.../optuna.db)
    trial_<id>/         Ray's trial folder: result.json, params.json, error.txt if it failed,
                        checkpoint_NNNNNN/ (checkpoint.pt, metrics.jsonl, config.yaml),
                        run/ (samples, learning.gif, curves.png), stdout and stderr
    classifier.pt       the reference classifier the driver shipped to every trial (a cache entry)
    summary.json        every trial's record when the search ended, and the best trial
    best_config.yaml    the best trial's full config (gansearch train --config best_config.yaml)

Example::

    exp = open_experiment("runs/quick")          # or s3://bucket/gansearch/quick
    for t in exp.ranked():   # by the best evaluation of each trial, not its last
        print(t.trial_id, t.status.label, t.score, t.best_images, t.last_score)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import yaml

from gan_core.config import Config, from_dict
from gan_core.errors import ConfigError, GansearchError
from search.storage import Folder, is_uri

if TYPE_CHECKING:
    from search.space import Space

STATE_FILE = "gansearch.json"
SPACE_FILE = "space.yaml"
BASE_FILE = "base.yaml"
OPTUNA_FILE = "optuna.db"
SUMMARY_FILE = "summary.json"
BEST_CONFIG_FILE = "best_config.yaml"
CLASSIFIER_FILE = "classifier.pt"  # the reference classifier every trial was scored by (shipped to them)
RESULT_FILE = "result.json"  # Ray Tune: one JSON line per report
PARAMS_FILE = "params.json"  # Ray Tune: the trial's config
ERROR_FILE = "error.txt"  # Ray Tune: one "Failure # N" entry per crash
TRIAL_PREFIX = "trial_"
CHECKPOINT_PREFIX = "checkpoint_"
RUN_SUBDIR = "run"  # the loop's own run directory inside a trial folder
# Files a reported checkpoint carries: enough to resume the loop exactly (samples stay in run/).
CHECKPOINT_FILES = ("checkpoint.pt", "metrics.jsonl", "config.yaml")
POINT = "point"  # PBT trials carry their values under this key
# Keys of a reported result that are bookkeeping, not parts of the score.
NOT_METRICS = frozenset({
    "step", "images_seen", "node_id", "device", "gpu_ids", "trial_seed", "started_at", "reported_at",
    "startup_s", "report_s", "train_eval_s", "timestamp", "checkpoint_dir_name", "should_checkpoint",
    "done", "training_iteration", "trial_id", "date", "time_this_iter_s", "time_total_s", "pid",
    "hostname", "node_ip", "config", "time_since_restore", "iterations_since_restore", "experiment_tag",
    "torch_threads", "classifier_digest", "images_per_s", "g_params",  # the last two: search/pareto.py
})


class TrialDiverged(RuntimeError):
    """A trial whose losses or weights became NaN/inf: recorded as diverged with this reason."""


DIVERGED_NAME = TrialDiverged.__name__  # how a diverged trial is told from a crashed one


class TrialStatus(StrEnum):
    """A trial's fate as the folder tells it (the part Optuna's TrialState plays for a study)."""

    COMPLETED = "completed"  # trained its whole budget
    STOPPED = "stopped"  # stopped early by the scheduler (ASHA) or the search's time budget
    DIVERGED = "diverged"  # NaN/inf: the trial raised TrialDiverged
    FAILED = "failed"  # crashed more often than the search's --max-failures allows
    # Running, waiting, or cut off by an interrupted driver: the files cannot tell these apart.
    UNFINISHED = "unfinished"

    @property
    def label(self) -> str:
        return "stopped early" if self is TrialStatus.STOPPED else self.value

    @property
    def finished(self) -> bool:
        """Trained as far as the search let it: such a trial may be the best."""
        return self in (TrialStatus.COMPLETED, TrialStatus.STOPPED)


# ----------------------------------------------------------------------------- where things go


def experiment_path(storage: str | None, name: str) -> str:
    """``<storage>/<name>``: an absolute local path, or a URI."""
    root = storage or "runs"
    if is_uri(root):
        return root.rstrip("/") + "/" + name
    return str(Path(root).expanduser().resolve() / name)


# ----------------------------------------------------------------------------- small rules


def finite(v: Any) -> TypeGuard[float]:
    """A real number that is not NaN or inf (bools are not scores)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def error_reason(text: str) -> str:
    """The last ``Type: message`` line of a Ray error trace, without the module path."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ": " in ln and not ln.startswith(("File ", "^", "~", "Failure #")):
            head, msg = ln.split(": ", 1)
            if "." in head and " " not in head:
                head = head.rsplit(".", 1)[-1]
            return f"{head}: {msg}"
    return lines[-1] if lines else "unknown error"


def failures(error: str) -> int:
    """How many times the trial crashed: Ray appends one ``Failure # N`` entry per crash."""
    return len(re.findall(r"^Failure # \d+", error, flags=re.M)) or (1 if error.strip() else 0)


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


def derive_status(*, images: int, budget: int | None, done: bool = False, error: str = "",
                  max_failures: int = 0, ray_status: str | None = None,
                  summary: dict[str, Any] | None = None) -> tuple[TrialStatus, str]:
    """A trial's status and the reason, from what its folder says.

    ``error`` is error.txt (a crash is final once it happened more than ``max_failures`` times,
    Ray's retry rule); ``done`` is the last report's ``done`` (Tune sets it when the scheduler
    stops a trial); ``summary`` is the trial's entry in summary.json, which knows how trials ended
    that the other files cannot tell (the search's time budget). ``ray_status`` is Ray's view,
    passed only by the writer at the end of a search."""
    of = f" of {budget}" if budget else ""
    # Ray retries a crashed trial max_failures times (forever when negative) before giving up.
    crashed = bool(error) and max_failures >= 0 and failures(error) > max_failures
    if ray_status == "ERROR" or (ray_status is None and crashed and not (budget and images >= budget)):
        reason = error_reason(error) if error else "error (no trace saved)"
        if DIVERGED_NAME in reason:
            return TrialStatus.DIVERGED, reason
        return TrialStatus.FAILED, reason
    if budget and images >= budget:
        return TrialStatus.COMPLETED, ""
    if ray_status == "TERMINATED" or (ray_status is None and done):
        if budget is None:  # no space file: the budget is unknown, so is "early"
            return TrialStatus.COMPLETED, ""
        return TrialStatus.STOPPED, f"at {images}{of} images"
    if ray_status is None and summary and summary.get("status") in set(TrialStatus):
        return TrialStatus(summary["status"]), str(summary.get("reason") or "")
    if ray_status is not None:
        return TrialStatus.UNFINISHED, f"{ray_status.lower()} when the search ended" + \
            (f", at {images}{of} images" if images else "")
    if images:
        return TrialStatus.UNFINISHED, f"running or interrupted at {images}{of} images"
    return TrialStatus.UNFINISHED, "no evaluation reported yet (running, or interrupted before the first)"



# ----------------------------------------------------------------------------- trial records


@dataclass
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
    config: Config | None = field(default=None, repr=False)  # what it trained, when known
    error: str = field(default="", repr=False)  # error.txt
    classifier: str | None = None  # digest of the reference classifier that scored the best point

    SUMMARY_KEYS = ("trial_id", "status", "reason", "score", "images_seen", "params", "path",
                    "checkpoint", "node_id", "metrics", "last_score", "best_images", "last_checkpoint",
                    "classifier")

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


def read_trial(folder: Folder, name: str, *, metric: str, mode: str, budget: int | None, max_failures: int = 0,
               ray_status: str | None = None, summary: dict[str, Any] | None = None,
               space: Space | None = None, with_config: bool = False) -> TrialRecord:
    """Read one trial folder (``name`` inside ``folder``)."""
    names = folder.entries(name)
    results = parse_results(folder.read_text(f"{name}/{RESULT_FILE}") or "")
    last = results[-1] if results else {}
    raw = read_json_object(folder, f"{name}/{PARAMS_FILE}")
    images = int(last.get("images_seen", 0) or 0)
    error = (folder.read_text(f"{name}/{ERROR_FILE}") or "") if ERROR_FILE in names else ""
    status, reason = derive_status(images=images, budget=budget, done=bool(last.get("done")), error=error,
                                   max_failures=max_failures, ray_status=ray_status, summary=summary)
    checkpoints = sorted(n for n, is_dir in names.items() if is_dir and n.startswith(CHECKPOINT_PREFIX))
    named = last.get("checkpoint_dir_name")
    latest = named if named in checkpoints else (checkpoints[-1] if checkpoints else None)
    diverged = status is TrialStatus.DIVERGED
    index = best_report(results, metric, mode)
    at_best = results[index] if index is not None else {}
    # The values the trial had at its best point (what it is ranked by and exported with): a PBT
    # member's change when it takes another's checkpoint, and params.json holds its last ones.
    reported = at_best.get("config") if isinstance(at_best.get("config"), dict) else None
    params = trial_params(reported or (raw if isinstance(raw, dict) else (last.get("config") or {})))
    ckpt = at_best.get("checkpoint_dir_name") if at_best.get("checkpoint_dir_name") in checkpoints else None
    score, last_score = at_best.get(metric), last.get(metric)
    started = last.get("started_at") or (results[0].get("timestamp") if results else None)
    record = TrialRecord(
        trial_id=str(last.get("trial_id") or name.removeprefix(TRIAL_PREFIX)),
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
        record.config = _trial_config(folder, name, checkpoints, ckpt or latest, params, space)
    return record


def best_report(results: list[dict[str, Any]], metric: str, mode: str) -> int | None:
    """The index of the report with the best finite ``metric`` (the earliest of equals)."""
    sign = 1.0 if mode == "min" else -1.0
    scored = [(sign * float(r[metric]), i) for i, r in enumerate(results) if finite(r.get(metric))]
    return min(scored)[1] if scored else None


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


def ranked(trials: list[TrialRecord], mode: str) -> list[TrialRecord]:
    """Trials with a finite score, by their best points, best first; ties go to the trial that
    trained longer, then to the lower id."""
    sign = 1.0 if mode == "min" else -1.0
    ok = [t for t in trials if t.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.UNFINISHED)
          and finite(t.score)]
    return sorted(ok, key=lambda t: (sign * float(t.score), -t.images_seen, t.trial_id))  # type: ignore[arg-type]


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


def best(trials: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The best trial that finished (completed or stopped early) with a finite score, if any."""
    return next((t for t in ranked(trials, mode) if t.status.finished), None)


@dataclass
class BestPoint:
    """Where an exported config came from: the trial, its best point and that point's checkpoint.

    ``review --export`` writes it as comments at the top of the config file (the config itself
    stays a plain config), and ``retrain`` reports it next to the retrained score."""

    experiment: str
    trial: str
    metric: str
    mode: str
    score: float | None  # the objective at the best point
    images: int | None  # images seen at the best point
    last_score: float | None
    images_seen: int  # images the trial trained
    checkpoint: str | None  # the best point's checkpoint folder

    MARK = "# gansearch best point: "

    @classmethod
    def of(cls, exp: Experiment, t: TrialRecord) -> BestPoint:
        return cls(exp.path, t.trial_id, exp.metric, exp.mode, t.score, t.best_images, t.last_score,
                   t.images_seen, t.checkpoint)

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
                    return cls(**json.loads(line[len(cls.MARK):]))
                except (TypeError, ValueError):
                    return None
            if line.strip() and not line.startswith("#"):
                return None
        return None


# ----------------------------------------------------------------------------- the experiment


@dataclass
class Experiment:
    """An experiment folder as read: how the search was started, its space, and every trial."""

    path: str
    name: str
    state: dict[str, Any]
    metric: str
    mode: str
    budget_images: int | None
    trials: list[TrialRecord]
    space: Any = None  # search.space.Space, when space.yaml could be read
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Folder:
        return Folder(self.path)

    @property
    def sign(self) -> float:
        return 1.0 if self.mode == "min" else -1.0

    def ranked(self) -> list[TrialRecord]:
        check_one_classifier(self.trials, self.path)
        return ranked(self.trials, self.mode)

    def best(self) -> TrialRecord | None:
        check_one_classifier(self.trials, self.path)
        return best(self.trials, self.mode)

    def trial(self, trial_id: str) -> TrialRecord:
        want = trial_id.removeprefix(TRIAL_PREFIX)
        for t in self.trials:
            if t.trial_id == want:
                return t
        ids = ", ".join(t.trial_id for t in self.trials[:12]) + (" ..." if len(self.trials) > 12 else "")
        raise GansearchError(f"--trial: {trial_id!r} is not a trial of {self.path} (trials: {ids or 'none'})")

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)


def read_state(folder: Folder) -> dict[str, Any]:
    """gansearch.json; a folder that is not an experiment is a one-line GansearchError."""
    where = folder.root
    if not folder.is_dir():
        raise GansearchError(f"{where}: no such experiment folder")
    text = folder.read_text(STATE_FILE)
    if text is None:
        names = folder.entries()
        if PARAMS_FILE in names or RESULT_FILE in names:
            parent = where.rstrip("/").rsplit("/", 1)[0] if is_uri(where) else str(Path(where).parent)
            raise GansearchError(f"{where}: this is one trial's folder; review its experiment: {parent}")
        raise GansearchError(f"{where}: not a gansearch experiment (no {STATE_FILE}); give the folder "
                             "`gansearch search` printed (e.g. runs/quick)")
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise GansearchError(f"{where}/{STATE_FILE}: not valid JSON (is the copy complete?)")
    bad = [k for k, ok in (("metric", str), ("mode", ("min", "max")), ("scheduler", str), ("options", dict))
           if k in state and not (state[k] in ok if isinstance(ok, tuple) else isinstance(state[k], ok))]
    if bad:
        raise GansearchError(f"{where}/{STATE_FILE}: {bad[0]}: {state[bad[0]]!r} is not valid (mode: min or max)")
    return state


def read_json_object(folder: Folder, rel: str) -> dict[str, Any] | None:
    """params.json, summary.json: None when absent; a one-line error when not a JSON object."""
    try:
        data = None if (text := folder.read_text(rel)) is None else json.loads(text)
    except ValueError as exc:
        raise GansearchError(f"{folder.root}/{rel}: not valid JSON ({exc}); is the copy complete?") from None
    if data is not None and not isinstance(data, dict):
        raise GansearchError(f"{folder.root}/{rel}: expected a JSON object, got {type(data).__name__}")
    return data


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


def trial_folders(folder: Folder) -> list[str]:
    """The names of the trial folders (those holding Ray's params.json or result.json)."""
    out = []
    for name, is_dir in sorted(folder.entries().items()):
        if is_dir:
            inside = folder.entries(name)
            if PARAMS_FILE in inside or RESULT_FILE in inside:
                out.append(name)
    return out


def open_experiment(path: str | Path, *, ray_status: dict[str, str] | None = None,
                    with_configs: bool = True) -> Experiment:
    """Read an experiment folder written by ``gansearch search`` (a path or a URI).

    ``ray_status`` maps trial ids to Ray's status; only the writer at the end of a search has
    it. Trials come in the order they started."""
    folder = Folder(path)
    state = read_state(folder)
    space, note = _try_space(folder)
    notes = [note] if note else []
    metric = str(state.get("metric") or (space.objective.metric if space else "score"))
    mode = str(state.get("mode") or (space.objective.mode if space else "min"))
    budget = space.budget.images if space is not None else None
    opts = state.get("options") or {}
    # Without the option recorded, any crash counts as final (as a search without retries).
    max_failures = int(opts.get("max_failures", 0) if isinstance(opts, dict) else 0)
    summary = read_json_object(folder, SUMMARY_FILE) or {}
    rows = summary.get("trials", []) if isinstance(summary, dict) else []
    by_id = {str(r.get("trial_id")): r for r in rows if isinstance(r, dict)}
    names = trial_folders(folder)
    known = {n.removeprefix(TRIAL_PREFIX) for n in names}
    names += [TRIAL_PREFIX + tid for tid in sorted(ray_status or {}) if tid not in known]  # never started
    trials = []
    for name in names:
        tid = name.removeprefix(TRIAL_PREFIX)
        trials.append(read_trial(folder, name, metric=metric, mode=mode, budget=budget, max_failures=max_failures,
                                 ray_status=(ray_status or {}).get(tid), summary=by_id.get(tid),
                                 space=space, with_config=with_configs))
    trials.sort(key=lambda t: (t.started, t.trial_id))
    if not trials:
        notes.append("no trials yet (the search may be starting)")
    return Experiment(folder.root, str(state.get("name") or folder.root.rstrip("/").rsplit("/", 1)[-1]),
                      state, metric, mode, budget, trials, space, notes)


# ----------------------------------------------------------------------------- what the search writes


def write_summary(exp: Experiment, *, best_config: str | None, interrupted: bool) -> str:
    """summary.json: every trial's record and the best one, for readers after the search."""
    top = exp.best()
    summary = {
        "experiment": exp.path,
        "metric": exp.metric,
        "mode": exp.mode,
        "interrupted": interrupted,
        "best": None if top is None else {**top.to_json(), "config": best_config},
        "counts": {str(s): exp.count(s) for s in TrialStatus},
        "trials": [t.to_json() for t in sorted(exp.trials, key=lambda t: t.trial_id)],
    }
    return exp.folder.write_text(SUMMARY_FILE, json.dumps(summary, indent=2, default=str))
