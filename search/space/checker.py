"""Checking a space's ``params`` against the typed config tree: every key must exist and be
searchable, every range, choice and fixed value must validate into ``Config`` on top of the
base config, and conditional branches may not set a key twice on any path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from gan_core.config import Config, from_dict, is_free_key, set_path, to_dict
from gan_core.errors import ConfigError, GansearchError
from search.space.core import Space
from search.space.params import (
    KINDS,
    RESERVED,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    Scalar,
    param_keys,
    same_value,
)


def _leaf_types() -> dict[str, Any]:
    """``{"optim.d.lr": float, "optim.d.clip_value": float | None, ...}`` from the dataclasses."""
    out: dict[str, Any] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
            else:
                out[f"{prefix}{f.name}"] = tp

    walk(Config, "")
    return out


def _base_types(tp: Any) -> set[type]:
    """The non-None types a leaf accepts: ``float | None`` -> {float}."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return {a for a in args if a is not type(None)}


class Checker:
    def __init__(self, space: Space, where: str) -> None:
        self.space = space
        self.where = where
        self.types = _leaf_types()

    def fail(self, path: str, msg: str) -> GansearchError:
        return GansearchError(f"{self.where}: {path}: {msg}")

    def check_key(self, key: Any, path: str) -> None:
        if not isinstance(key, str):
            raise self.fail(path, f"expected a dotted config key such as optim.d.lr, got {key!r}")
        if is_free_key(key):  # model.options.KEY: the user's architecture reads it
            return
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
                sub = set().union(*(param_keys(scope) for _, scope in param.branches))
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
        free = is_free_key(key)  # any YAML value: a number range or a choice of plain values
        accepts = {int, float, str, bool} if free else _base_types(self.types[key])
        if not isinstance(spec, dict) or (free and not set(spec) & set(KINDS)):
            if free:  # a fixed value of the user's: a mapping or a list is fine too
                self.check_value(key, spec, path)
                return FixedParam(key, spec)
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
            if any(same_value(c, d) for d in choices[:i]):
                raise self.fail(path, f"choice: {c!r} is listed twice")
        when = spec.get("when")
        branches: list[tuple[Scalar, tuple[Param, ...]]] = []
        if when is not None:
            if not isinstance(when, dict) or not when:
                raise self.fail(path, "when: expected a mapping from a choice to its params")
            for label, sub in when.items():
                match = [c for c in choices if same_value(c, label) or str(c) == str(label)]
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
