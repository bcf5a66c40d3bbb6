"""Seed 004's balance controller: pause whichever side is winning, as its own small object.

It reads one named statistic, the discriminator error (seed 004's ``(error1 + error2) / 2``:
D's surprise on real plus fake, and on fake alone), smooths it, and decides. Below ``lower`` the
discriminator is winning, so it pauses; above ``upper`` the generator pauses. A paused side
resumes only once the smoothed error is ``hysteresis`` back inside the band, which stops the
controller from flapping every step. Both sides are never paused at once. Every pause and resume
is returned as an event for the log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gan_core.config import BalanceConfig


@dataclass
class BalanceController:
    cfg: BalanceConfig
    error: float | None = None  # smoothed discriminator error
    train_d: bool = True
    train_g: bool = True
    updates: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def update(self, d_error: float, step: int) -> list[dict[str, Any]]:
        """Feed one raw error; returns the decisions taken at this step (usually none)."""
        if not self.cfg.enabled or not math.isfinite(d_error):
            return []
        s = self.cfg.smoothing
        self.error = d_error if self.error is None else s * self.error + (1 - s) * d_error
        self.updates += 1
        if self.updates < self.cfg.warmup:
            return []
        lo, hi, h = self.cfg.lower, self.cfg.upper, self.cfg.hysteresis
        decisions: list[dict[str, Any]] = []

        def decide(side: str, action: str, why: str) -> None:
            event = {"step": step, "side": side, "action": action, "error": self.error, "why": why}
            decisions.append(event)
            self.events.append(event)

        e = self.error
        if self.train_d and e < lo and self.train_g:
            self.train_d = False
            decide("d", "pause", f"error {e:.3f} < lower {lo}: discriminator winning")
        elif not self.train_d and e > lo + h:
            self.train_d = True
            decide("d", "resume", f"error {e:.3f} > lower+hysteresis {lo + h:.3f}")
        if self.train_g and e > hi and self.train_d:
            self.train_g = False
            decide("g", "pause", f"error {e:.3f} > upper {hi}: generator winning")
        elif not self.train_g and e < hi - h:
            self.train_g = True
            decide("g", "resume", f"error {e:.3f} < upper-hysteresis {hi - h:.3f}")
        return decisions

    def state(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "train_d": self.train_d,
            "train_g": self.train_g,
            "updates": self.updates,
        }

    def state_dict(self) -> dict[str, Any]:
        return {**self.state(), "events": list(self.events)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.error = state["error"]
        self.train_d = state["train_d"]
        self.train_g = state["train_g"]
        self.updates = state["updates"]
        self.events = list(state.get("events", []))
