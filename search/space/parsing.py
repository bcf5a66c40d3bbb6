"""Reading a space file: YAML -> ``Space``, every problem one GansearchError line naming the
file, the key path and the valid options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gan_core.config import Config, load_config, load_preset, preset_names, to_dict
from gan_core.errors import ConfigError, GansearchError
from search.objective import Direction, Objective
from search.space.checker import Checker
from search.space.core import Space
from search.space.draws import check_models, draw_configs
from search.space.params import (
    BUDGET_KEYS,
    DRY_RUN_DRAWS,
    OBJECTIVE_KEYS,
    SCHEDULERS,
    SEARCH_KEYS,
    TOP_KEYS,
    Budget,
    SearchDefaults,
    flat_values,
    key_of,
    param_keys,
    point_of,
)


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
    _check_reported(objective.metric, base_cfg, where)
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
    checker = Checker(space, where)
    space.params = checker.scope(data["params"], "params", conditions=(), taken=set())
    space.points = [_user_point(space, p, i, where) for i, p in enumerate(_as_list(data.get("points"), where))]
    if dry_run:
        draw_configs(space, dry_run)
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
    default = Objective()
    metric = data.get("metric", default.metric)
    if not isinstance(metric, str) or not metric:
        raise GansearchError(f"{where}: objective.metric: expected a metric name such as score")
    return Objective(metric, Direction.parse(data.get("mode", default.direction), f"{where}: objective.mode"))


def _check_reported(metric: str, base: Config, where: str) -> None:
    """A metric's base name (cfd) is never a reported key: trials report it with its sample count
    (cfd_2k) and as ``score``; every trial would fail at its first report."""
    from gan_core.metrics import metric_names
    from gan_core.metrics.registry import protocol_name

    if metric in metric_names():
        raise GansearchError(f"{where}: objective.metric: {metric} is reported with its sample count, as "
                             f"{protocol_name(metric, base.eval.n)} (eval.n {base.eval.n}); use that, or score "
                             f"with eval.objective: {metric} in the base config")


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


def _user_point(space: Space, data: dict[str, Any], index: int, where: str) -> dict[str, Any]:
    """A ``points`` entry (plain config keys) -> an Optuna point; unset keys keep the base value."""
    pwhere = f"{where}: points[{index}]"
    searched = param_keys(space.params)
    for key in data:
        if key not in searched:
            raise GansearchError(f"{pwhere}: {key}: not a searched key (valid: {', '.join(sorted(searched))})")
    values = {**flat_values(to_dict(space.base_config)), **data}
    point: dict[str, Any] = {}
    point_of(space.params, values, point, strict=False, where=pwhere)
    # Keys the point names must have landed in an active scope with a valid value.
    landed = {key_of(n) for n in point}
    for key, v in data.items():
        if key not in landed:
            raise GansearchError(f"{pwhere}: {key}: {v!r} is outside its range or choices, or its "
                                 "branch is not active for this point")
    return point
