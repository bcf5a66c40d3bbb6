"""The parsed search space (``Space``): a trial's config from its sampled values, the points
to evaluate first, and the Optuna define-by-run function (``DefineByRun``) Ray's OptunaSearch
calls to sample a trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gan_core.config import Config, from_dict, set_path, to_dict
from search.objective import Objective
from search.space.params import (
    PBT_MUTABLE_PREFIXES,
    Budget,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    SearchDefaults,
    describe_params,
    flat_values,
    key_of,
    point_of,
    trial_seed,
    values_of,
)

if TYPE_CHECKING:
    from optuna.trial import BaseTrial


@dataclass
class Space:
    path: str  # as given, for messages
    name: str
    base: str  # preset name or config file
    base_config: Config
    budget: Budget
    objective: Objective
    params: tuple[Param, ...]
    points: list[dict[str, Any]] = field(default_factory=list)  # user points, as Optuna names
    search: SearchDefaults = field(default_factory=SearchDefaults)
    description: str = ""
    text: str = ""  # the file's text, saved into the experiment for resume and review

    # -------------------------------------------------------------- config of a trial

    def base_dict(self) -> dict[str, Any]:
        """The base config with the budget applied: every trial starts from this."""
        data = to_dict(self.base_config)
        data["train"]["images"] = self.budget.images
        data["eval"]["every"] = self.budget.eval_every
        data["eval"]["enabled"] = True
        return data

    def config_for(self, params: dict[str, Any]) -> Config:
        """A trial's values (Optuna names or plain keys) -> a validated Config.

        Every value is written into the typed tree, so a sampled hyperparameter that the
        config does not know is an error, never silently ignored.
        """
        data = self.base_dict()
        for name, value in params.items():
            set_path(data, key_of(name), value)
        return from_dict(data)

    # -------------------------------------------------------------- Optuna

    def define_by_run(self, seed: int = 0) -> DefineByRun:
        return DefineByRun(self.params, seed)

    def values_of(self, key: str) -> list[Any]:
        """Every value a trial's ``key`` can have that is known before it runs: the base
        config's (unless the space ranges over it) and those the space fixes or chooses."""
        base = flat_values(to_dict(self.base_config)).get(key)
        return list(dict.fromkeys([base, *values_of(self.params, key)]))

    def base_point(self) -> dict[str, Any]:
        """The base config's own values as an Optuna point (evaluated first). Values outside a
        range or not among the choices are left out, so Optuna samples them."""
        values = flat_values(to_dict(self.base_config))
        point: dict[str, Any] = {}
        point_of(self.params, values, point, strict=False, where=self.path)
        return point

    def all_points(self) -> list[dict[str, Any]]:
        """Points to evaluate first: the base preset, then the file's ``points``."""
        out = [self.base_point()]
        for p in self.points:
            if p not in out:
                out.append(p)
        return out

    def pbt_mutable(self) -> list[FloatParam | IntParam | ChoiceParam]:
        """Top-level ranges and choices PBT may perturb in a running trial (not the optimiser's
        kind: its state cannot carry over)."""
        return [p for p in self.params
                if not isinstance(p, FixedParam) and p.key.startswith(PBT_MUTABLE_PREFIXES)
                and not p.key.endswith(".name") and not (isinstance(p, ChoiceParam) and p.branches)]

    def pbt_mutable_or_refuse(self) -> list[FloatParam | IntParam | ChoiceParam]:
        """``pbt_mutable``, or the one-line error of a PBT search with nothing PBT may change."""
        from gan_core.errors import GansearchError

        mutable = self.pbt_mutable()
        if not mutable:
            raise GansearchError(f"{self.path}: --scheduler pbt: no top-level range or choice over "
                                 f"keys PBT may change in a running trial ({', '.join(PBT_MUTABLE_PREFIXES)})")
        return mutable

    def n_startup_trials(self, trials: int) -> int:
        if self.search.n_startup_trials is not None:
            return self.search.n_startup_trials
        return min(10, max(2, trials // 3))

    def describe(self) -> str:
        lines = [f"space {self.name} ({self.path}): base {self.base}, "
                 f"{self.budget.images} images per trial, evaluated every {self.budget.eval_every}, "
                 f"objective {self.objective.metric} ({self.objective.direction})"]
        lines += describe_params(self.params, "  ")
        return "\n".join(lines)


class DefineByRun:
    """The Optuna define-by-run function: only ``trial.suggest_*`` calls, no computation.

    Returns the fixed values of the active scopes and the trial's seed (derived from the search
    seed and the Optuna trial number, so a search is repeatable). A plain class, not a closure,
    so Ray can pickle it into the searcher's state for ``Tuner.restore``.
    """

    def __init__(self, params: tuple[Param, ...], seed: int) -> None:
        self.params = params
        self.seed = seed

    def __call__(self, trial: BaseTrial) -> dict[str, Any]:
        fixed: dict[str, Any] = {}
        _suggest(trial, self.params, fixed)
        fixed["train.seed"] = trial_seed(self.seed, trial.number)
        return fixed


def _suggest(trial: BaseTrial, params: tuple[Param, ...], fixed: dict[str, Any]) -> None:
    for p in params:
        if isinstance(p, FixedParam):
            fixed[p.key] = p.value
        elif isinstance(p, FloatParam):
            trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, IntParam):
            trial.suggest_int(p.name, p.low, p.high, log=p.log, step=p.step)
        else:
            value = trial.suggest_categorical(p.name, list(p.choices))
            _suggest(trial, p.branch(value), fixed)
