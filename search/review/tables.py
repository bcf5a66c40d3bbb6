"""The leaderboard: every trial ranked by its best score, as a text table (``format_leaderboard``)
and as records with every parameter and metric for ``review --csv`` / ``--json``
(``leaderboard_records``, ``write_csv``, ``write_json``).

Example::

    exp = load_experiment("runs/quick")
    print(format_leaderboard(exp))
    write_csv(exp, "leaderboard.csv")
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.experiment import TrialRecord, TrialStatus
from search.objective import finite
from search.review.reading import ReviewedExperiment, metric_parts, param_value

if TYPE_CHECKING:
    from search.confirm import Confirmed


def fmt(v: object) -> str:
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
    sched = exp.manifest.scheduler or "?"
    lines = [f"experiment {exp.path} ({len(exp.trials)} trials: {counts or 'none'}; scheduler {sched}; "
             f"objective {exp.metric}, {exp.objective.better}"
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
    from search.confirm import read_confirmed  # review --confirm: mean±sd over further seeds

    confirmed = list(read_confirmed(exp).values())
    marks = {c.trial_id: c.mark() for c in confirmed}
    conf = ["confirmed"] if marks else []
    header = ["rank", "trial", exp.metric, "at", "last", *conf, *[k.rsplit("_", 1)[0] if cut else k for k in parts],
              *[p.short for p in exp.searched], "images", "status"]
    rows = []
    for i, t in enumerate(shown, 1):
        m = metric_parts(t, exp.metric)
        rows.append([str(i), t.trial_id, fmt(t.score), fmt(t.best_images), fmt(t.last_score),
                     *[marks.get(t.trial_id, "-") for _ in conf], *[fmt(m.get(k)) for k in parts],
                     *[fmt(param_value(exp, t, p)) for p in exp.searched], str(t.images_seen), status_text(t)])
    unranked = [t for t in exp.trials if t not in ranked]
    for t in unranked:
        rows.append(["-", t.trial_id, "-", "-", "-", *["-" for _ in conf + parts],
                     *[fmt(param_value(exp, t, p)) for p in exp.searched], str(t.images_seen), status_text(t)])
    nums = set(range(len(header))) - {1, len(header) - 1}
    lines.append("")
    lines.append(table(header, rows, right={i for i in nums if i < 5 + len(conf) + len(parts)} | {0, len(header) - 2}))
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
        if compared := against_the_base(exp, best, ranked, confirmed):
            lines.append(compared)
    return "\n".join(lines)


def against_the_base(exp: ReviewedExperiment, best: TrialRecord, ranked: list[TrialRecord],
                     confirmed: list[Confirmed]) -> str | None:
    """One line: how the winner (``best``, first of ``ranked``) compares with the space's base
    point (the search's starting recipe, evaluated first), so a user can tell whether the search
    earned its compute: over further seeds when ``review --confirm`` re-trained both (``confirmed``,
    from confirm.json), else one seed each."""
    from search.confirm import against_the_base as confirmed_against_the_base

    if seeded := confirmed_against_the_base(confirmed, exp.objective):
        return seeded
    base = exp.base_trial()
    if base is None:
        return None
    others = len(ranked) - 1
    if base.trial_id == best.trial_id:
        return (f"against the base point: the base point (trial {base.trial_id}) is the winner; none of the "
                f"{others} other ranked trials beat it")
    if base.score is None or best.score is None:
        return (f"against the base point: trial {base.trial_id} ran it and has no finite {exp.metric} "
                f"({status_text(base)}); the winner's is {fmt(best.score)}")
    seeds = "one seed each (review --confirm K re-trains the top K and the base point on more seeds)"
    if base.status is TrialStatus.STOPPED and (best.best_images or 0) > base.images_seen:
        # Stopped early, the base point was scored after fewer images than the winner's best: a
        # GAN improves with images, so compare the two after the same number.
        early = exp.objective.best_of(r.get(exp.metric) for r in best.results
                                      if int(r.get("images_seen") or 0) <= base.images_seen)
        if early is not None:
            return (f"against the base point: after {base.images_seen} images, where the scheduler stopped it "
                    f"(trial {base.trial_id}), its {exp.metric} {fmt(base.score)} vs the winner's {fmt(early)} "
                    f"({exp.objective.relative(early, base.score)}); the winner went on to {fmt(best.score)} "
                    f"after {best.best_images} images; {seeds}")
    stopped = f", stopped early at {base.images_seen} images" if base.status is TrialStatus.STOPPED else ""
    return (f"against the base point: the winner's {exp.metric} {fmt(best.score)} vs {fmt(base.score)} for the "
            f"base point (trial {base.trial_id}{stopped}): {exp.objective.relative(best.score, base.score)}, "
            f"{seeds}")


# ----------------------------------------------------------------------------- records: --csv and --json


def leaderboard_records(exp: ReviewedExperiment) -> tuple[list[str], list[dict[str, Any]]]:
    """The whole leaderboard as records, ranked trials first (best first), then the rest: rank
    (None when unranked), trial, status, reason, the best score and the images at it, the last
    score and images seen, the confirmation over further seeds (``review --confirm``: its mark,
    mean and sd), the costs (``g_params``, ``images_per_s``, as the Pareto front reads them),
    every searched parameter (by config key), and every metric at the best point
    (``best.<name>``) and in the last report (``last.<name>``). Returns (columns, records)."""
    from search.confirm import read_confirmed
    from search.pareto import COSTS

    ranked = exp.ranked()
    order = ranked + [t for t in exp.trials if t not in ranked]
    best = {t.trial_id: metric_parts(t, exp.metric) for t in order}
    last = {t.trial_id: metric_parts(t, exp.metric, t.last) for t in order}
    names = list(dict.fromkeys(k for parts in (*best.values(), *last.values()) for k in parts))
    confirmed = read_confirmed(exp)
    costs = [objective.metric for objective, _ in COSTS.values()]
    columns = ["rank", "trial", "status", "reason", exp.metric, "best_images", "last_" + exp.metric,
               "images_seen", "confirmed", "confirmed_mean", "confirmed_sd", *costs, *[p.key for p in exp.searched],
               *[f"best.{k}" for k in names], *[f"last.{k}" for k in names]]
    records = []
    for i, t in enumerate(order, 1):
        row: dict[str, Any] = {"rank": i if t in ranked else None, "trial": t.trial_id, "status": str(t.status),
                               "reason": t.why if t.status is not TrialStatus.COMPLETED else "",
                               exp.metric: _number(t.score), "best_images": t.best_images,
                               "last_" + exp.metric: _number(t.last_score), "images_seen": t.images_seen}
        c = confirmed.get(t.trial_id)
        row.update({"confirmed": c.mark() if c else None, "confirmed_mean": _number(c.mean if c else None),
                    "confirmed_sd": _number(c.sd if c else None)})
        row.update({k: v if finite(v := t.best_result.get(k, t.last.get(k))) else None for k in costs})
        row.update({p.key: param_value(exp, t, p) for p in exp.searched})
        row.update({f"best.{k}": _number(best[t.trial_id].get(k)) for k in names})
        row.update({f"last.{k}": _number(last[t.trial_id].get(k)) for k in names})
        records.append(row)
    return columns, records


def _number(v: float | None) -> float | None:
    """A finite number, or None (no score: diverged, failed, not reported yet)."""
    return float(v) if v is not None and math.isfinite(v) else None


def write_csv(exp: ReviewedExperiment, out: str | Path) -> Path:
    """The leaderboard records as CSV (one row per trial; empty cells for no value)."""
    import csv

    from gan_core.io import atomic_write_text

    columns, records = leaderboard_records(exp)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
    atomic_write_text(Path(out), buf.getvalue())
    return Path(out)


def write_json(exp: ReviewedExperiment, out: str | Path) -> Path:
    """The leaderboard records as JSON, with the experiment, objective and columns."""
    import json

    from gan_core.io import atomic_write_text

    columns, records = leaderboard_records(exp)
    doc = {"experiment": str(exp.path), "metric": exp.metric, "mode": exp.objective.mode,
           "budget_images": exp.budget_images, "columns": columns, "trials": records}
    atomic_write_text(Path(out), json.dumps(doc, indent=2, default=str) + "\n")
    return Path(out)
