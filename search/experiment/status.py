"""A trial's fate: :class:`TrialStatus` and the rule that derives it from what the folder says.

A trial is a training run (gan_core.loop.RunStatus: completed, stopped, diverged) that Ray may
also have given up on (failed) or that has not ended yet (unfinished). The files tell these
apart (error.txt, result.json's ``done``, summary.json), except what only the search's driver
saw when its Tune run ended (:class:`DriverView`), which the writer passes in.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gan_core.loop import RunStatus


class TrialDiverged(RuntimeError):
    """A trial whose losses or weights became NaN/inf: recorded as diverged with this reason."""


DIVERGED_NAME = TrialDiverged.__name__  # how a diverged trial is told from a crashed one


class TrialStatus(StrEnum):
    """A trial's fate as the folder tells it (the part Optuna's TrialState plays for a study).

    The first three are gan_core.loop.RunStatus's, the training run's own end (one value each:
    ``TrialStatus.of_run`` maps them, tests/test_experiment.py checks it)."""

    COMPLETED = "completed"  # trained its whole budget
    STOPPED = "stopped"  # stopped early by the scheduler (ASHA) or the search's time budget
    DIVERGED = "diverged"  # NaN/inf: the trial raised TrialDiverged
    FAILED = "failed"  # crashed more often than the search's --max-failures allows
    # Running, waiting, or cut off by an interrupted driver: the files cannot tell these apart.
    UNFINISHED = "unfinished"

    @classmethod
    def of_run(cls, status: RunStatus) -> TrialStatus:
        """The trial status of a training run that ended as ``status``."""
        return cls(status.value)

    @property
    def label(self) -> str:
        return "stopped early" if self is TrialStatus.STOPPED else self.value

    @property
    def finished(self) -> bool:
        """Trained as far as the search let it: such a trial may be the best."""
        return self in (TrialStatus.COMPLETED, TrialStatus.STOPPED)

    @property
    def scored(self) -> bool:
        """May carry a score that ranks (finished, or still going): not diverged or failed."""
        return self not in (TrialStatus.DIVERGED, TrialStatus.FAILED)


class DriverView(StrEnum):
    """What the search's driver saw of a trial when its Tune run ended (search/raytune maps
    Ray's trial status to it); readers without a driver pass none."""

    ERRORED = "errored"  # Ray gave up on it
    TERMINATED = "terminated"  # ended without an error: its budget, the scheduler, the time budget
    PENDING = "pending"  # never started
    RUNNING = "running"  # cut off
    PAUSED = "paused"  # cut off (PBT pauses members)


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


def derive_status(*, images: int, budget: int | None, done: bool = False, error: str = "",
                  max_failures: int = 0, driver: DriverView | None = None,
                  summary: dict[str, Any] | None = None) -> tuple[TrialStatus, str]:
    """A trial's status and the reason, from what its folder says.

    ``error`` is error.txt (a crash is final once it happened more than ``max_failures`` times,
    Ray's retry rule); ``done`` is the last report's ``done`` (Tune sets it when the scheduler
    stops a trial); ``summary`` is the trial's entry in summary.json, which knows how trials ended
    that the other files cannot tell (the search's time budget). ``driver`` is the driver's view,
    passed only by the writer at the end of a search."""
    of = f" of {budget}" if budget else ""
    # Ray retries a crashed trial max_failures times (forever when negative) before giving up.
    crashed = bool(error) and max_failures >= 0 and failures(error) > max_failures
    if driver is DriverView.ERRORED or (driver is None and crashed and not (budget and images >= budget)):
        reason = error_reason(error) if error else "error (no trace saved)"
        if DIVERGED_NAME in reason:
            return TrialStatus.DIVERGED, reason
        return TrialStatus.FAILED, reason
    if budget and images >= budget:
        return TrialStatus.COMPLETED, ""
    if driver is DriverView.TERMINATED or (driver is None and done):
        if budget is None:  # no space file: the budget is unknown, so is "early"
            return TrialStatus.COMPLETED, ""
        return TrialStatus.STOPPED, f"at {images}{of} images"
    if driver is None and summary and summary.get("status") in set(TrialStatus):
        return TrialStatus(summary["status"]), str(summary.get("reason") or "")
    if driver is not None:
        return TrialStatus.UNFINISHED, f"{driver.value} when the search ended" + \
            (f", at {images}{of} images" if images else "")
    if images:
        return TrialStatus.UNFINISHED, f"running or interrupted at {images}{of} images"
    return TrialStatus.UNFINISHED, "no evaluation reported yet (running, or interrupted before the first)"
