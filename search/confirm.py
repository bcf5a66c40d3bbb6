"""Seed-robust winners: re-train a search's top K configs on S further seeds (``review --confirm``).

A GAN's score swings with the random seed, and the search's winner is the luckiest of many
draws (its own score is biased by having been picked). Each of the top K finished trials' config
is trained again for the full budget on S new seeds, in this process with gan_core's loop, and
scored as the search ranks trials: by the best evaluation of each run. The configs are ranked by
the mean over the new seeds only (the search's own, selected score is shown beside them, never
averaged in). Runs live in ``<experiment>/confirm/<trial>/seed_<seed>/`` (a local folder under
``runs/`` for an experiment on s3:// or gs://), so a second call resumes or reuses them;
confirm.json in the experiment holds every score, confirmed_config.yaml the best mean's config
(for ``gansearch retrain``), and the leaderboard marks confirmed rows.

Example::

    report = confirm(open_experiment("runs/quick"), k=3, seeds=3)
    print(report.best.trial_id, report.best.mean, report.best.sd)
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_core.config import dump_config
from gan_core.errors import GansearchError
from search.experiment import (
    CONFIRM_DIR,
    CONFIRM_FILE,
    CONFIRMED_CONFIG,
    BestPoint,
    Experiment,
    TrialStatus,
    best_report,
)
from search.objective import Objective, finite
from search.storage import is_uri


def confirm_seed(trial_id: str, i: int) -> int:
    """The i-th further seed for a trial: 31 bits from its id, never a search trial's own stream."""
    digest = hashlib.sha256(f"gansearch:confirm:{trial_id}:{i}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class Confirmed:
    """One config re-trained on further seeds."""

    trial_id: str
    search_score: float | None  # the trial's best score in the search (selected: biased)
    seeds: list[int]
    scores: list[float | None]  # each run's best evaluation (None: diverged or never scored)
    images: list[int] = field(default_factory=list)  # images each run trained

    @property
    def finite_scores(self) -> list[float]:
        return [s for s in self.scores if s is not None and math.isfinite(s)]

    @property
    def mean(self) -> float | None:
        ok = self.finite_scores
        return statistics.fmean(ok) if ok else None

    @property
    def sd(self) -> float | None:
        """Sample standard deviation over the seeds (0 for one seed)."""
        ok = self.finite_scores
        return statistics.stdev(ok) if len(ok) > 1 else (0.0 if ok else None)

    def mark(self) -> str:
        """How the leaderboard shows it: ``8.42±0.61 (3 seeds)``, diverged seeds counted."""
        if self.mean is None:
            return f"diverged on all {len(self.seeds)} seeds"
        bad = len(self.scores) - len(self.finite_scores)
        return f"{self.mean:.4g}±{self.sd:.2g} ({len(self.finite_scores)} seeds" + \
            (f", {bad} diverged)" if bad else ")")

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "search_score": self.search_score, "seeds": self.seeds,
                "scores": self.scores, "images": self.images, "mean": self.mean, "sd": self.sd}


@dataclass
class ConfirmReport:
    objective: Objective
    configs: list[Confirmed]  # best mean first; configs with no finite score last
    config_path: str | None = None  # confirmed_config.yaml, written when a config scored

    @property
    def best(self) -> Confirmed | None:
        return self.configs[0] if self.configs and self.configs[0].mean is not None else None

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.objective.metric, "mode": self.objective.mode, "best": self.best.trial_id if self.best else None,
                "config": self.config_path, "configs": [c.to_json() for c in self.configs]}


def runs_root(exp: Experiment) -> Path:
    """Where the confirmation runs train: inside a local experiment, else under ./runs."""
    if is_uri(exp.path):
        return Path("runs") / f"{exp.name}-{CONFIRM_DIR}"
    return Path(exp.path) / CONFIRM_DIR


def _run_score(run_dir: Path, objective: Objective) -> tuple[float | None, int]:
    """A run's best evaluation of the objective and its images, from its metrics.jsonl (so a run
    finished by an earlier call is scored without training again)."""
    from gan_core.io import read_jsonl
    from gan_core.loop import RunStatus

    records = read_jsonl(run_dir / "metrics.jsonl")
    evals = [r for r in records if r.get("kind") == "eval"]
    ends = [r for r in records if r.get("kind") == "end"]
    if ends and ends[-1].get("status") == RunStatus.DIVERGED:
        return None, int(ends[-1].get("images_seen", 0) or 0)
    i = best_report(evals, objective)
    images = max((int(r.get("images_seen", 0) or 0) for r in records), default=0)
    return (float(evals[i][objective.metric]) if i is not None else None), images


def confirm(exp: Experiment, k: int, seeds: int = 3, *, device: str = "auto",
            say: Callable[[str], None] = print) -> ConfirmReport:
    """Re-train the top ``k`` finished trials' configs on ``seeds`` further seeds each at the
    search's full budget; write confirm.json; configs ranked by their mean score. A run stopped by
    Ctrl-C or SIGTERM (saved where it stopped) stops the confirmation with KeyboardInterrupt before
    anything is counted or written: the same call again resumes it."""
    from gan_core.config import apply_overrides
    from gan_core.loop import RunStatus, train

    if k < 1 or seeds < 1:
        raise GansearchError(f"--confirm/--seeds: must be >= 1, got {k} configs and {seeds} seeds")
    top = [t for t in exp.ranked() if t.status.finished][:k]
    if not top:
        raise GansearchError(f"--confirm: {exp.path} has no finished trial with a finite {exp.metric}")
    root = runs_root(exp)
    configs, bases = [], {}
    for t in top:
        base = t.config if t.config is not None else (exp.space.config_for(t.params) if exp.space else None)
        if base is None:
            raise GansearchError(f"--confirm: trial {t.trial_id}: its config cannot be read (no checkpoint "
                                 "config.yaml and no space.yaml)")
        bases[t.trial_id] = base
        row = Confirmed(t.trial_id, t.score, [], [])
        for i in range(seeds):
            seed = confirm_seed(t.trial_id, i)
            cfg = apply_overrides(base, [f"train.seed={seed}"])
            cfg.name = f"{exp.name}-{t.trial_id}-seed{seed}"
            run_dir = root / t.trial_id / f"seed_{seed}"
            say(f"confirm: trial {t.trial_id} seed {seed} ({i + 1}/{seeds}), {cfg.train.images} images -> {run_dir}")
            result = train(cfg, run_dir, device=device, progress=False)
            if result.status == RunStatus.STOPPED:  # Ctrl-C/SIGTERM: the run saved where it stopped
                say(f"confirm: interrupted after {result.images_seen} of {cfg.train.images} images; nothing "
                    f"counted or written (the same --confirm again resumes {run_dir})")
                raise KeyboardInterrupt
            score, images = _run_score(run_dir, exp.objective)
            row.seeds.append(seed)
            row.scores.append(score)
            row.images.append(images)
        configs.append(row)
    configs.sort(key=lambda c: (c.mean is None, exp.objective.key(c.mean or 0.0), c.trial_id))
    report = ConfirmReport(exp.objective, configs)
    if report.best is not None:
        win = report.best
        cfg = apply_overrides(bases[win.trial_id], [])  # a copy
        cfg.name = f"{exp.name}-{win.trial_id}-confirmed"
        note = f"# confirmed: {exp.metric} {win.mark()} over further seeds {win.seeds}\n"
        point = BestPoint.of(exp, exp.trial(win.trial_id)).comment()
        report.config_path = exp.folder.write_text(CONFIRMED_CONFIG, point + note + dump_config(cfg))
    exp.folder.write_text(CONFIRM_FILE, json.dumps(report.to_json(), indent=2))
    return report


def read_confirmed(exp: Experiment) -> dict[str, Confirmed]:
    """trial id -> its confirmation, from confirm.json (empty without one)."""
    data = exp.folder.read_json(CONFIRM_FILE)
    if not isinstance(data, dict):
        return {}
    out = {}
    for c in data.get("configs") or []:
        if isinstance(c, dict) and isinstance(c.get("trial_id"), str):
            scores = [s if finite(s) else None for s in c.get("scores") or []]
            out[c["trial_id"]] = Confirmed(c["trial_id"], c.get("search_score"), list(c.get("seeds") or []), scores)
    return out


def read_marks(exp: Experiment) -> dict[str, str]:
    """trial id -> its confirmed ``mean±sd (S seeds)``, from confirm.json (empty without one)."""
    return {tid: c.mark() for tid, c in read_confirmed(exp).items()}


def format_report(report: ConfirmReport) -> str:
    """The confirmation table: each config's mean and spread over the further seeds, best first."""
    n = max((len(c.seeds) for c in report.configs), default=0)
    lines = [f"confirmed on {n} further seeds at the full budget ({report.objective.metric}, "
             f"{report.objective.direction}; "
             "mean ± sd of each run's best evaluation; the search's own score is not averaged in):"]
    lines.append(f"  {'trial':<10} {'mean':>9} {'sd':>8} {'search':>9}  per seed")
    for c in report.configs:
        mean = f"{c.mean:.4g}" if c.mean is not None else "-"
        sd = f"{c.sd:.2g}" if c.sd is not None else "-"
        found = f"{c.search_score:.4g}" if c.search_score is not None else "-"
        each = ", ".join(f"{s:.4g}" if s is not None else str(TrialStatus.DIVERGED) for s in c.scores)
        lines.append(f"  {c.trial_id:<10} {mean:>9} {sd:>8} {found:>9}  {each}")
    if report.best is not None:
        lines.append(f"best on the mean: trial {report.best.trial_id} ({report.best.mark()}); its config: "
                     f"{report.config_path}")
    else:
        lines.append("no config scored on any further seed")
    return "\n".join(lines)
