"""What a search prints: one line per trial event, a periodic summary, and none of Ray's noise.

Imported by the Tuner (tuner.py) and the trainable. ``--quiet`` leaves the toolkit's own lines and
real warnings: Tune's tables, its experiment banner and every INFO line of Ray and Optuna go, and
:class:`StatusLines` prints instead::

    [00:41] trial 2627c0a7 started (1/8): optim.d.lr=0.00123 model.g_depth=2
    [01:15] trial 2627c0a7 completed: score 4.21 after 2048 images (best 4.21, trial 2627c0a7)
    [01:20] 3/8 done (2 completed, 1 stopped early, 0 failed), 2 running; best score 4.21 (trial
            2627c0a7); elapsed 1m20s, about 2m13s left

Without ``--quiet`` Tune's tables stay, minus what is noise in both modes: a "Checkpoint
successfully created" line per report, ``ValueError when calling 'flush' on stream`` warnings
(Tune's stdout tee once a reused actor closed its log file), the snapshot-frequency warning a
``num_to_keep`` checkpoint config triggers, the token-authentication notice of a private Ray,
and the TensorBoard hint into Ray's temporary folder: Ray's own TensorBoard logger is off, since
every run writes its events (all scalars and the sample grids) into its own folder
(gan_core/events.py), so ``tensorboard --logdir EXPERIMENT`` is the command.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from ray.tune.experimental.output import AirVerbosity, TuneTerminalReporter

from search.experiment import RUN_SUBDIR, TrialStatus, trial_params
from search.objective import Direction, Objective, finite
from search.raytune.recovery import ProgressCsvLog, ResultJsonLog

if TYPE_CHECKING:
    from ray.tune.stopper import Stopper

# Messages that say nothing a user can act on (see the module docstring).
NOISE = (
    "Checkpoint successfully created at",
    "ValueError when calling 'flush' on stream",
    "ValueError when calling 'write' on stream",
    "Experiment state snapshotting has been triggered",
    "Token authentication is enabled for this Ray cluster",
)


class _NoiseFilter(logging.Filter):
    """Drops the NOISE messages, and every record below WARNING when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        super().__init__("gansearch")
        self.quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if self.quiet and record.levelno < logging.WARNING:
            return False
        msg = record.getMessage()
        return not any(n in msg for n in NOISE)


def _install(logger: logging.Logger, quiet: bool) -> None:
    """The filter on the logger's handlers: records of child loggers ("ray.tune.tune") reach a
    handler by propagation, where a filter on the logger itself would not see them."""
    for handler in logger.handlers:
        for old in [f for f in handler.filters if isinstance(f, _NoiseFilter)]:
            handler.removeFilter(old)
        handler.addFilter(_NoiseFilter(quiet))


def setup_output(*, quiet: bool, resuming: bool = False) -> None:
    """Before ``ray.init`` and ``Tuner.fit`` in the driver: filter Ray's handlers (ray.init resets
    the level, not the handlers), quiet Optuna, and keep Ray's TensorBoard logger and the
    snapshot warning off (both read from the environment when the Tuner starts).

    A resumed Tuner runs with the callbacks it was created with: one from before tune_callbacks
    has no JSON logger of its own, so there Ray adds its default loggers (TensorBoard's too)."""
    if resuming:
        os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)  # adds only the missing ones
    else:
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # tune_callbacks() adds JSON and CSV
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    _install(logging.getLogger("ray"), quiet)
    if quiet:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


def quiet_worker_logs() -> None:
    """In a trial's process: drop the NOISE lines before Ray forwards them to the driver, and
    the report of a SystemExit Python could not raise (:func:`unraisable_but_exit`)."""
    _install(logging.getLogger("ray"), False)
    sys.unraisablehook = unraisable_but_exit


def unraisable_but_exit(unraisable: Any) -> None:
    """Python's report of an exception it could not raise, except a SystemExit: Ray ends a trial's
    worker (Ctrl-C, a PBT pause) with SIGTERM, whose handler raises SystemExit wherever the
    worker is; inside a finalizer (a weakref callback) Python can only print it ("Exception
    ignored in ... SystemExit: 1", a traceback in the driver's log). The worker ends either way."""
    if not isinstance(unraisable.exc_value, SystemExit):
        sys.__unraisablehook__(unraisable)


class SilentReporter(TuneTerminalReporter):
    """Tune's reporter with nothing to say: the first one in the callbacks is the one Tune shows
    its experiment banner and heartbeat tables with; the default one it adds is silent at
    verbose=0 except for that banner."""

    def __init__(self, siblings: list[Any] | None = None) -> None:
        super().__init__(AirVerbosity.SILENT, num_samples=1)
        self.siblings = siblings if siblings is not None else []

    # Ray's own ProgressReporter.setup already differs from Callback.setup; this follows the reporter's.
    def setup(  # type: ignore[override]
        self, start_time: float | None = None, total_samples: int | None = None, **kwargs: Any
    ) -> None:
        """Tune gives the run's start time to the first reporter only; the default one it
        appends to the same callback list kept None and crashed (TypeError) printing a retried
        trial's error, ending the search when a worker died (tests/test_faults.py)."""
        super().setup(start_time=start_time, total_samples=total_samples, **kwargs)
        if start_time is not None:
            for cb in self.siblings:
                if cb is not self and isinstance(cb, TuneTerminalReporter):
                    cb.setup(start_time=start_time, total_samples=total_samples, **kwargs)

    def experiment_started(self, *args: Any, **kwargs: Any) -> None:
        pass

    def print_heartbeat(self, *args: Any, **kwargs: Any) -> None:
        pass


def sampled_keys(params: Any) -> tuple[str, ...]:
    """The config keys a space samples (its ranges and choices, inside branches too), which a
    start line shows; fixed values are the same for every trial."""
    out: list[str] = []
    for p in params:
        if hasattr(p, "name"):  # every kind but FixedParam
            out.append(p.key)
        for _, sub in getattr(p, "branches", ()):
            out += sampled_keys(sub)
    return tuple(out)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class StatusLines(Callback):
    """One line per trial event and a summary every ``every_s`` seconds (and at the end).

    A trial is counted once: PBT stops and starts its members at every perturbation (a line only
    when its values changed), a resumed search starts its unfinished trials again (``resumed at N
    images``), and the trials a resumed search restored finished count as done."""

    values: dict[str, str]  # trial id -> the values its last start line showed
    here: set[str]  # trials this driver started
    adopted: bool  # the trials a resumed search restored are counted

    def __init__(self, *, trials: int, budget_images: int, objective: Objective, shown: tuple[str, ...] = (),
                 every_s: float = 30.0) -> None:
        self.trials, self.budget, self.objective = trials, budget_images, objective
        self.shown = shown  # the sampled keys a start line names (all when empty)
        self.every_s = every_s
        self.started = time.time()
        self.last_summary = self.started
        self.images: dict[str, int] = {}
        self.scores: dict[str, float] = {}  # trial id -> its best score
        self.ended: dict[str, TrialStatus] = {}  # trial id -> completed | stopped | failed
        self._best: tuple[str, float] | None = None  # (trial id, score) of the best score so far
        self.running: set[str] = set()
        self.n_started = 0
        self.__setstate__({})

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Tuner.restore brings back the callbacks it pickled; one pickled before the objective
        was one object kept ``metric`` and ``mode``, and plain strings for statuses; one pickled
        before the restored trials were counted lacks what counts them (``__init__`` passes {})."""
        if "objective" not in state and "metric" in state:
            state["objective"] = Objective(state.pop("metric"), Direction(state.pop("mode")))
        state["ended"] = {tid: TrialStatus(s) for tid, s in state.get("ended", {}).items()}
        self.__dict__.update(state)
        self.__dict__.setdefault("values", {})
        self.__dict__.setdefault("here", set())
        self.__dict__.setdefault("adopted", False)

    @property
    def metric(self) -> str:
        return self.objective.metric

    # ------------------------------------------------------------------ state

    def best(self) -> tuple[str, float] | None:
        """The best score so far and its trial: kept as scores arrive (a line per trial end must
        not look at every trial of a search of thousands)."""
        top = self.__dict__.get("_best")
        if top is None and self.scores:  # a StatusLines pickled before it kept one
            tid = min(self.scores, key=lambda t: self.objective.key(self.scores[t]))
            top = self._best = (tid, self.scores[tid])
        return top

    def _say(self, text: str) -> None:
        print(f"[{_clock(time.time() - self.started)}] {text}", flush=True)

    def _adopt(self, trials: list[Any]) -> None:
        """What the trials Tune restored (a resumed search) did before: their images, best
        scores, and how the finished ones ended."""
        if self.adopted:
            return
        self.adopted = True
        for trial in trials:
            last = getattr(trial, "last_result", None) or {}
            if not last and str(trial.status) not in ("TERMINATED", "ERROR"):
                continue  # not started yet
            tid = trial.trial_id
            self.values[tid] = self._values(trial)
            self.n_started += 1
            self.images[tid] = int(last.get("images_seen", 0) or 0)
            best = ((getattr(trial, "metric_analysis", None) or {}).get(self.metric) or {}).get(self.objective.mode)
            if finite(best) or finite(best := last.get(self.metric)):
                self.scores[tid] = float(best)
            if str(trial.status) == "TERMINATED":
                self.ended[tid] = TrialStatus.COMPLETED if self.images[tid] >= self.budget else TrialStatus.STOPPED
            elif str(trial.status) == "ERROR":
                self.ended[tid] = TrialStatus.FAILED

    def _values(self, trial: Any) -> str:
        return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in trial_params(trial.config).items() if not self.shown or k in self.shown)

    def summary(self) -> str:
        counts = {s: sum(v is s for v in self.ended.values())
                  for s in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.FAILED)}
        done = len(self.ended)
        best = self.best()
        best_s = f"best {self.metric} {best[1]:.4g} (trial {best[0]})" if best else f"no {self.metric} yet"
        elapsed = time.time() - self.started
        # Progress in trials: finished ones count whole, running ones by the budget they reached.
        progress = done + sum(min(self.images.get(t, 0) / max(self.budget, 1), 1.0) for t in self.running)
        left = elapsed * (self.trials - progress) / progress if progress > 0 else math.nan
        eta = f"about {_clock(left)} left" if math.isfinite(left) and done < self.trials else "ETA unknown"
        if done >= self.trials:
            eta = "finished"
        return (f"{done}/{self.trials} done ({counts[TrialStatus.COMPLETED]} completed, "
                f"{counts[TrialStatus.STOPPED]} {TrialStatus.STOPPED.label}, {counts[TrialStatus.FAILED]} failed), "
                f"{len(self.running)} running; {best_s}; elapsed {_clock(elapsed)}, {eta}")

    # ------------------------------------------------------------------ Tune's hooks

    def setup(self, stop: Stopper | None = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self.started = self.last_summary = time.time()  # a resumed search's clock starts again

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._adopt(trials)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._adopt(trials)
        tid = trial.trial_id
        self.running.add(tid)
        values = self._values(trial)
        if tid not in self.values:
            self.n_started += 1
            self._say(f"trial {tid} started ({self.n_started}/{self.trials}): {values}".rstrip(": "))
        elif values != self.values[tid]:  # PBT gave it another member's checkpoint and new values
            self._say(f"trial {tid} goes on with new values (PBT): {values}")
        elif self.images.get(tid) and tid not in self.here:
            self._say(f"trial {tid} resumed at {self.images[tid]} images")
        self.values[tid] = values
        self.here.add(tid)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        tid = trial.trial_id
        self.images[tid] = int(result.get("images_seen", 0) or 0)
        value = result.get(self.metric)
        if finite(value) and self.objective.is_better(value, self.scores.get(tid)):
            self.scores[tid] = float(value)
            top = self.best()
            if top is None or self.objective.is_better(value, top[1]):
                self._best = (tid, float(value))

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        tid = trial.trial_id
        self.running.discard(tid)
        images = self.images.get(tid, 0)
        status = TrialStatus.COMPLETED if images >= self.budget else TrialStatus.STOPPED
        self.ended[tid] = status
        score = self.scores.get(tid)
        what = status.label + ("" if status is TrialStatus.COMPLETED else " (scheduler)")
        score_s = f"{self.metric} {score:.4g}" if score is not None else f"no finite {self.metric}"
        best = self.best()
        tail = f" (best {best[1]:.4g}, trial {best[0]})" if best else ""
        self._say(f"trial {tid} {what}: {score_s} after {images} images{tail}")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        tid = trial.trial_id
        self.running.discard(tid)
        self.ended[tid] = TrialStatus.FAILED  # diverged ones too: Ray tells errors apart by trace only
        why = _last_error_line(trial.error_file)
        self._say(f"trial {tid} failed after {self.images.get(tid, 0)} images: {why}")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.time()
        if now - self.last_summary >= self.every_s:
            self.last_summary = now
            self._say(self.summary())

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._adopt(trials)  # a resume whose trials had all finished runs no step: none adopted yet
        self._say(self.summary())


def _last_error_line(path: str | None) -> str:
    """The exception line of a trial's error.txt (its last non-empty line)."""
    try:
        lines = [ln.strip() for ln in Path(path or "").read_text().splitlines() if ln.strip()]
    except OSError:
        return "see its error.txt"
    return lines[-1][:300] if lines else "see its error.txt"


class TrialFolders(Callback):
    """Keeps each trial's newest sample grid where the searcher attaches it from.

    A trial writes its run on its node (its ``run_dir``, in every report), which Tune syncs to the
    experiment folder only now and then and may remove before the searcher hears the trial ended.
    Callbacks hear every report, also the last one and the one a scheduler stops the trial on
    (the searcher hears neither): the grid is copied then into a folder of the driver's, and the
    searcher attaches the newest of that copy and the experiment folder's to the Optuna trial."""

    def __init__(self, folders: dict[str, str]) -> None:
        self.folders = folders
        self.held: Path | None = None  # the driver's copies, removed when the experiment ends

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        from search.study_db import keep_newest_grid

        samples = Path(str(result.get("run_dir") or "")) / "samples"
        if not result.get("run_dir") or not samples.is_dir():  # a trial on another node
            return
        if self.held is None:
            self.held = Path(tempfile.mkdtemp(prefix="gansearch-grids-"))
        keep_newest_grid([samples], self.held / trial.trial_id / RUN_SUBDIR / "samples")
        self.folders[trial.trial_id] = str(self.held / trial.trial_id)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.held is not None:
            shutil.rmtree(self.held, ignore_errors=True)
            self.held = None


def tune_callbacks(user: list[Any], *, quiet: bool, trials: int, budget_images: int, objective: Objective,
                   shown: tuple[str, ...] = (), trial_dirs: dict[str, str] | None = None,
                   pbt: bool = False) -> list[Any]:
    """The Tuner's callbacks: Tune's JSON (result.json, which every reader reads) and CSV loggers,
    the status lines (and a silent reporter) when quiet, the trial folders for ``trial_dirs``,
    then the caller's. The loggers drop the rows a resumed trial's repeated reports replace and
    keep the rows a PBT restart would lose (recovery.py). PBT here is synchronous: a trial takes
    another's checkpoint at the images it stands at itself, so its next report comes after its
    last one and nothing of its own history is replaced."""
    out: list[Any] = [ResultJsonLog(), ProgressCsvLog()]
    if trial_dirs is not None:
        out.append(TrialFolders(trial_dirs))
    if quiet:
        out += [SilentReporter(out), StatusLines(trials=trials, budget_images=budget_images, objective=objective,
                                              shown=shown)]
    out += user  # one list: Tune appends its default reporter to it, which SilentReporter then sets up
    return out
