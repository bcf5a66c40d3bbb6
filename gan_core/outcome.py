"""How a training run ended: ``RunStatus`` and ``TrainResult`` (no torch here: a search's
experiment records derive their statuses from these without loading a model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class RunStatus(StrEnum):
    """How a training run ended (a search's TrialStatus is derived from it)."""

    COMPLETED = "completed"  # trained its whole budget
    STOPPED = "stopped"  # stopped early: a signal, a caller's should_stop, a scheduler
    DIVERGED = "diverged"  # a NaN or inf in a loss, a gradient or a weight


@dataclass
class TrainResult:
    status: RunStatus
    reason: str = ""
    step: int = 0
    images_seen: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
