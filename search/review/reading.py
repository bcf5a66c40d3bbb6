"""Reading an experiment for review: the hyperparameters its search varied (the leaderboard's
columns), each trial's value of them, and the parts of each trial's score.

The experiment is read through search/experiment/, never through Ray: a search that is still
running, one that was interrupted, one copied from a cluster's storage, or one still on s3:// /
gs:// reads the same way, and nothing in the folder is modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gan_core.config import flatten, to_dict
from search.experiment import NOT_METRICS, Experiment, TrialRecord, open_experiment
from search.objective import finite

if TYPE_CHECKING:
    from search.space import Param, Scalar, Space


@dataclass
class SearchedParam:
    """One searched hyperparameter: a config key (conditional branches of one key are merged)."""

    key: str
    kind: str  # float | int | choice
    log: bool = False
    choices: tuple[Scalar, ...] = ()
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


def metric_parts(t: TrialRecord, objective: str, result: dict[str, Any] | None = None) -> dict[str, float]:
    """The parts of the score at the trial's best point (or in ``result``, e.g. its last report:
    cfd_2k, cis_2k, ...), objective first: the registered metrics (protocol-named), else every
    number that is not bookkeeping."""
    at = t.best_result if result is None else result
    numbers = {k: float(v) for k, v in at.items() if k != "score" and finite(v)}
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


def _searched(space: Space) -> list[SearchedParam]:
    from search.space import ChoiceParam, FixedParam, FloatParam

    by_key: dict[str, SearchedParam] = {}

    def walk(params: tuple[Param, ...]) -> None:
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




def param_value(exp: Experiment, t: TrialRecord, p: SearchedParam) -> Scalar:
    """A trial's value of a searched key: from its config when known, else its sampled values."""
    for name in p.names or (p.key,):
        if name in t.params:
            return t.params[name]
    if p.key in t.params:
        return t.params[p.key]
    if t.config is not None and not p.names:
        return flatten(to_dict(t.config)).get(p.key)
    return None
