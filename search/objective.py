"""What "better" means in a search: one ``Objective(metric, direction)`` for every place that ranks.

A search minimises or maximises one reported number (``objective: {metric, mode}`` in a space
file). The sign, "is this better", "the best of these" and "lower/higher is better" are decided
here once, and every ranking (the leaderboard, the searcher's best point, the status lines, the
confirmation runs, the Lucic et al. study, the plots, the Pareto front) asks this object.
``Direction`` holds the words the space file, gansearch.json, Ray Tune and Optuna's
``optuna.study.StudyDirection`` (:attr:`Objective.study_direction`) agree on. No torch, Ray or
Optuna at import: ``--help`` and review load this module.

Example::

    objective = Objective("cfd_2k", Direction.MIN)
    objective.is_better(4.2, 5.0)            # True
    objective.best_of([5.0, float("nan"), 4.2])   # 4.2
    objective.best_index([5.0, 4.2, 4.2])    # 1: the earliest of equals
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeGuard

from gan_core.errors import GansearchError

if TYPE_CHECKING:
    from optuna.study import StudyDirection


def finite(v: Any) -> TypeGuard[float]:
    """A real number that is not NaN or inf (bools are not scores)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class Direction(StrEnum):
    """Which way a metric is better: Ray Tune's ``mode`` words, as space files and gansearch.json
    write them."""

    MIN = "min"
    MAX = "max"

    @classmethod
    def parse(cls, value: Any, where: str) -> Direction:
        """``value`` as a Direction; anything else is one line naming ``where`` and the choices."""
        if isinstance(value, str) and value in set(cls):
            return cls(value)
        raise GansearchError(f"{where}: {value!r} is not one of {', '.join(cls)}")


@dataclass(frozen=True)
class Objective:
    """The metric a search ranks by and its direction."""

    metric: str = "score"
    direction: Direction = Direction.MIN

    @property
    def mode(self) -> str:
        """"min" or "max": what Ray Tune's ``mode`` and the files say."""
        return self.direction.value

    @property
    def sign(self) -> float:
        """1 when lower is better, -1 when higher is: ``sign * value`` is smaller for better."""
        return 1.0 if self.direction is Direction.MIN else -1.0

    @property
    def better(self) -> str:
        """"lower is better" or "higher is better", for labels and headers."""
        return ("lower" if self.direction is Direction.MIN else "higher") + " is better"

    @property
    def study_direction(self) -> StudyDirection:
        """Optuna's word for the direction (imports Optuna)."""
        from optuna.study import StudyDirection

        return StudyDirection.MINIMIZE if self.direction is Direction.MIN else StudyDirection.MAXIMIZE

    def key(self, value: float) -> float:
        """A sort key: ascending keys put the best value first."""
        return self.sign * float(value)

    def is_better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` is strictly better than ``than`` (anything beats None)."""
        return than is None or self.key(value) < self.key(than)

    def best_index(self, values: Sequence[Any]) -> int | None:
        """The index of the best finite value (the earliest of equals), None when there is none."""
        scored = [(self.key(v), i) for i, v in enumerate(values) if finite(v)]
        return min(scored)[1] if scored else None

    def best_of(self, values: Iterable[Any]) -> float | None:
        """The best finite value, None when there is none."""
        ok = [float(v) for v in values if finite(v)]
        return min(ok, key=self.key) if ok else None

    def worst_of(self, values: Iterable[Any]) -> float | None:
        """The worst finite value, None when there is none (plots draw scoreless trials there)."""
        ok = [float(v) for v in values if finite(v)]
        return max(ok, key=self.key) if ok else None

    def relative(self, value: float, base: float) -> str:
        """``value`` against ``base`` in words: "12% better", "3% worse", "the same" ("better" or
        "worse" alone when ``base`` is 0)."""
        if value == base:
            return "the same"
        word = "better" if self.is_better(value, base) else "worse"
        return f"{abs(value - base) / abs(base):.0%} {word}" if base else word

    def best_first(self, values: Iterable[float]) -> list[float]:
        """``values`` sorted best first."""
        return sorted(values, key=self.key)
