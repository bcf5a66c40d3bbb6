"""The "Are GANs Created Equal?" study (Lucic et al., 2018): the expected best score against the
number of trials, for each architecture and loss of the space.

Example::

    groups = lucic_groups(load_experiment("runs/quick"))
    print(format_lucic(exp, groups))
"""

from __future__ import annotations

from dataclasses import dataclass

from search.experiment import Experiment, TrialRecord, TrialStatus
from search.objective import Objective, finite
from search.review.reading import ReviewedExperiment, SearchedParam, param_value
from search.review.tables import fmt, table


@dataclass
class Group:
    arch: str
    loss: str
    scores: list[float]  # the best-point scores of the group's trials that count
    left_out: int  # stopped early (when not counted), diverged, failed or unfinished


def best_of_n(scores: list[float], n: int, objective: Objective) -> tuple[float, float, float]:
    """Expected best score of ``n`` trials drawn at random (with replacement) from ``scores``, with
    the 10 % and 90 % quantiles, exactly from the order statistics (what bootstrapping estimates):
    with the scores sorted best first, P(best of n = s_i) = ((m-i+1)/m)^n - ((m-i)/m)^n."""
    m = len(scores)
    s = objective.best_first(scores)
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
    searched = {p.key: p for p in exp.searched if p.key in ("model.arch", "loss.name")}
    archs = [str(c) for c in searched["model.arch"].choices] if "model.arch" in searched else []
    losses = [str(c) for c in searched["loss.name"].choices] if "loss.name" in searched else []
    base = exp.space.base_config if exp.space is not None else None
    kinds = {t.trial_id: kind for t in exp.trials if (kind := _arch_and_loss(exp, t, searched)) is not None}
    if not archs:
        archs = [base.model.arch] if base else sorted({a for a, _ in kinds.values()})
    if not losses:
        losses = [base.loss.name] if base else sorted({b for _, b in kinds.values()})
    counted = (TrialStatus.COMPLETED, TrialStatus.STOPPED) if include_stopped else (TrialStatus.COMPLETED,)
    groups = []
    for a in archs:
        for lo in losses:
            members = [t for t in exp.trials if kinds.get(t.trial_id) == (a, lo)]
            scores = [float(t.score) for t in members if t.status in counted and finite(t.score)]
            groups.append(Group(a, lo, scores, len(members) - len(scores)))
    return groups


def _arch_and_loss(exp: ReviewedExperiment, t: TrialRecord,
                   searched: dict[str, SearchedParam]) -> tuple[str, str] | None:
    """The trial's architecture and loss: with the space, its values (``searched`` by key, or
    fixed) over the base config's, no config file read (thousands of trials review in seconds);
    else from its config."""
    if exp.space is None or not t.params:
        return None if t.config is None else (t.config.model.arch, t.config.loss.name)
    base = exp.space.base_config

    def value(key: str, default: str) -> str:
        v = param_value(exp, t, searched[key]) if key in searched else t.params.get(key)
        return default if v is None else str(v)

    return value("model.arch", base.model.arch), value("loss.name", base.loss.name)


def ladder(m: int) -> list[int]:
    """1, 2, 4, ... up to m, and m itself: the n of the best-of-n columns and ticks."""
    out, n = [], 1
    while n <= m:
        out.append(n)
        n *= 2
    if out and out[-1] != m:
        out.append(m)
    return out


def format_lucic(exp: Experiment, groups: list[Group], include_stopped: bool = False) -> str:
    which = (f"{TrialStatus.COMPLETED} and early-stopped (mixing budgets: the early-stopped are scored at the "
             "images they reached)" if include_stopped else str(TrialStatus.COMPLETED))
    lines = [f"best {exp.metric} against the number of trials (Lucic et al. 2018, \"Are GANs Created "
             f"Equal?\"): expected best of n {which} trials drawn at random, per architecture and loss"]
    m_max = max((len(g.scores) for g in groups), default=0)
    ns = ladder(m_max)
    header = ["arch", "loss", "trials", *[f"n={n}" for n in ns], "best", "left out"]
    rows = []
    for g in groups:
        m = len(g.scores)
        cells = [fmt(best_of_n(g.scores, n, exp.objective)[0]) if n <= m else "" for n in ns]
        best = exp.objective.best_of(g.scores)
        rows.append([g.arch, g.loss, str(m), *cells, fmt(best) if m else "-", str(g.left_out)])
    lines.append(table(header, rows, right=set(range(2, len(header)))))
    if m_max == 0:
        lines.append(f"(no {which} trials yet" + ("" if include_stopped else
                     "; --include-stopped counts the early-stopped ones at their best score") + ")")
    else:
        lines.append("(left out: trials of the group that did not complete; n=1 is the mean of a random trial)")
    return "\n".join(lines)
