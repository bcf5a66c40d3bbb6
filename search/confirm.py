"""Seed-robust winners: re-train a search's top K configs on S further seeds (``review --confirm``).

A GAN's score swings with the random seed, and the search's winner is the luckiest of many
draws (its own score is biased by having been picked). Each of the top K finished trials' config
besides the space's base point, and the base point (the recipe the search started from, so the
search's best is measured against it on equal terms, even when the base point's own seed won), is
trained again for the full budget on S new seeds with gan_core's loop (in
this process, or ``jobs`` processes at once), and scored as the search ranks trials: by the best
evaluation of each run. The configs are ranked by the mean over the new seeds only (the search's
own, selected score is shown beside them, never averaged in). Runs live in ``<experiment>/confirm/<trial>/seed_<seed>/`` (a local folder under
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
import os
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_core.config import Config, dump_config
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
    base: bool = False  # the space's base point (confirmed as the reference even outside the top K)

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
                "scores": self.scores, "images": self.images, "mean": self.mean, "sd": self.sd,
                "base": self.base}


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
    status, end_images = _run_end(records)
    if status == RunStatus.DIVERGED:
        return None, end_images
    i = best_report(evals, objective)
    images = max((int(r.get("images_seen", 0) or 0) for r in records), default=0)
    return (float(evals[i][objective.metric]) if i is not None else None), images


@dataclass(frozen=True)
class _Run:
    """One confirmation run: a trial's config with its i-th further seed, and where it trains."""

    trial_id: str
    i: int
    seeds: int
    cfg: Config
    run_dir: Path

    def line(self) -> str:
        return (f"confirm: trial {self.trial_id} seed {self.cfg.train.seed} ({self.i + 1}/{self.seeds}), "
                f"{self.cfg.train.images} images -> {self.run_dir}")


def confirm(exp: Experiment, k: int, seeds: int = 3, *, jobs: int = 1, device: str = "auto",
            say: Callable[[str], None] = print) -> ConfirmReport:
    """Re-train the top ``k`` finished trials' configs besides the space's base point, and the base
    point, on ``seeds`` further seeds each at the search's full budget, ``jobs`` runs at once; write confirm.json;
    configs ranked by their mean score. A run stopped by Ctrl-C or SIGTERM (saved where it stopped)
    stops the confirmation with KeyboardInterrupt before anything is counted or written: the same
    call again resumes it."""
    from gan_core.config import apply_overrides

    if k < 1 or seeds < 1 or jobs < 1:
        raise GansearchError(f"--confirm/--seeds/--jobs: must be >= 1, got {k} configs, {seeds} seeds, {jobs} jobs")
    base_trial = exp.base_trial()
    base_id = base_trial.trial_id if base_trial is not None else None
    finished = [t for t in exp.ranked() if t.status.finished]
    if not finished:
        raise GansearchError(f"--confirm: {exp.path} has no finished trial with a finite {exp.metric}")
    top = [t for t in finished if t.trial_id != base_id][:k]
    if base_trial is not None:
        top.append(base_trial)
    root = runs_root(exp)
    configs, bases, runs = [], {}, []
    for t in top:
        base = t.config if t.config is not None else (exp.space.config_for(t.params) if exp.space else None)
        if base is None:
            raise GansearchError(f"--confirm: trial {t.trial_id}: its config cannot be read (no checkpoint "
                                 "config.yaml and no space.yaml)")
        bases[t.trial_id] = base
        configs.append(Confirmed(t.trial_id, t.score, [], [], base=t.trial_id == base_id))
        for i in range(seeds):
            seed = confirm_seed(t.trial_id, i)
            cfg = apply_overrides(base, [f"train.seed={seed}"])
            cfg.name = f"{exp.name}-{t.trial_id}-seed{seed}"
            runs.append(_Run(t.trial_id, i, seeds, cfg, root / t.trial_id / f"seed_{seed}"))
    if jobs == 1:
        _train_here(runs, device, say)
    else:
        _train_in_processes(runs, jobs, device, say)
    for row in configs:
        for run in runs:
            if run.trial_id == row.trial_id:
                score, images = _run_score(run.run_dir, exp.objective)
                row.seeds.append(run.cfg.train.seed)
                row.scores.append(score)
                row.images.append(images)
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


def _interrupted(run: _Run, images: int, say: Callable[[str], None]) -> None:
    say(f"confirm: interrupted after {images} of {run.cfg.train.images} images; nothing "
        f"counted or written (the same --confirm again resumes {run.run_dir})")
    raise KeyboardInterrupt


def _train_here(runs: list[_Run], device: str, say: Callable[[str], None]) -> None:
    """One run after another in this process (its torch threads)."""
    from gan_core.loop import RunStatus, train

    for run in runs:
        say(run.line())
        result = train(run.cfg, run.run_dir, device=device, progress=False)
        if result.status == RunStatus.STOPPED:  # Ctrl-C/SIGTERM: the run saved where it stopped
            _interrupted(run, result.images_seen, say)


def _train_alone(cfg: Config, run_dir: str, device: str, threads: int) -> None:
    """A confirmation run in a process of its own, in its own process group: a Ctrl-C reaches
    the parent alone, which passes one SIGINT on (the run then saves where it stopped)."""
    os.setpgrp()
    import torch

    from gan_core.loop import train

    torch.set_num_threads(threads)
    try:
        train(cfg, run_dir, device=device, progress=False)
    except GansearchError as e:
        print(f"gansearch: {e}", flush=True)
        raise SystemExit(2) from None


def _train_in_processes(runs: list[_Run], jobs: int, device: str, say: Callable[[str], None]) -> None:
    """``jobs`` runs at once, each in a spawned process with cpu_count // jobs torch threads. The
    first SIGINT/SIGTERM starts no further run and stops the running ones with a checkpoint; a
    second aborts them and this call at once."""
    import multiprocessing as mp

    from gan_core.interrupts import stop_on_signals
    from gan_core.io import read_jsonl
    from gan_core.loop import RunStatus

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pending, told = list(runs), set()
    running: dict[Any, _Run] = {}  # the spawned processes (multiprocessing's SpawnProcess)
    with stop_on_signals() as stop:
        try:
            while running or (pending and not stop.requested):
                while pending and len(running) < jobs and not stop.requested:
                    run = pending.pop(0)
                    say(run.line())
                    proc = ctx.Process(target=_train_alone, args=(run.cfg, str(run.run_dir), device, threads))
                    proc.start()
                    running[proc] = run
                for proc in running:
                    if stop.requested and proc.pid is not None and proc.pid not in told and proc.is_alive():
                        told.add(proc.pid)
                        os.kill(proc.pid, signal.SIGINT)
                for proc in [p for p in running if not p.is_alive()]:
                    run = running.pop(proc)
                    if proc.exitcode != 0 and not stop.requested:
                        raise GansearchError(f"--confirm: the run in {run.run_dir} failed (exit code "
                                             f"{proc.exitcode}; its output above says why)")
                time.sleep(0.1)
        except BaseException:  # a second signal, or a run that failed: the others stop now
            for proc in running:
                if proc.pid is not None and proc.is_alive():
                    os.kill(proc.pid, signal.SIGINT if proc.pid in told else signal.SIGTERM)
            for proc in running:
                proc.join()
            raise
    if stop.requested:
        for run in runs:
            status, images = _run_end(read_jsonl(run.run_dir / "metrics.jsonl"))
            if status != RunStatus.COMPLETED and status != RunStatus.DIVERGED:
                _interrupted(run, images, say)


def _run_end(records: list[dict[str, Any]]) -> tuple[str | None, int]:
    """How a run's metrics.jsonl records say it ended (None: it never did) and the images it saw then."""
    ends = [r for r in records if r.get("kind") == "end"]
    return (ends[-1].get("status"), int(ends[-1].get("images_seen", 0) or 0)) if ends else (None, 0)


def read_confirmed(exp: Experiment) -> dict[str, Confirmed]:
    """trial id -> its confirmation, from confirm.json (empty without one)."""
    data = exp.folder.read_json(CONFIRM_FILE)
    if not isinstance(data, dict):
        return {}
    out = {}
    for c in data.get("configs") or []:
        if isinstance(c, dict) and isinstance(c.get("trial_id"), str):
            scores = [s if finite(s) else None for s in c.get("scores") or []]
            out[c["trial_id"]] = Confirmed(c["trial_id"], c.get("search_score"), list(c.get("seeds") or []), scores,
                                           base=c.get("base") is True)
    return out


@dataclass(frozen=True)
class BaseComparison:
    """The best confirmed config other than the base point against the base point, over further seeds."""

    best: Confirmed
    base: Confirmed
    gain: float  # the base point's mean minus the best's, in the objective's direction (> 0: better)
    spread: float  # the larger of the two seeds' sds

    @property
    def beats(self) -> bool:
        """Better by more than one seed's spread."""
        return self.gain > self.spread


def compare_with_base(configs: list[Confirmed], objective: Objective) -> BaseComparison | None:
    """None when the base point or no other config was confirmed with a finite mean."""
    base = next((c for c in configs if c.base and c.mean is not None), None)
    best = min((c for c in configs if not c.base and c.mean is not None),
               key=lambda c: objective.key(c.mean or 0.0), default=None)
    if base is None or best is None or base.mean is None or best.mean is None:  # (means: for the type checker)
        return None
    return BaseComparison(best, base, objective.sign * (base.mean - best.mean), max(best.sd or 0.0, base.sd or 0.0))


def against_the_base(configs: list[Confirmed], objective: Objective) -> str | None:
    """One line: the best confirmed config that is not the base point against the base point,
    both over further seeds; "clearly better" only when the means differ by more than the larger
    of the two seeds' spreads (sd). None when the base point or no other config was confirmed."""
    cmp = compare_with_base(configs, objective)
    if cmp is None:
        return None
    win, base = cmp.best, cmp.base
    n = min(len(win.finite_scores), len(base.finite_scores))
    head = (f"against the base point, over {n} further seeds each at the full budget: the search's best "
            f"(trial {win.trial_id}) {objective.metric} {win.mark()} vs {base.mark()} for the base point "
            f"(trial {base.trial_id})")
    if cmp.gain <= 0:
        return f"{head}: the base point is as good or better; the search did not beat its starting recipe"
    assert win.mean is not None and base.mean is not None  # compare_with_base compared finite means
    share = objective.relative(win.mean, base.mean)
    if cmp.beats:
        return f"{head}: {share}, more than one seed's spread (sd {cmp.spread:.2g}): the search beat its base"
    return f"{head}: {share}, within one seed's spread (sd {cmp.spread:.2g}): not clearly better than the base"


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
        lines.append(f"  {c.trial_id:<10} {mean:>9} {sd:>8} {found:>9}  {each}" + ("  (the base point)" if c.base else ""))
    if report.best is not None:
        lines.append(f"best on the mean: trial {report.best.trial_id} ({report.best.mark()}); its config: "
                     f"{report.config_path}")
        if compared := against_the_base(report.configs, report.objective):
            lines.append(compared)
    else:
        lines.append("no config scored on any further seed")
    return "\n".join(lines)
