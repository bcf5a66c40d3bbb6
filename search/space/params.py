"""The parameter tree of a search space: constants of the YAML language, the parameter kinds
(float, int, choice with conditional branches, fixed), the budget, objective and search
defaults, and the walks over a tree (its keys, a point's Optuna names, a description).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from gan_core.errors import GansearchError

# Keys the space may not set: the budget and the per-trial seed are the search's business.
RESERVED = {
    "train.images": "set by budget.images",
    "eval.every": "set by budget.eval_every",
    "eval.enabled": "a search needs the evaluation (it is the objective)",
    "train.seed": "derived per trial from --seed",
}
# Keys PBT may change in a running trial: none of them changes a weight's shape, the data or
# how images_seen is counted, so a mutated trial resumes from the cloned checkpoint.
PBT_MUTABLE_PREFIXES = (
    "optim.",
    "balance.",
    "train.d_steps",
    "loss.gp_weight",
    "model.dropout",
    "model.g_dropout",
    "model.leaky_slope",
    "model.bn_momentum",
    "augment.",
    "ema.",
    "loss.r1_",
)
# What a PBT trial's config may differ in from the checkpoint it continues, besides what any
# resume allows (gan_core.checkpoint.keys_blocking_resume, which takes this list): the keys PBT
# perturbs, and the seed (a member continues another member's checkpoint under its own seed).
PBT_RESUMABLE = (*PBT_MUTABLE_PREFIXES, "train.seed")
SCHEDULERS = ("asha", "pbt", "fifo")
TOP_KEYS = ("name", "description", "base", "budget", "objective", "params", "points", "search")
BUDGET_KEYS = ("images", "eval_every", "grace_images")
OBJECTIVE_KEYS = ("metric", "mode")
SEARCH_KEYS = ("trials", "time_budget_s", "scheduler", "reduction_factor", "n_startup_trials",
               "pbt_interval_images", "cpus_per_trial", "max_concurrent")
KINDS = ("float", "int", "choice")
DRY_RUN_DRAWS = 48

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class FloatParam:
    key: str  # the config key, e.g. optim.d.lr
    name: str  # the Optuna parameter name (conditional ones carry their branch: k@model.arch=mlp)
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class IntParam:
    key: str
    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class FixedParam:
    key: str
    value: Scalar


@dataclass(frozen=True)
class ChoiceParam:
    key: str
    name: str
    choices: tuple[Scalar, ...]
    branches: tuple[tuple[Scalar, tuple[Param, ...]], ...] = ()  # (choice, sub-scope)

    def branch(self, value: Scalar) -> tuple[Param, ...]:
        for choice, scope in self.branches:
            if same_value(choice, value):
                return scope
        return ()


Param = FloatParam | IntParam | FixedParam | ChoiceParam


@dataclass(frozen=True)
class Budget:
    images: int  # per trial: train.images, and ASHA's max_t
    eval_every: int  # images between reports (eval.every)
    grace_images: int  # ASHA's grace period: no trial is stopped before this


@dataclass(frozen=True)
class SearchDefaults:
    """Defaults for ``gansearch search`` that the space file may set; CLI flags override them."""

    trials: int = 16
    time_budget_s: float | None = None
    scheduler: str = "asha"
    reduction_factor: float = 3.0
    n_startup_trials: int | None = None  # None: min(10, max(2, trials // 3))
    pbt_interval_images: int | None = None  # None: 2 * budget.eval_every
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None


def trial_seed(search_seed: int, number: int) -> int:
    """A 31-bit seed for trial ``number`` of a search seeded ``search_seed``."""
    digest = hashlib.sha256(f"gansearch:{search_seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def key_of(name: str) -> str:
    """Optuna name -> config key: ``model.g_depth@model.arch=mlp`` -> ``model.g_depth``."""
    return name.split("@", 1)[0]


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 (YAML keys and Optuna choices mix them)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def param_keys(params: tuple[Param, ...]) -> set[str]:
    out: set[str] = set()
    for p in params:
        out.add(p.key)
        if isinstance(p, ChoiceParam):
            for _, scope in p.branches:
                out |= param_keys(scope)
    return out


def values_of(params: tuple[Param, ...], key: str) -> list[Any]:
    """Every value ``key`` is fixed to or chosen from anywhere in ``params`` (ranges have none)."""
    out: list[Any] = []
    for p in params:
        if p.key == key and isinstance(p, FixedParam):
            out.append(p.value)
        elif p.key == key and isinstance(p, ChoiceParam):
            out.extend(p.choices)
        if isinstance(p, ChoiceParam):
            for _, scope in p.branches:
                out.extend(values_of(scope, key))
    return out


def flat_values(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Config keys -> values; a list value becomes the comma-separated string a choice holds."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(flat_values(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = ",".join(map(str, v)) if isinstance(v, list) else v
    return out


def _in_range(p: FloatParam | IntParam, v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    if not p.low <= v <= p.high:
        return False
    if isinstance(p, IntParam):
        return float(v).is_integer() and (int(v) - p.low) % p.step == 0
    if p.step is not None:
        k = (v - p.low) / p.step
        return abs(k - round(k)) < 1e-9
    return True


def point_of(params: tuple[Param, ...], values: dict[str, Any], point: dict[str, Any], *,
              strict: bool, where: str) -> None:
    """Walk the active scopes for ``values`` (config key -> value), writing Optuna names."""
    for p in params:
        if isinstance(p, FixedParam) or p.key not in values:
            continue
        v = values[p.key]
        if isinstance(p, ChoiceParam):
            match = [c for c in p.choices if same_value(c, v)]
            if match:
                point[p.name] = match[0]
                point_of(p.branch(match[0]), values, point, strict=strict, where=where)
            elif strict:
                raise GansearchError(f"{where}: {p.key}: {v!r} is not one of "
                                     f"{', '.join(map(str, p.choices))}")
        elif _in_range(p, v):
            point[p.name] = int(v) if isinstance(p, IntParam) else float(v)
        elif strict:
            raise GansearchError(f"{where}: {p.key}: {v!r} is outside [{p.low}, {p.high}]")


def describe_params(params: tuple[Param, ...], indent: str) -> list[str]:
    out = []
    for p in params:
        if isinstance(p, FixedParam):
            out.append(f"{indent}{p.key} = {p.value!r}")
        elif isinstance(p, (FloatParam, IntParam)):
            kind = "float" if isinstance(p, FloatParam) else "int"
            extra = " log" if p.log else (f" step {p.step}" if p.step not in (None, 1) else "")
            out.append(f"{indent}{p.key}: {kind} [{p.low}, {p.high}]{extra}")
        else:
            out.append(f"{indent}{p.key}: one of {', '.join(map(str, p.choices))}")
            for choice, scope in p.branches:
                out.append(f"{indent}  when {choice}:")
                out += describe_params(scope, indent + "    ")
    return out
