"""Review a search: leaderboard, export of a trial's config, hyperparameter importance, and the
"Are GANs Created Equal?" study (Lucic et al., 2018) of the best score against the number of
trials for each architecture and loss; the pictures are in search/review_plots.py.

The experiment is read through search/experiment.py, never through Ray: a search that is still
running, one that was interrupted, one copied from a cluster's storage, or one still on s3:// /
gs:// reads the same way, and nothing in the folder is modified (the Optuna database is copied
to a temporary file before it is opened).

Example::

    exp = load_experiment("runs/quick")
    print(format_leaderboard(exp))
    export_config(exp, "best.yaml")                # the winner's complete config, for retrain
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gan_core.config import Config, dump_config, flatten, from_dict, to_dict
from gan_core.errors import GansearchError
from search.experiment import (
    NOT_METRICS,
    OPTUNA_FILE,
    SPACE_FILE,
    BestPoint,
    Experiment,
    TrialRecord,
    TrialStatus,
    finite,
    open_experiment,
    open_study,
)

MIN_IMPORTANCE_TRIALS = 5


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
class ReviewedExperiment(Experiment):
    """An experiment with the hyperparameters its search varied (the leaderboard's columns)."""

    searched: list[SearchedParam] = field(default_factory=list)


def load_experiment(path: str | Path) -> ReviewedExperiment:
    """Read an experiment folder or URI written by ``gansearch search``; a folder that is not one
    is a one-line GansearchError."""
    exp = open_experiment(path)
    searched = _searched(exp.space) if exp.space is not None else _guess_searched(exp.trials)
    return ReviewedExperiment(**{f.name: getattr(exp, f.name) for f in fields(Experiment)}, searched=searched)


def _metric_names() -> list[str]:
    try:
        from gan_core.metrics.registry import metric_names
    except ImportError:  # pragma: no cover - the metrics package is part of the toolkit
        return []
    return metric_names()


def metric_parts(t: TrialRecord, objective: str) -> dict[str, float]:
    """The parts of the score at the trial's best point (cfd_2k, cis_2k, ...), objective first:
    the registered metrics (protocol-named), else every number that is not bookkeeping."""
    numbers = {k: float(v) for k, v in t.best_result.items() if k != "score" and finite(v)}
    names = set(_metric_names())
    parts = {k: v for k, v in numbers.items() if k.rsplit("_", 1)[0] in names or k in names}
    if not parts:
        parts = {k: v for k, v in numbers.items() if k not in NOT_METRICS}
    return dict(sorted(parts.items(), key=lambda kv: (kv[0] != objective, kv[0])))


def short_key(key: str) -> str:
    """``optim.d.lr`` -> ``d.lr``, ``model.arch`` -> ``arch``, ``loss.name`` -> ``loss``."""
    if key in ("loss.name", "data.name"):
        return key.split(".")[0]
    for prefix in ("model.", "train.", "optim."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


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


def _guess_searched(trials: list[TrialRecord]) -> list[SearchedParam]:
    """Without the space file: keys whose value differs between trials (except the seed)."""
    values: dict[str, set[str]] = {}
    for t in trials:
        for k, v in t.params.items():
            values.setdefault(k.split("@", 1)[0], set()).add(repr(v))
    out = []
    for key, seen in values.items():
        if len(seen) > 1 and key != "train.seed":
            sample = [t.params[k] for t in trials for k in t.params if k.split("@", 1)[0] == key]
            numeric = all(finite(v) for v in sample)
            out.append(SearchedParam(key, "float" if numeric else "choice", False,
                                     () if numeric else tuple(dict.fromkeys(sample))))
    return out


# ----------------------------------------------------------------------------- values and tables


def param_value(exp: Experiment, t: TrialRecord, p: SearchedParam) -> Any:
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


def status_text(t: TrialRecord) -> str:
    return t.status.label


def format_leaderboard(exp: ReviewedExperiment, top: int = 10) -> str:
    counts = ", ".join(f"{exp.count(s)} {s.label}" for s in TrialStatus if exp.count(s))
    sched = exp.state.get("scheduler", "?")
    lines = [f"experiment {exp.path} ({len(exp.trials)} trials: {counts or 'none'}; scheduler {sched}; "
             f"objective {exp.metric}, {'lower' if exp.mode == 'min' else 'higher'} is better"
             + (f"; {exp.budget_images} images per trial)" if exp.budget_images else ")")]
    lines.append(f"{exp.metric}: each trial's best evaluation, reached after `at` images, and the parts of "
                 f"the score there; last: its last evaluation, after `images`")
    lines += [f"note: {n}" for n in exp.notes]
    ranked = exp.ranked()
    shown = ranked[: max(top, 10)]
    parts = list(dict.fromkeys(k for t in shown for k in metric_parts(t, exp.metric)))
    # The part the score is made of (the objective) is the score column itself; say so once.
    same = [k for k in parts if all(metric_parts(t, exp.metric).get(k) == t.score for t in shown)]
    if exp.metric == "score" and same and shown:
        parts.remove(same[0])
        lines[0] = lines[0][:-1] + f"; score = {same[0]})"
    suffixes = {k.rsplit("_", 1)[-1] for k in parts if "_" in k}
    cut = (len(suffixes) == 1 and all("_" in k for k in parts)
           and suffixes.pop()[:1].isdigit())  # cis_2k, recall_2k: one sample count for all
    header = ["rank", "trial", exp.metric, "at", "last", *[k.rsplit("_", 1)[0] if cut else k for k in parts],
              *[p.short for p in exp.searched], "images", "status"]
    rows = []
    for i, t in enumerate(shown, 1):
        m = metric_parts(t, exp.metric)
        rows.append([str(i), t.trial_id, fmt(t.score), fmt(t.best_images), fmt(t.last_score),
                     *[fmt(m.get(k)) for k in parts],
                     *[fmt(param_value(exp, t, p)) for p in exp.searched], str(t.images_seen), status_text(t)])
    unranked = [t for t in exp.trials if t not in ranked]
    for t in unranked:
        rows.append(["-", t.trial_id, "-", "-", "-", *["-" for _ in parts],
                     *[fmt(param_value(exp, t, p)) for p in exp.searched], str(t.images_seen), status_text(t)])
    nums = set(range(len(header))) - {1, len(header) - 1}
    lines.append("")
    lines.append(table(header, rows, right={i for i in nums if i < 5 + len(parts)} | {0, len(header) - 2}))
    if len(ranked) > len(shown):
        lines.append(f"... and {len(ranked) - len(shown)} more ranked trials (--top to see more)")
    why = [t for t in exp.trials if not t.status.finished or (t.status is TrialStatus.STOPPED and t in shown)]
    if why:
        lines.append("")
        for t in why:
            lines.append(f"  {t.trial_id} {status_text(t)}: {t.why}")
    best = exp.best()
    lines.append("")
    if best is None:
        lines.append("no trial has finished with a finite score yet; nothing to export")
    else:
        lines.append(f"best: trial {best.trial_id}, {exp.metric} {fmt(best.score)} after {best.best_images} images "
                     f"(its last: {fmt(best.last_score)} after {best.images_seen}; {status_text(best)})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- export


def export_config(exp: Experiment, out: str | Path, trial_id: str | None = None) -> tuple[TrialRecord, Config]:
    """Write the complete config of the best trial (or ``trial_id``) to ``out``, ready for retrain,
    with the trial's best point recorded in comments at the top (see BestPoint)."""
    from gan_core.io import atomic_write_text

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
    atomic_write_text(Path(out), BestPoint.of(exp, t).comment() + dump_config(cfg))
    return t, cfg


# ----------------------------------------------------------------------------- importance


def importance(exp: Experiment) -> tuple[list[tuple[str, float]], str]:
    """Rows (parameter, importance) and a one-line note on how they were obtained."""
    import optuna

    with tempfile.TemporaryDirectory(prefix="gansearch-review-") as tmp:
        try:
            study = open_study(exp, Path(tmp))
        except Exception as exc:  # noqa: BLE001 - a broken or locked database must not stop the review
            study = None
            why = f"the Optuna study could not be opened ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        else:
            why = ("no Optuna study (PBT searches have none)" if exp.state.get("scheduler") == "pbt"
                   else f"no Optuna study in {exp.path}/{OPTUNA_FILE}")
        if study is not None:
            states = optuna.trial.TrialState
            complete = [t for t in study.get_trials(deepcopy=False, states=(states.COMPLETE,))
                        if t.value is not None and math.isfinite(t.value)]
            # Only trials at the full budget: scores at 128k and 384k images do not compare.
            # The search tells Optuna a trial stopped early as PRUNED and records images_seen.
            done = [t for t in complete if _at_full_budget(t, exp.budget_images)]
            early = len(complete) - len(done) + len(study.get_trials(deepcopy=False, states=(states.PRUNED,)))
            if len(done) >= MIN_IMPORTANCE_TRIALS:
                target = study
                if len(done) < len(complete):
                    target = optuna.create_study(directions=study.directions)
                    target.add_trials(done)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        imp = optuna.importance.get_param_importances(target)
                except (RuntimeError, ValueError) as exc:
                    why = f"Optuna could not compute importances ({str(exc).splitlines()[0]})"
                else:
                    rows = [(_pretty_name(k), float(v)) for k, v in imp.items()]
                    unknown = not all("images_seen" in t.user_attrs for t in complete)
                    return rows, (f"Optuna PED-ANOVA importance over {len(done)} trials at the full budget"
                                  + (f" ({early} stopped early left out)" if early else "")
                                  + ("; the study records no budgets, so early-stopped trials may be among "
                                     "them" if unknown else "")
                                  + " (share of the score's variation; sums to 1)")
            else:
                why = (f"too few Optuna trials at the full budget for importance ({len(done)}, need "
                       f"{MIN_IMPORTANCE_TRIALS}; {early} stopped early)")
    return _correlation_fallback(exp, why)


def _at_full_budget(trial: Any, budget: int | None) -> bool:
    """An Optuna trial trained the whole budget (unknown for studies that record no images)."""
    images, full = trial.user_attrs.get("images_seen"), trial.user_attrs.get("budget_images", budget)
    return images is None or full is None or images >= full


def _pretty_name(name: str) -> str:
    """``model.g_depth@model.arch=mlp`` -> ``model.g_depth (model.arch=mlp)``."""
    if "@" not in name:
        return name
    key, cond = name.split("@", 1)
    return f"{key} ({cond})"


def _correlation_fallback(exp: Experiment, why: str) -> tuple[list[tuple[str, float]], str]:
    from scipy.stats import spearmanr

    full = [t for t in exp.trials if t.status is TrialStatus.COMPLETED and finite(t.score)]
    finished = [t for t in exp.trials if t.status.finished and finite(t.score)]
    done = full if len(full) >= 3 else finished
    which = (f"{len(done)} trials at the full budget" if done is full or len(done) == len(full) else
             f"{len(done)} finished trials, {len(done) - len(full)} of them stopped early (scored at fewer images)")
    rows = []
    if len(done) >= 3:
        for p in exp.searched:
            pairs = [(param_value(exp, t, p), t.score) for t in done]
            pairs = [(v, s) for v, s in pairs if finite(v)]
            if len(pairs) >= 3 and len({v for v, _ in pairs}) > 1:
                rho = spearmanr([v for v, _ in pairs], [s for _, s in pairs]).statistic
                if finite(rho):
                    rows.append((p.key, abs(float(rho))))
        rows.sort(key=lambda r: -r[1])
    if rows:
        return rows, (f"{why}; showing |Spearman rank correlation| of each numeric parameter with "
                      f"{exp.metric} over {which} instead (a hint, not an importance)")
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
    scores: list[float]  # the best-point scores of the group's trials that count
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


def lucic_groups(exp: ReviewedExperiment, *, include_stopped: bool = False) -> list[Group]:
    """One group per architecture x loss of the space (searched or fixed), with the best-point scores of
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
            scores = [float(t.score) for t in members if t.status in counted and finite(t.score)]
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
    which = ("completed and early-stopped (mixing budgets: the early-stopped are scored at the images "
             "they reached)" if include_stopped else "completed")
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
                     "; --include-stopped counts the early-stopped ones at their best score") + ")")
    else:
        lines.append("(left out: trials of the group that did not complete; n=1 is the mean of a random trial)")
    return "\n".join(lines)
