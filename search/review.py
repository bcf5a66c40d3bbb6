"""Review a search: leaderboard, export of a trial's config, hyperparameter importance, plots, and
the "Are GANs Created Equal?" study (Lucic et al., 2018) of the best score against the number of
trials for each architecture and loss.

Everything is read from the files in the experiment folder (see search/tune.py for the layout),
never through Ray: a search that is still running, one that was interrupted, or one copied from a
cluster's storage reads the same way, and nothing in the folder is modified (the Optuna database
is copied to a temporary file before it is opened).

Example::

    exp = load_experiment("runs/quick")
    print(format_leaderboard(exp))
    export_config(exp, "best.yaml")                # the winner's complete config, for retrain
    write_plots(exp, "runs/quick/plots", top=5)
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan_core.config import Config, flatten, from_dict, load_config, save_config, to_dict
from gan_core.errors import ConfigError, GansearchError

STATE_FILE = "gansearch.json"  # the names search/tune.py writes (it imports ray, so not imported here)
SPACE_FILE = "space.yaml"
BASE_FILE = "base.yaml"
OPTUNA_FILE = "optuna.db"
SUMMARY_FILE = "summary.json"
STATUSES = ("completed", "stopped", "diverged", "failed", "unfinished")
MIN_IMPORTANCE_TRIALS = 5
# Keys of a reported result that are bookkeeping, not parts of the score.
NOT_METRICS = {
    "step", "images_seen", "node_id", "device", "gpu_ids", "trial_seed", "started_at", "reported_at",
    "startup_s", "report_s", "train_eval_s", "timestamp", "checkpoint_dir_name", "should_checkpoint",
    "done", "training_iteration", "trial_id", "date", "time_this_iter_s", "time_total_s", "pid",
    "hostname", "node_ip", "config", "time_since_restore", "iterations_since_restore", "experiment_tag",
    "torch_threads",
}


# ----------------------------------------------------------------------------- reading


@dataclass
class SearchedParam:
    """One searched hyperparameter: a config key (conditional branches of one key are merged)."""

    key: str
    kind: str  # float | int | choice
    log: bool = False
    choices: tuple[Any, ...] = ()
    names: tuple[str, ...] = ()  # the Optuna names (one per branch)
    low: float | None = None
    high: float | None = None

    @property
    def short(self) -> str:
        return short_key(self.key)


@dataclass
class Trial:
    trial_id: str
    path: Path
    status: str  # completed | stopped | diverged | failed | unfinished
    reason: str
    score: float | None  # the objective in the last report
    images_seen: int
    params: dict[str, Any]
    results: list[dict[str, Any]]
    started: float
    config: Config | None = None
    error: str = ""

    @property
    def last(self) -> dict[str, Any]:
        return self.results[-1] if self.results else {}

    def metrics(self, objective: str) -> dict[str, float]:
        """The parts of the score in the last report (cfd_2k, cis_2k, ...), objective first: the
        registered metrics (protocol-named), else every number that is not bookkeeping."""
        numbers = {k: float(v) for k, v in self.last.items() if k != "score" and _finite(v)}
        names = set(_metric_names())
        parts = {k: v for k, v in numbers.items() if k.rsplit("_", 1)[0] in names or k in names}
        if not parts:
            parts = {k: v for k, v in numbers.items() if k not in NOT_METRICS}
        return dict(sorted(parts.items(), key=lambda kv: (kv[0] != objective, kv[0])))

    def checkpoint(self) -> Path | None:
        """The newest checkpoint.pt of the trial: the reported one the score belongs to, else the
        newest checkpoint folder, else the trial's run directory."""
        named = self.last.get("checkpoint_dir_name")
        if named and (self.path / named / "checkpoint.pt").exists():
            return self.path / named / "checkpoint.pt"
        found = sorted(self.path.glob("checkpoint_*/checkpoint.pt"))
        if found:
            return found[-1]
        run = self.path / "run" / "checkpoint.pt"
        return run if run.exists() else None


@dataclass
class Experiment:
    path: Path
    name: str
    state: dict[str, Any]
    metric: str
    mode: str
    budget_images: int | None
    searched: list[SearchedParam]
    trials: list[Trial]
    space: Any = None  # search.space.Space, when space.yaml could be read
    notes: list[str] = field(default_factory=list)

    @property
    def sign(self) -> float:
        return 1.0 if self.mode == "min" else -1.0

    def ranked(self) -> list[Trial]:
        """Trials with a finite score, best first (as search/tune.py's pick_best orders them)."""
        ok = [t for t in self.trials if t.status in ("completed", "stopped", "unfinished") and _finite(t.score)]
        return sorted(ok, key=lambda t: (self.sign * float(t.score), -t.images_seen, t.trial_id))

    def best(self) -> Trial | None:
        done = [t for t in self.ranked() if t.status in ("completed", "stopped")]
        return done[0] if done else None

    def trial(self, trial_id: str) -> Trial:
        want = trial_id.removeprefix("trial_")
        for t in self.trials:
            if t.trial_id == want:
                return t
        ids = ", ".join(t.trial_id for t in self.trials[:12]) + (" ..." if len(self.trials) > 12 else "")
        raise GansearchError(f"--trial: {trial_id!r} is not a trial of {self.path} (trials: {ids or 'none'})")

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)


def _metric_names() -> list[str]:
    try:
        from gan_core.metrics.registry import metric_names
    except ImportError:  # pragma: no cover - the metrics package is part of the toolkit
        return []
    return metric_names()


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def short_key(key: str) -> str:
    """``optim.d.lr`` -> ``d.lr``, ``model.arch`` -> ``arch``, ``loss.name`` -> ``loss``."""
    if key in ("loss.name", "data.name"):
        return key.split(".")[0]
    for prefix in ("model.", "train.", "optim."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_results(path: Path) -> list[dict[str, Any]]:
    """result.json: one JSON object per line; a line cut by a crash (or a running search) ends it."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
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


def _ray_states(exp: Path) -> dict[str, dict[str, Any]]:
    """Trial status and run metadata from Ray's newest experiment_state-*.json (plain JSON whose
    trial entries are themselves JSON strings); {} when there is none or it cannot be read."""
    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:  # a running search replaces its state file now and then
            return -1.0

    files = sorted(exp.glob("experiment_state-*.json"), key=lambda p: (mtime(p), p.name))
    data = None
    for f in reversed(files):  # the newest one that reads
        data = _read_json(f)
        if isinstance(data, dict):
            break
    out: dict[str, dict[str, Any]] = {}
    for entry in (data or {}).get("trial_data", []) if isinstance(data, dict) else []:
        try:
            trial = json.loads(entry[0])
            meta = json.loads(entry[1]) if len(entry) > 1 and entry[1] else {}
        except (TypeError, ValueError, IndexError):
            continue
        if isinstance(trial, dict) and "trial_id" in trial:
            out[str(trial["trial_id"])] = {"status": trial.get("status"), "config": trial.get("config") or {},
                                           "dir": trial.get("relative_logdir"), **(meta or {})}
    return out


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


def _load_space(exp: Path) -> tuple[Any, str | None]:
    """The search space saved in the experiment (parsed without touching Ray), or a note why not."""
    text_path, base_path = exp / SPACE_FILE, exp / BASE_FILE
    if not text_path.exists():
        return None, f"no {SPACE_FILE} in the experiment: searched parameters guessed from the trials"
    from search.space import parse_space

    try:
        base = None
        if base_path.exists():
            base = from_dict(yaml.safe_load(base_path.read_text()) or {})
        return parse_space(text_path.read_text(), str(text_path), base_config=base, dry_run=0), None
    except (GansearchError, yaml.YAMLError, OSError) as exc:
        return None, f"{text_path}: could not be read ({str(exc).splitlines()[0]}); searched parameters guessed"


def _searched(space: Any) -> list[SearchedParam]:
    from search.space import ChoiceParam, FixedParam, FloatParam

    by_key: dict[str, SearchedParam] = {}

    def walk(params: Any) -> None:
        for p in params:
            if isinstance(p, FixedParam):
                continue
            if isinstance(p, ChoiceParam):
                kind, log, choices, low, high = "choice", False, tuple(p.choices), None, None
            else:
                kind, log, choices = ("float" if isinstance(p, FloatParam) else "int"), p.log, ()
                low, high = float(p.low), float(p.high)
            old = by_key.get(p.key)
            if old is None:
                by_key[p.key] = SearchedParam(p.key, kind, log, choices, (p.name,), low, high)
            else:  # the same key in two branches: one column, the union of its ranges
                merged = tuple(dict.fromkeys(old.choices + choices))
                lows = [v for v in (old.low, low) if v is not None]
                highs = [v for v in (old.high, high) if v is not None]
                by_key[p.key] = SearchedParam(p.key, old.kind if old.kind == kind else "choice",
                                              old.log and log, merged, old.names + (p.name,),
                                              min(lows, default=None), max(highs, default=None))
            if isinstance(p, ChoiceParam):
                for _, scope in p.branches:
                    walk(scope)

    walk(space.params)
    return list(by_key.values())


def _guess_searched(trials: list[Trial]) -> list[SearchedParam]:
    """Without the space file: keys whose value differs between trials (except the seed)."""
    values: dict[str, set[str]] = {}
    for t in trials:
        for k, v in t.params.items():
            values.setdefault(k.split("@", 1)[0], set()).add(repr(v))
    out = []
    for key, seen in values.items():
        if len(seen) > 1 and key != "train.seed":
            sample = [t.params[k] for t in trials for k in t.params if k.split("@", 1)[0] == key]
            numeric = all(_finite(v) for v in sample)
            out.append(SearchedParam(key, "float" if numeric else "choice", False,
                                     () if numeric else tuple(dict.fromkeys(sample))))
    return out


def _trial_config(path: Path, params: dict[str, Any], space: Any) -> Config | None:
    """What the trial trained: its newest checkpoint's config.yaml, else the space applied to its
    sampled values."""
    for cand in sorted(path.glob("checkpoint_*/config.yaml"), reverse=True) + [path / "run" / "config.yaml"]:
        if cand.exists():
            try:
                return load_config(cand)
            except ConfigError:
                continue
    if space is not None and params:
        try:
            return space.config_for(params)
        except GansearchError:
            return None
    return None


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment folder written by ``gansearch search``; a folder that is not one is a
    one-line GansearchError."""
    where = str(path)
    if "://" in where:
        raise GansearchError(f"{where}: review reads a local folder; copy the experiment first "
                             "(e.g. `aws s3 sync` or `gsutil -m rsync -r`) and review the copy")
    exp = Path(path).expanduser()
    if not exp.is_dir():
        raise GansearchError(f"{where}: no such experiment folder")
    if not (exp / STATE_FILE).exists():
        if (exp / "params.json").exists() or (exp / "result.json").exists():
            raise GansearchError(f"{where}: this is one trial's folder; review its experiment: {exp.parent}")
        raise GansearchError(f"{where}: not a gansearch experiment (no {STATE_FILE}); give the folder "
                             "`gansearch search` printed (e.g. runs/quick)")
    state = _read_json(exp / STATE_FILE)
    if not isinstance(state, dict):
        raise GansearchError(f"{exp / STATE_FILE}: not valid JSON (is the copy complete?)")
    space, note = _load_space(exp)
    notes = [note] if note else []
    metric = str(state.get("metric") or (space.objective.metric if space else "score"))
    mode = str(state.get("mode") or (space.objective.mode if space else "min"))
    budget = space.budget.images if space is not None else None
    ray_state = _ray_states(exp)
    summary = _read_json(exp / SUMMARY_FILE) or {}
    summary_rows = {str(r.get("trial_id")): r for r in summary.get("trials", []) if isinstance(r, dict)}

    dirs = {d.name.removeprefix("trial_"): d for d in exp.iterdir()
            if d.is_dir() and ((d / "params.json").exists() or (d / "result.json").exists())}
    ids = sorted(set(dirs) | set(ray_state))
    trials = []
    for tid in ids:
        d = dirs.get(tid) or exp / (ray_state[tid].get("dir") or f"trial_{tid}")
        rs = ray_state.get(tid, {})
        results = _read_results(d / "result.json")
        if not results and isinstance(rs.get("last_result"), dict) and rs["last_result"]:
            results = [rs["last_result"]]
        params = _read_json(d / "params.json") or rs.get("config") or (results[-1].get("config") if results else {}) or {}
        last = results[-1] if results else {}
        images = int(last.get("images_seen", 0) or 0)
        error = ""
        if (d / "error.txt").exists():
            error = (d / "error.txt").read_text(errors="replace")
        status, reason = _status(rs.get("status"), error, images, budget, summary_rows.get(tid))
        score = last.get(metric)
        started = rs.get("start_time") or last.get("started_at") or (results[0].get("timestamp") if results else None)
        if not _finite(started):
            started = d.stat().st_mtime if d.exists() else 0.0
        trials.append(Trial(
            trial_id=str(last.get("trial_id") or tid), path=d, status=status, reason=reason,
            score=float(score) if _finite(score) and status != "diverged" else None,
            images_seen=images, params=params, results=results, started=float(started),
            config=_trial_config(d, params, space), error=error,
        ))
    trials.sort(key=lambda t: (t.started, t.trial_id))
    searched = _searched(space) if space is not None else _guess_searched(trials)
    if not trials:
        notes.append("no trials yet (the search may be starting)")
    return Experiment(exp, str(state.get("name") or exp.name), state, metric, mode, budget, searched,
                      trials, space, notes)


def _status(ray_status: str | None, error: str, images: int, budget: int | None,
            summary: dict[str, Any] | None) -> tuple[str, str]:
    """completed, stopped (early), diverged, failed or unfinished, and the reason."""
    of = f" of {budget}" if budget else ""
    if ray_status == "ERROR" or (error and ray_status is None and not (budget and images >= budget)):
        reason = error_reason(error) if error else "error (no trace saved)"
        if "TrialDiverged" in reason:
            return "diverged", reason.split(": ", 1)[-1]
        return "failed", reason
    if budget and images >= budget:
        return "completed", ""
    if ray_status is None and summary and summary.get("status") in STATUSES:
        return str(summary["status"]), str(summary.get("reason") or "")
    if ray_status == "TERMINATED":
        if budget is None:  # no space file: the budget is unknown, so is "early"
            return "completed", ""
        return "stopped", f"at {images}{of} images"
    # Ray's state says RUNNING both for a live search and for one whose driver died.
    if images:
        return "unfinished", f"running or interrupted at {images}{of} images"
    if ray_status == "PENDING":
        return "unfinished", "waiting to start"
    return "unfinished", "no evaluation reported yet (running, or interrupted before the first)"


# ----------------------------------------------------------------------------- values and tables


def param_value(exp: Experiment, t: Trial, p: SearchedParam) -> Any:
    """A trial's value of a searched key: from its config when known, else its sampled values."""
    for name in p.names or (p.key,):
        if name in t.params:
            return t.params[name]
    if p.key in t.params:
        return t.params[p.key]
    if t.config is not None and not p.names:
        return flatten(to_dict(t.config)).get(p.key)
    return None


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4):
            return f"{v:.2e}"
        return f"{v:.4g}"
    return str(v)


def table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    def line(r: list[str]) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()
    return "\n".join([line(header)] + [line(r) for r in rows])


def status_text(t: Trial) -> str:
    return {"stopped": "stopped early", "unfinished": "unfinished"}.get(t.status, t.status)


def format_leaderboard(exp: Experiment, top: int = 10) -> str:
    counts = ", ".join(f"{exp.count(s)} {'stopped early' if s == 'stopped' else s}"
                       for s in STATUSES if exp.count(s))
    sched = exp.state.get("scheduler", "?")
    lines = [f"experiment {exp.path} ({len(exp.trials)} trials: {counts or 'none'}; scheduler {sched}; "
             f"objective {exp.metric}, {'lower' if exp.mode == 'min' else 'higher'} is better"
             + (f"; {exp.budget_images} images per trial)" if exp.budget_images else ")")]
    lines += [f"note: {n}" for n in exp.notes]
    ranked = exp.ranked()
    shown = ranked[: max(top, 10)]
    parts = list(dict.fromkeys(k for t in shown for k in t.metrics(exp.metric)))
    # The part the score is made of (the objective) is the score column itself; say so once.
    same = [k for k in parts if all(t.metrics(exp.metric).get(k) == t.score for t in shown)]
    if exp.metric == "score" and same and shown:
        parts.remove(same[0])
        lines[0] = lines[0][:-1] + f"; score = {same[0]})"
    suffixes = {k.rsplit("_", 1)[-1] for k in parts if "_" in k}
    cut = (len(suffixes) == 1 and all("_" in k for k in parts)
           and suffixes.pop()[:1].isdigit())  # cis_2k, recall_2k: one sample count for all
    header = ["rank", "trial", exp.metric, *[k.rsplit("_", 1)[0] if cut else k for k in parts],
              *[p.short for p in exp.searched], "images", "status"]
    rows = []
    for i, t in enumerate(shown, 1):
        m = t.metrics(exp.metric)
        rows.append([str(i), t.trial_id, fmt(t.score), *[fmt(m.get(k)) for k in parts],
                     *[fmt(param_value(exp, t, p)) for p in exp.searched], str(t.images_seen), status_text(t)])
    unranked = [t for t in exp.trials if t not in ranked]
    for t in unranked:
        rows.append(["-", t.trial_id, "-", *["-" for _ in parts],
                     *[fmt(param_value(exp, t, p)) for p in exp.searched], str(t.images_seen), status_text(t)])
    nums = set(range(len(header))) - {1, len(header) - 1}
    lines.append("")
    lines.append(table(header, rows, right={i for i in nums if i < 3 + len(parts)} | {0, len(header) - 2}))
    if len(ranked) > len(shown):
        lines.append(f"... and {len(ranked) - len(shown)} more ranked trials (--top to see more)")
    why = [t for t in exp.trials if t.status in ("diverged", "failed", "unfinished") or
           (t.status == "stopped" and t in shown)]
    if why:
        lines.append("")
        for t in why:
            lines.append(f"  {t.trial_id} {status_text(t)}: {t.reason}")
    best = exp.best()
    lines.append("")
    if best is None:
        lines.append("no trial has finished with a finite score yet; nothing to export")
    else:
        lines.append(f"best: trial {best.trial_id}, {exp.metric} {fmt(best.score)} after {best.images_seen} images "
                     f"({status_text(best)})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- export


def export_config(exp: Experiment, out: str | Path, trial_id: str | None = None) -> tuple[Trial, Config]:
    """Write the complete config of the best trial (or ``trial_id``) to ``out``, ready for retrain."""
    t = exp.trial(trial_id) if trial_id else exp.best()
    if t is None:
        raise GansearchError(f"--export: no trial of {exp.path} has finished with a finite score yet "
                             "(pick one with --trial ID)")
    cfg = t.config
    if cfg is None:
        raise GansearchError(f"--export: the config of trial {t.trial_id} cannot be rebuilt (no config.yaml "
                             f"in {t.path} and no readable {SPACE_FILE})")
    data = to_dict(cfg)
    data["name"] = f"{exp.name}-{t.trial_id}"
    cfg = from_dict(data)
    save_config(cfg, out)
    return t, cfg


# ----------------------------------------------------------------------------- importance


def _optuna_study(exp: Experiment, tmp: Path) -> Any:
    """The search's Optuna study, opened from a copy of its SQLite file (never the original)."""
    import optuna

    db = exp.path / OPTUNA_FILE
    url = None
    if db.exists():
        copy = tmp / OPTUNA_FILE
        shutil.copy2(db, copy)
        for suffix in ("-wal", "-shm"):
            if Path(str(db) + suffix).exists():
                shutil.copy2(Path(str(db) + suffix), Path(str(copy) + suffix))
        url = f"sqlite:///{copy}"
    elif exp.state.get("optuna_storage") and not str(exp.state["optuna_storage"]).startswith("sqlite"):
        url = str(exp.state["optuna_storage"])  # a shared database named with --optuna-storage
    if url is None:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True) if url.startswith("sqlite") \
        else optuna.storages.RDBStorage(url)
    names = optuna.study.get_all_study_names(storage)
    name = exp.state.get("name") if exp.state.get("name") in names else (names[0] if len(names) == 1 else None)
    if name is None:
        return None
    return optuna.load_study(study_name=name, storage=storage)


def importance(exp: Experiment) -> tuple[list[tuple[str, float]], str]:
    """Rows (parameter, importance) and a one-line note on how they were obtained."""
    import optuna

    with tempfile.TemporaryDirectory(prefix="gansearch-review-") as tmp:
        try:
            study = _optuna_study(exp, Path(tmp))
        except Exception as exc:  # noqa: BLE001 - a broken or locked database must not stop the review
            study = None
            why = f"the Optuna study could not be opened ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        else:
            why = ("no Optuna study (PBT searches have none)" if exp.state.get("scheduler") == "pbt"
                   else f"no Optuna study in {exp.path / OPTUNA_FILE}")
        if study is not None:
            done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.value is not None and math.isfinite(t.value)]
            if len(done) >= MIN_IMPORTANCE_TRIALS:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        imp = optuna.importance.get_param_importances(study)
                except (RuntimeError, ValueError) as exc:
                    why = f"Optuna could not compute importances ({str(exc).splitlines()[0]})"
                else:
                    rows = [(_pretty_name(k), float(v)) for k, v in imp.items()]
                    return rows, (f"Optuna PED-ANOVA importance over {len(done)} completed trials "
                                  "(share of the score's variation; sums to 1)")
            else:
                why = (f"too few completed Optuna trials for importance ({len(done)}, need "
                       f"{MIN_IMPORTANCE_TRIALS})")
    return _correlation_fallback(exp, why)


def _pretty_name(name: str) -> str:
    """``model.g_depth@model.arch=mlp`` -> ``model.g_depth (model.arch=mlp)``."""
    if "@" not in name:
        return name
    key, cond = name.split("@", 1)
    return f"{key} ({cond})"


def _correlation_fallback(exp: Experiment, why: str) -> tuple[list[tuple[str, float]], str]:
    from scipy.stats import spearmanr

    done = [t for t in exp.trials if t.status in ("completed", "stopped") and _finite(t.score)]
    rows = []
    if len(done) >= 3:
        for p in exp.searched:
            pairs = [(param_value(exp, t, p), t.score) for t in done]
            pairs = [(v, s) for v, s in pairs if _finite(v)]
            if len(pairs) >= 3 and len({v for v, _ in pairs}) > 1:
                rho = spearmanr([v for v, _ in pairs], [s for _, s in pairs]).statistic
                if _finite(rho):
                    rows.append((p.key, abs(float(rho))))
        rows.sort(key=lambda r: -r[1])
    if rows:
        return rows, (f"{why}; showing |Spearman rank correlation| of each numeric parameter with "
                      f"{exp.metric} over {len(done)} finished trials instead (a hint, not an importance)")
    return [], f"{why}; not enough finished trials for a fallback either"


def format_importance(rows: list[tuple[str, float]], note: str) -> str:
    lines = ["hyperparameter importance: " + note]
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        lines.append(f"  {k.ljust(width)}  {v:5.3f}  {'#' * int(round(v * 30))}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Lucic et al. 2018


@dataclass
class Group:
    arch: str
    loss: str
    scores: list[float]  # the final scores of the group's trials that count
    left_out: int  # stopped early (when not counted), diverged, failed or unfinished


def best_of_n(scores: list[float], n: int, mode: str = "min") -> tuple[float, float, float]:
    """Expected best score of ``n`` trials drawn at random (with replacement) from ``scores``, with
    the 10 % and 90 % quantiles, exactly from the order statistics (what bootstrapping estimates):
    with the scores sorted best first, P(best of n = s_i) = ((m-i+1)/m)^n - ((m-i)/m)^n."""
    m = len(scores)
    s = sorted(scores, reverse=(mode == "max"))
    probs = [((m - i) / m) ** n - ((m - i - 1) / m) ** n for i in range(m)]
    mean = sum(p * v for p, v in zip(probs, s, strict=True))

    def quantile(q: float) -> float:
        acc = 0.0
        for p, v in zip(probs, s, strict=True):
            acc += p
            if acc >= q - 1e-12:
                return v
        return s[-1]

    return mean, quantile(0.1), quantile(0.9)


def lucic_groups(exp: Experiment, *, include_stopped: bool = False) -> list[Group]:
    """One group per architecture x loss of the space (searched or fixed), with the final scores of
    its completed trials (and of the early-stopped ones with ``include_stopped``)."""
    archs: list[str] = []
    losses: list[str] = []
    for p in exp.searched:
        if p.key == "model.arch":
            archs = [str(c) for c in p.choices]
        if p.key == "loss.name":
            losses = [str(c) for c in p.choices]
    base = exp.space.base_config if exp.space is not None else None
    seen = [(t.config.model.arch, t.config.loss.name) for t in exp.trials if t.config is not None]
    if not archs:
        archs = [base.model.arch] if base else sorted({a for a, _ in seen})
    if not losses:
        losses = [base.loss.name] if base else sorted({b for _, b in seen})
    counted = ("completed", "stopped") if include_stopped else ("completed",)
    groups = []
    for a in archs:
        for lo in losses:
            members = [t for t in exp.trials if t.config is not None
                       and t.config.model.arch == a and t.config.loss.name == lo]
            scores = [float(t.score) for t in members if t.status in counted and _finite(t.score)]
            groups.append(Group(a, lo, scores, len(members) - len(scores)))
    return groups


def _ns(m: int) -> list[int]:
    out, n = [], 1
    while n <= m:
        out.append(n)
        n *= 2
    if out and out[-1] != m:
        out.append(m)
    return out


def format_lucic(exp: Experiment, groups: list[Group], include_stopped: bool = False) -> str:
    which = "completed and early-stopped" if include_stopped else "completed"
    lines = [f"best {exp.metric} against the number of trials (Lucic et al. 2018, \"Are GANs Created "
             f"Equal?\"): expected best of n {which} trials drawn at random, per architecture and loss"]
    m_max = max((len(g.scores) for g in groups), default=0)
    ns = _ns(m_max)
    header = ["arch", "loss", "trials", *[f"n={n}" for n in ns], "best", "left out"]
    rows = []
    for g in groups:
        m = len(g.scores)
        cells = [fmt(best_of_n(g.scores, n, exp.mode)[0]) if n <= m else "" for n in ns]
        best = (min(g.scores) if exp.mode == "min" else max(g.scores)) if m else None
        rows.append([g.arch, g.loss, str(m), *cells, fmt(best) if m else "-", str(g.left_out)])
    lines.append(table(header, rows, right=set(range(2, len(header)))))
    if m_max == 0:
        lines.append(f"(no {which} trials yet" + ("" if include_stopped else
                     "; --include-stopped counts the early-stopped ones at their last score") + ")")
    else:
        lines.append("(left out: trials of the group that did not complete; n=1 is the mean of a random trial)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    from gan_core.io import _atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    _atomic_write_bytes(path, buf.getvalue())
    return path


STATUS_STYLE = {
    "completed": dict(color="tab:blue", marker="o"),
    "stopped": dict(color="tab:orange", marker="v"),
    "unfinished": dict(color="tab:gray", marker="s"),
    "diverged": dict(color="tab:red", marker="x"),
    "failed": dict(color="black", marker="x"),
}


def _ylabel(exp: Experiment) -> str:
    return f"{exp.metric} ({'lower' if exp.mode == 'min' else 'higher'} is better)"


def _maybe_log_y(ax: Any, values: list[float]) -> None:
    v = [x for x in values if _finite(x)]
    if v and min(v) > 0 and max(v) / min(v) > 20:
        ax.set_yscale("log")


def plot_scores(exp: Experiment, path: Path) -> Path:
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    scored = [t for t in exp.trials if _finite(t.score)]
    top = max((t.score for t in scored), default=1.0) if exp.mode == "min" else min((t.score for t in scored), default=0.0)
    for status, style in STATUS_STYLE.items():
        idx = [i for i, t in enumerate(exp.trials) if t.status == status]
        if not idx:
            continue
        xs = [i + 1 for i in idx]
        ys = [exp.trials[i].score if _finite(exp.trials[i].score) else top for i in idx]
        label = {"stopped": "stopped early"}.get(status, status)
        if status in ("diverged", "failed"):
            label += " (no score; drawn at the top)"
        ax.scatter(xs, ys, label=label, **style)
    best = exp.best()
    if best is not None:
        i = exp.trials.index(best) + 1
        ax.scatter([i], [best.score], s=260, facecolors="none", edgecolors="gold", linewidths=2.5,
                   label=f"best: {best.trial_id}")
    _maybe_log_y(ax, [t.score for t in scored])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in the order they started)")
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"{exp.name}: final score of each trial")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_best_vs_time(exp: Experiment, path: Path) -> Path:
    plt = _plt()
    reports = []
    for t in exp.trials:
        for r in t.results:
            when = r.get("reported_at") or r.get("timestamp")
            if _finite(when) and _finite(r.get(exp.metric)):
                reports.append((float(when), float(r[exp.metric])))
    reports.sort()
    start = exp.state.get("created")
    if not _finite(start):
        start = min((t.started for t in exp.trials), default=reports[0][0] if reports else 0.0)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if reports:
        xs = [(w - start) / 60 for w, _ in reports]
        ys = [s for _, s in reports]
        best, run = [], None
        for s in ys:
            run = s if run is None else (min(run, s) if exp.mode == "min" else max(run, s))
            best.append(run)
        ax.scatter(xs, ys, s=12, color="lightgray", label="every evaluation")
        ax.step(xs, best, where="post", color="tab:blue", linewidth=2, label="best so far")
        _maybe_log_y(ax, ys)
    ax.set_xlabel("wall time since the search started (minutes)")
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"{exp.name}: best score so far")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_slice(exp: Experiment, p: SearchedParam, path: Path) -> Path:
    """Final score against one searched parameter (Optuna's slice plot, from the files)."""
    import random

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rng = random.Random(0)
    cats = [str(c) for c in p.choices]
    for status in ("completed", "stopped", "unfinished"):
        pts = [(param_value(exp, t, p), t.score) for t in exp.trials
               if t.status == status and _finite(t.score)]
        pts = [(v, s) for v, s in pts if v is not None]
        if not pts:
            continue
        if p.kind == "choice":
            for v, _ in pts:
                if str(v) not in cats:
                    cats.append(str(v))
            xs = [cats.index(str(v)) + rng.uniform(-0.15, 0.15) for v, _ in pts]
        else:
            xs = [float(v) for v, _ in pts]
        ax.scatter(xs, [s for _, s in pts], label={"stopped": "stopped early"}.get(status, status),
                   alpha=0.8, **STATUS_STYLE[status])
    if p.kind == "choice":
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=20 if max((len(c) for c in cats), default=0) > 8 else 0)
    else:
        from matplotlib.ticker import NullFormatter

        if p.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        if p.low is not None and p.high is not None:  # the searched range, to show its coverage
            pad = (p.high / p.low) ** 0.03 if p.log else 0.03 * (p.high - p.low)
            ax.set_xlim(p.low / pad, p.high * pad) if p.log else ax.set_xlim(p.low - pad, p.high + pad)
    _maybe_log_y(ax, [t.score for t in exp.trials if _finite(t.score)])
    ax.set_xlabel(p.key)
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"slice: {p.key}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_learning_curves(exp: Experiment, top: int, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    values = []
    for rank, t in enumerate(exp.ranked()[:top], 1):
        pts = [(r["images_seen"], r[exp.metric]) for r in t.results
               if _finite(r.get("images_seen")) and _finite(r.get(exp.metric))]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", markersize=3,
                    label=f"#{rank} {t.trial_id} ({status_text(t)})")
            values += [y for _, y in pts]
    _maybe_log_y(ax, values)
    ax.set_xlabel("images seen")
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"{exp.name}: learning curves of the top {top}")
    ax.grid(alpha=0.3)
    if values:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_lucic(exp: Experiment, groups: list[Group], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for g in groups:
        m = len(g.scores)
        if m == 0:
            continue
        ns = list(range(1, m + 1))
        stats = [best_of_n(g.scores, n, exp.mode) for n in ns]
        line = ax.plot(ns, [s[0] for s in stats], marker="o", markersize=3, label=f"{g.arch} / {g.loss} ({m} trials)")
        ax.fill_between(ns, [s[1] for s in stats], [s[2] for s in stats], alpha=0.15, color=line[0].get_color())
        drawn += 1
    if drawn:
        ax.set_xscale("log", base=2)
        ticks = _ns(max(len(g.scores) for g in groups))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(n) for n in ticks])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("number of trials (budget)")
    ax.set_ylabel(f"expected best {exp.metric} ({'lower' if exp.mode == 'min' else 'higher'} is better)")
    ax.set_title("best score against the number of trials (Lucic et al. 2018); band: 10-90 %")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def sample_sheet(exp: Experiment, top: int, path: Path, seed: int = 0) -> Path:
    """One picture: a labelled sample grid from the checkpoint of each of the top trials."""
    import torch
    from PIL import Image

    from gan_core import viz
    from gan_core.checkpoint import generate, load_run
    from search.explore import labelled_grid, scale_for, to_image

    panels = []
    for rank, t in enumerate(exp.ranked()[:top], 1):
        title = f"#{rank} {t.trial_id}  {exp.metric} {fmt(t.score)}"
        ckpt = t.checkpoint()
        if ckpt is None:
            tiles, ncol = [Image.new("RGB", (56, 56), (200, 200, 200))], 1
            title += " (no checkpoint)"
        else:
            try:
                run = load_run(ckpt)
            except GansearchError as exc:
                tiles, ncol = [Image.new("RGB", (56, 56), (200, 200, 200))], 1
                title += f" ({str(exc)[:40]})"
            else:
                G = run.G
                n, ncol = (20, 5) if G.conditional else (16, 4)
                labels = torch.arange(n) % G.num_classes if G.conditional else None
                images = generate(G, n, seed=seed, labels=labels)
                s = scale_for(G.shape[1], 56)
                tiles = [to_image(x, s) for x in images]
        page, _ = labelled_grid(tiles, ncol, title=title, gap=3, margin=8)
        panels.append(page)
    if not panels:
        page, _ = labelled_grid([Image.new("RGB", (56, 56), (200, 200, 200))], 1, title="no ranked trials yet")
        panels = [page]
    per_row = 5
    rows = [viz.hstack(panels[i : i + per_row], gap=10) for i in range(0, len(panels), per_row)]
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows) + 10 * (len(rows) - 1)), (255, 255, 255))
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 10
    viz.save_png(sheet, path)
    return path


def plot_file_name(key: str) -> str:
    return "slice_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in key) + ".png"


def write_plots(exp: Experiment, out_dir: str | Path, *, top: int = 5, include_stopped: bool = False) -> list[Path]:
    """Every review picture into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_scores(exp, out / "scores.png"), plot_best_vs_time(exp, out / "best_vs_time.png")]
    paths += [plot_slice(exp, p, out / plot_file_name(p.key)) for p in exp.searched]
    paths.append(plot_learning_curves(exp, top, out / "learning_curves.png"))
    paths.append(sample_sheet(exp, top, out / "top_samples.png"))
    paths.append(plot_lucic(exp, lucic_groups(exp, include_stopped=include_stopped), out / "lucic.png"))
    return paths
