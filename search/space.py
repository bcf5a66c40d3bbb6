"""Search spaces: a small YAML language compiled to an Optuna define-by-run function.

A space names a base config (a preset or a config file), a budget in images, an objective, and
``params``: dotted config keys (``optim.d.lr``) mapped to a range, a list of choices or a fixed
value. A choice may open conditional sub-spaces with ``when`` (parameters that exist for one
architecture or loss only). spaces/README.md documents the language; in short::

    base: mnist-dcgan
    budget: {images: 256000, eval_every: 32000, grace_images: 64000}
    objective: {metric: score, mode: min}
    params:
      optim.d.lr: {float: [1.0e-5, 1.0e-2], log: true}
      train.batch_size: {choice: [32, 64, 128]}
      eval.n: 1000                                  # a fixed value
      model.arch:
        choice: [mlp, dcgan-upsample]
        when:
          mlp: {model.g_depth: {int: [1, 4]}}

Everything is checked against the typed config tree when the file is loaded (unknown keys,
wrong types, ``low >= high``, ``log`` with a bound <= 0, empty choices, unknown presets,
architectures or losses), and a dry run of random draws is validated into ``Config`` too, so a
bad space is refused with one line naming the file, the key path and the valid options before
Ray starts. No Ray here: search/tune.py is the only module that imports it.

Example::

    space = load_space("spaces/quick.yaml")
    fn = space.define_by_run(seed=0)       # give to OptunaSearch(space=fn, ...)
    cfg = space.config_for(trial_params)   # a trial's sampled values -> a validated Config
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan_core.config import (
    Config,
    from_dict,
    load_config,
    load_preset,
    preset_names,
    set_path,
    to_dict,
)
from gan_core.errors import ConfigError, GansearchError

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
SCHEDULERS = ("asha", "pbt", "fifo")
TOP_KEYS = ("name", "description", "base", "budget", "objective", "params", "points", "search")
BUDGET_KEYS = ("images", "eval_every", "grace_images")
OBJECTIVE_KEYS = ("metric", "mode")
SEARCH_KEYS = ("trials", "time_budget_s", "scheduler", "reduction_factor", "n_startup_trials",
               "pbt_interval_images", "cpus_per_trial", "max_concurrent")
KINDS = ("float", "int", "choice")
DRY_RUN_DRAWS = 48

Scalar = str | int | float | bool | None


# ----------------------------------------------------------------------------- the tree


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
            if _same(choice, value):
                return scope
        return ()


Param = FloatParam | IntParam | FixedParam | ChoiceParam


@dataclass(frozen=True)
class Budget:
    images: int  # per trial: train.images, and ASHA's max_t
    eval_every: int  # images between reports (eval.every)
    grace_images: int  # ASHA's grace period: no trial is stopped before this


@dataclass(frozen=True)
class Objective:
    metric: str = "score"
    mode: str = "min"


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

    def base_point(self) -> dict[str, Any]:
        """The base config's own values as an Optuna point (evaluated first). Values outside a
        range or not among the choices are left out, so Optuna samples them."""
        values = _flat(to_dict(self.base_config))
        point: dict[str, Any] = {}
        _point_of(self.params, values, point, strict=False, where=self.path)
        return point

    def all_points(self) -> list[dict[str, Any]]:
        """Points to evaluate first: the base preset, then the file's ``points``."""
        out = [self.base_point()]
        for p in self.points:
            if p not in out:
                out.append(p)
        return out

    def pbt_mutable(self) -> list[Param]:
        """Top-level ranges and choices PBT may perturb in a running trial (not the optimiser's
        kind: its state cannot carry over)."""
        return [p for p in self.params
                if not isinstance(p, FixedParam) and p.key.startswith(PBT_MUTABLE_PREFIXES)
                and not p.key.endswith(".name") and not (isinstance(p, ChoiceParam) and p.branches)]

    def n_startup_trials(self, trials: int) -> int:
        if self.search.n_startup_trials is not None:
            return self.search.n_startup_trials
        return min(10, max(2, trials // 3))

    def describe(self) -> str:
        lines = [f"space {self.name} ({self.path}): base {self.base}, "
                 f"{self.budget.images} images per trial, evaluated every {self.budget.eval_every}, "
                 f"objective {self.objective.metric} ({self.objective.mode})"]
        lines += _describe(self.params, "  ")
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

    def __call__(self, trial: Any) -> dict[str, Any]:
        fixed: dict[str, Any] = {}
        _suggest(trial, self.params, fixed)
        fixed["train.seed"] = trial_seed(self.seed, trial.number)
        return fixed


def _suggest(trial: Any, params: tuple[Param, ...], fixed: dict[str, Any]) -> None:
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


def trial_seed(search_seed: int, number: int) -> int:
    """A 31-bit seed for trial ``number`` of a search seeded ``search_seed``."""
    digest = hashlib.sha256(f"gansearch:{search_seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def key_of(name: str) -> str:
    """Optuna name -> config key: ``model.g_depth@model.arch=mlp`` -> ``model.g_depth``."""
    return name.split("@", 1)[0]


# ----------------------------------------------------------------------------- loading


def load_space(path: str | Path, *, dry_run: int = DRY_RUN_DRAWS, build_models: bool = False) -> Space:
    """Read and validate a space file; every problem is one GansearchError line naming the file,
    the key path and the valid options. ``build_models`` also builds G and D (on torch's meta
    device: shapes only, no memory) for the base point and the dry run's distinct architectures,
    so e.g. a transposed-conv depth the image size cannot take is refused before Ray starts."""
    where = str(path)
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise GansearchError(f"{where}: no such space file") from None
    except OSError as exc:
        raise GansearchError(f"{where}: cannot read ({exc.strerror})") from None
    space = parse_space(text, where, base_dir=p.parent, dry_run=dry_run)
    if build_models:
        check_models(space, dry_run)
    return space


def parse_space(text: str, where: str = "<space>", *, base_dir: Path | None = None,
                base_config: Config | None = None, dry_run: int = DRY_RUN_DRAWS) -> Space:
    """Parse a space file's text. ``base_config`` replaces loading ``base`` (a resumed search uses
    the base config it saved, so a moved or edited base file cannot change it)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GansearchError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GansearchError(f"{where}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    _no_unknown(data, TOP_KEYS, where, "")
    for key in ("base", "budget", "params"):
        if key not in data:
            raise GansearchError(f"{where}: {key}: missing (a space needs base, budget and params)")

    if base_config is not None:
        base, base_cfg = str(data["base"]), base_config
    else:
        base, base_cfg = _load_base(data["base"], where, base_dir)
    budget = _budget(data["budget"], where)
    objective = _objective(data.get("objective") or {}, where)
    search = _search_defaults(data.get("search") or {}, where)
    if search.scheduler == "asha" and budget.grace_images > budget.images:
        raise GansearchError(f"{where}: budget.grace_images: {budget.grace_images} exceeds "
                             f"budget.images ({budget.images})")
    if not isinstance(data["params"], dict) or not data["params"]:
        raise GansearchError(f"{where}: params: expected a mapping of config keys (e.g. "
                             "optim.d.lr) to ranges, choices or values")
    space = Space(
        path=where,
        name=str(data.get("name") or Path(where).stem),
        base=base,
        base_config=base_cfg,
        budget=budget,
        objective=objective,
        params=(),
        search=search,
        description=str(data.get("description") or ""),
        text=text,
    )
    checker = _Checker(space, where)
    space.params = checker.scope(data["params"], "params", conditions=(), taken=set())
    space.points = [_user_point(space, p, i, where) for i, p in enumerate(_as_list(data.get("points"), where))]
    if dry_run:
        _drawn(space, dry_run)
    return space


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise GansearchError(f"{where}: points: expected a list of mappings (config key: value)")
    return value


def _no_unknown(data: dict[str, Any], valid: tuple[str, ...], where: str, prefix: str) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise GansearchError(f"{where}: {prefix}{unknown[0]}: unknown key (valid: {', '.join(valid)})")


def _load_base(value: Any, where: str, base_dir: Path | None) -> tuple[str, Config]:
    if not isinstance(value, str) or not value:
        raise GansearchError(f"{where}: base: expected a preset name ({', '.join(preset_names())}) "
                             "or a config file")
    if value in preset_names():
        return value, load_preset(value)
    if value.endswith((".yaml", ".yml")):
        path = Path(value)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if path.exists():
            try:
                return value, load_config(path)
            except ConfigError as exc:
                raise GansearchError(f"{where}: base: {exc}") from None
    raise GansearchError(f"{where}: base: {value!r} is not one of {', '.join(preset_names())} "
                         "(or an existing config .yaml)")


def _positive_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value <= 0:
        raise GansearchError(f"{where}: {key}: expected a positive integer, got {value!r}")
    return int(value)


def _budget(data: Any, where: str) -> Budget:
    if not isinstance(data, dict):
        raise GansearchError(f"{where}: budget: expected a mapping with {', '.join(BUDGET_KEYS)}")
    _no_unknown(data, BUDGET_KEYS, where, "budget.")
    for key in ("images", "eval_every"):
        if key not in data:
            raise GansearchError(f"{where}: budget.{key}: missing (images per trial and images "
                                 "between evaluations are required)")
    images = _positive_int(data["images"], where, "budget.images")
    every = _positive_int(data["eval_every"], where, "budget.eval_every")
    if every > images:
        raise GansearchError(f"{where}: budget.eval_every: {every} exceeds budget.images ({images})")
    grace = _positive_int(data.get("grace_images", every), where, "budget.grace_images")
    if grace < every:
        raise GansearchError(f"{where}: budget.grace_images: {grace} is below budget.eval_every "
                             f"({every}); a trial reports only every eval_every images")
    return Budget(images, every, grace)


def _objective(data: Any, where: str) -> Objective:
    if not isinstance(data, dict):
        raise GansearchError(f"{where}: objective: expected a mapping with metric and mode")
    _no_unknown(data, OBJECTIVE_KEYS, where, "objective.")
    metric = data.get("metric", "score")
    mode = data.get("mode", "min")
    if not isinstance(metric, str) or not metric:
        raise GansearchError(f"{where}: objective.metric: expected a metric name such as score")
    if mode not in ("min", "max"):
        raise GansearchError(f"{where}: objective.mode: {mode!r} is not one of min, max")
    return Objective(metric, mode)


def _search_defaults(data: Any, where: str) -> SearchDefaults:
    if not isinstance(data, dict):
        raise GansearchError(f"{where}: search: expected a mapping with {', '.join(SEARCH_KEYS)}")
    _no_unknown(data, SEARCH_KEYS, where, "search.")
    out: dict[str, Any] = {}
    for key in ("trials", "pbt_interval_images", "max_concurrent", "n_startup_trials"):
        if data.get(key) is not None:
            if key == "n_startup_trials" and data[key] == 0:
                out[key] = 0
                continue
            out[key] = _positive_int(data[key], where, f"search.{key}")
    for key in ("time_budget_s", "cpus_per_trial"):
        if data.get(key) is not None:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise GansearchError(f"{where}: search.{key}: expected a positive number, got {v!r}")
            out[key] = float(v)
    if "scheduler" in data:
        if data["scheduler"] not in SCHEDULERS:
            raise GansearchError(f"{where}: search.scheduler: {data['scheduler']!r} is not one of "
                                 f"{', '.join(SCHEDULERS)}")
        out["scheduler"] = data["scheduler"]
    if "reduction_factor" in data:
        rf = data["reduction_factor"]
        if isinstance(rf, bool) or not isinstance(rf, (int, float)) or rf <= 1:
            raise GansearchError(f"{where}: search.reduction_factor: expected a number > 1, got {rf!r}")
        out["reduction_factor"] = float(rf)
    return SearchDefaults(**out)


# ----------------------------------------------------------------------------- params


def _leaf_types() -> dict[str, Any]:
    """``{"optim.d.lr": float, "optim.d.clip_value": float | None, ...}`` from the dataclasses."""
    out: dict[str, Any] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
            else:
                out[f"{prefix}{f.name}"] = tp

    walk(Config, "")
    return out


def _base_types(tp: Any) -> set[type]:
    """The non-None types a leaf accepts: ``float | None`` -> {float}."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return {a for a in args if a is not type(None)}


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 (YAML keys and Optuna choices mix them)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


class _Checker:
    def __init__(self, space: Space, where: str) -> None:
        self.space = space
        self.where = where
        self.types = _leaf_types()

    def fail(self, path: str, msg: str) -> GansearchError:
        return GansearchError(f"{self.where}: {path}: {msg}")

    def check_key(self, key: Any, path: str) -> None:
        if not isinstance(key, str):
            raise self.fail(path, f"expected a dotted config key such as optim.d.lr, got {key!r}")
        if key in self.types:
            if key in RESERVED:
                raise self.fail(path, f"may not be searched ({RESERVED[key]})")
            return
        # Name the deepest valid prefix and its children, as gan_core.config.set_path does.
        data: Any = to_dict(Config())
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(data, dict) or part not in data:
                valid = ", ".join(data) if isinstance(data, dict) else "none (a value, not a section)"
                here = ".".join(parts[: i + 1])
                raise self.fail(path, f"unknown config key {here!r} (valid: {valid})")
            data = data[part]
        raise self.fail(path, f"{key!r} is a section, not a value (valid: {', '.join(data)})")

    def check_value(self, key: str, value: Any, path: str) -> None:
        """One value for one key, validated into the typed tree on top of the base config."""
        if key == "eval.objective":
            from gan_core.metrics import metric_names

            if value not in metric_names():
                raise self.fail(path, f"{value!r} is not one of {', '.join(metric_names())}")
        data = self.space.base_dict()
        set_path(data, key, value)
        try:
            from_dict(data)
        except ConfigError as exc:
            msg = str(exc)
            if msg.startswith(key + ": "):
                msg = msg[len(key) + 2:]
            raise self.fail(path, msg) from None

    def scope(self, data: dict[str, Any], path: str, conditions: tuple[str, ...],
              taken: set[str]) -> tuple[Param, ...]:
        """Parse one scope. ``taken``: keys set by enclosing scopes (a key is set at most once on
        any path through the tree)."""
        params: list[Param] = []
        here: set[str] = set()
        subtree_keys: list[set[str]] = []
        for key in data:
            p_path = f"{path} > {key}"
            self.check_key(key, p_path)
            if key in taken or key in here:
                raise self.fail(p_path, "set twice (once per scope; a conditional key may not "
                                        "repeat an enclosing or sibling key)")
            here.add(key)
        for key, spec in data.items():
            p_path = f"{path} > {key}"
            name = key if not conditions else f"{key}@{','.join(conditions)}"
            param = self.param(key, name, spec, p_path, conditions, taken | here)
            if isinstance(param, ChoiceParam) and param.branches:
                sub = set().union(*(_keys(scope) for _, scope in param.branches))
                for other in subtree_keys:
                    both = sorted(sub & other)
                    if both:
                        raise self.fail(p_path, f"{both[0]} is set in the branches of two choices "
                                                "of one scope (nest one under the other)")
                subtree_keys.append(sub)
            params.append(param)
        return tuple(params)

    def param(self, key: str, name: str, spec: Any, path: str, conditions: tuple[str, ...],
              taken: set[str]) -> Param:
        accepts = _base_types(self.types[key])
        if not isinstance(spec, dict):
            if isinstance(spec, (list, tuple)) and list in {typing.get_origin(t) for t in accepts}:
                spec = ",".join(map(str, spec))  # a list-valued key (augment.policy) fixed to a list
            elif isinstance(spec, (list, tuple)):
                raise self.fail(path, "a list is not a value; write {choice: [...]} to search over it")
            self.check_value(key, spec, path)
            return FixedParam(key, spec)
        kinds = [k for k in KINDS if k in spec]
        if len(kinds) != 1:
            raise self.fail(path, f"expected exactly one of {', '.join(KINDS)} (or a plain value), "
                                  f"got keys {', '.join(map(str, spec)) or 'none'}")
        kind = kinds[0]
        valid = {"float": ("float", "log", "step"), "int": ("int", "log", "step"),
                 "choice": ("choice", "when")}[kind]
        unknown = [k for k in spec if k not in valid]
        if unknown:
            raise self.fail(path, f"{unknown[0]}: unknown key for a {kind} (valid: {', '.join(valid)})")
        if kind == "choice":
            return self.choice(key, name, spec, path, conditions, taken)
        if kind == "float" and float not in accepts:
            wanted = "int" if int in accepts else "choice"
            raise self.fail(path, f"{key} is {_type_word(accepts)}; use {{{wanted}: ...}}")
        if kind == "int" and not accepts & {int, float}:
            raise self.fail(path, f"{key} is {_type_word(accepts)}; use {{choice: [...]}}")
        bounds = spec[kind]
        if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
            raise self.fail(path, f"{kind}: expected [low, high], got {bounds!r}")
        low, high = bounds
        if kind == "int" and not all(float(b).is_integer() for b in bounds):
            raise self.fail(path, f"int: bounds must be integers, got {bounds!r}")
        if not low < high:
            raise self.fail(path, f"{kind}: low must be < high, got [{low}, {high}]")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise self.fail(path, f"log: expected true or false, got {log!r}")
        if log and low <= 0:
            raise self.fail(path, f"log: needs bounds > 0, got [{low}, {high}]")
        step = spec.get("step")
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
                raise self.fail(path, f"step: expected a positive number, got {step!r}")
            if log:
                raise self.fail(path, "step: cannot be combined with log: true (Optuna samples "
                                      "log ranges continuously)")
            if kind == "int" and not float(step).is_integer():
                raise self.fail(path, f"step: an int range needs an integer step, got {step!r}")
        for b in (low, high):
            self.check_value(key, int(b) if kind == "int" else float(b), path)
        if kind == "float":
            return FloatParam(key, name, float(low), float(high), log, None if step is None else float(step))
        return IntParam(key, name, int(low), int(high), log, int(step or 1))

    def choice(self, key: str, name: str, spec: dict[str, Any], path: str,
               conditions: tuple[str, ...], taken: set[str]) -> ChoiceParam:
        choices = spec["choice"]
        if not isinstance(choices, list) or not choices:
            raise self.fail(path, f"choice: expected a non-empty list of values, got {choices!r}")
        for c in choices:
            if isinstance(c, (dict, list)):
                hint = (" (a list-valued key takes comma-separated strings: 'translation,cutout')"
                        if isinstance(c, list) else "")
                raise self.fail(path, f"choice: {c!r} is not a plain value{hint}")
            self.check_value(key, c, path)
        for i, c in enumerate(choices):
            if any(_same(c, d) for d in choices[:i]):
                raise self.fail(path, f"choice: {c!r} is listed twice")
        when = spec.get("when")
        branches: list[tuple[Scalar, tuple[Param, ...]]] = []
        if when is not None:
            if not isinstance(when, dict) or not when:
                raise self.fail(path, "when: expected a mapping from a choice to its params")
            for label, sub in when.items():
                match = [c for c in choices if _same(c, label) or str(c) == str(label)]
                if not match:
                    raise self.fail(f"{path} > when", f"{label!r} is not one of the choices "
                                                      f"({', '.join(map(str, choices))})")
                b_path = f"{path} > when {label}"
                if sub is None:
                    continue
                if not isinstance(sub, dict):
                    raise self.fail(b_path, "expected a mapping of config keys to ranges, choices or values")
                cond = conditions + (f"{key}={match[0]}",)
                branches.append((match[0], self.scope(sub, b_path, cond, taken)))
        return ChoiceParam(key, name, tuple(choices), tuple(branches))


def _type_word(accepts: set[type]) -> str:
    names = sorted(t.__name__ for t in accepts)
    return "a " + " or ".join(names) + " key"


def _keys(params: tuple[Param, ...]) -> set[str]:
    out: set[str] = set()
    for p in params:
        out.add(p.key)
        if isinstance(p, ChoiceParam):
            for _, scope in p.branches:
                out |= _keys(scope)
    return out


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Config keys -> values; a list value becomes the comma-separated string a choice holds."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
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


def _point_of(params: tuple[Param, ...], values: dict[str, Any], point: dict[str, Any], *,
              strict: bool, where: str) -> None:
    """Walk the active scopes for ``values`` (config key -> value), writing Optuna names."""
    for p in params:
        if isinstance(p, FixedParam) or p.key not in values:
            continue
        v = values[p.key]
        if isinstance(p, ChoiceParam):
            match = [c for c in p.choices if _same(c, v)]
            if match:
                point[p.name] = match[0]
                _point_of(p.branch(match[0]), values, point, strict=strict, where=where)
            elif strict:
                raise GansearchError(f"{where}: {p.key}: {v!r} is not one of "
                                     f"{', '.join(map(str, p.choices))}")
        elif _in_range(p, v):
            point[p.name] = int(v) if isinstance(p, IntParam) else float(v)
        elif strict:
            raise GansearchError(f"{where}: {p.key}: {v!r} is outside [{p.low}, {p.high}]")


def _user_point(space: Space, data: dict[str, Any], index: int, where: str) -> dict[str, Any]:
    """A ``points`` entry (plain config keys) -> an Optuna point; unset keys keep the base value."""
    pwhere = f"{where}: points[{index}]"
    searched = _keys(space.params)
    for key in data:
        if key not in searched:
            raise GansearchError(f"{pwhere}: {key}: not a searched key (valid: {', '.join(sorted(searched))})")
    values = {**_flat(to_dict(space.base_config)), **data}
    point: dict[str, Any] = {}
    _point_of(space.params, values, point, strict=False, where=pwhere)
    # Keys the point names must have landed in an active scope with a valid value.
    landed = {key_of(n) for n in point}
    for key, v in data.items():
        if key not in landed:
            raise GansearchError(f"{pwhere}: {key}: {v!r} is outside its range or choices, or its "
                                 "branch is not active for this point")
    return point


def random_draws(space: Space, n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` draws of the space's define-by-run function by Optuna's seeded RandomSampler, the
    space's points first, as (suggested values, fixed values). The one seeded ask/tell loop: the
    dry run validates these, and PBT (which Ray will not pair with a searcher) starts from them."""
    import optuna

    fn = space.define_by_run(seed)
    was = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for point in space.all_points():
            study.enqueue_trial(point)
        for _ in range(n):
            trial = study.ask()
            fixed = fn(trial)  # suggests first: trial.params is empty until it has run
            out.append((dict(trial.params), fixed))
            study.tell(trial, 0.0)
    finally:
        optuna.logging.set_verbosity(was)
    return out


def _drawn(space: Space, draws: int) -> list[tuple[Config, dict[str, Any]]]:
    """The points and ``draws`` seeded random draws as (Config, drawn values); a draw that does
    not validate into Config (e.g. balance.lower above balance.upper, which no single key's
    check can see) is refused here, before Ray starts."""
    out = []
    for params, fixed in random_draws(space, len(space.all_points()) + draws, seed=0):
        try:
            out.append((space.config_for({**params, **fixed}), params))
        except ConfigError as exc:
            raise GansearchError(f"{space.path}: params: a drawn combination is invalid: {exc} "
                                 f"(drawn: {_shown(params)})") from None
    return out


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{key_of(k)}={v}" for k, v in params.items()) or "base values"


def check_models(space: Space, draws: int = DRY_RUN_DRAWS) -> None:
    """Build G and D on the meta device for each distinct (data, model) of the points and draws,
    and check the augmentation policy against the data (``color`` needs RGB)."""
    import torch

    from gan_core import models
    from gan_core.augment import check_policy
    from gan_core.data import load_dataset
    from gan_core.errors import DataError

    seen = set()
    for cfg, params in _drawn(space, draws):
        key = (repr(cfg.data), repr(cfg.model), tuple(cfg.augment.policy))
        if key in seen:
            continue
        seen.add(key)
        try:
            data = load_dataset(cfg.data, "train")
        except DataError as exc:
            raise GansearchError(f"{space.path}: base {space.base}: {exc}") from None
        try:
            with torch.device("meta"):
                models.build(cfg.model, data.shape, data.num_classes)
            check_policy(cfg.augment.policy, data.shape, cfg.data.name)
        except GansearchError as exc:
            raise GansearchError(f"{space.path}: params: a drawn combination cannot be built: {exc} "
                                 f"(drawn: {_shown(params)})") from None


def _describe(params: tuple[Param, ...], indent: str) -> list[str]:
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
                out += _describe(scope, indent + "    ")
    return out
