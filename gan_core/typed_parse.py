"""Typed parsing of plain data (YAML, JSON, a search trial's values) into a tree of dataclasses:
unknown keys and wrong types are refused with the key's path; ints are accepted where floats are;
field metadata may list ``choices`` and old names of a choice (``aliases``)."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any

from gan_core.errors import ConfigError


def type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def yaml11_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; numeric fields take it as the number."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    if isinstance(value, str) and value.strip().lower().lstrip("+-.") in ("nan", "inf", "infinity"):
        return float(value.strip().lower().replace(".", ""))  # refused below as not finite
    return value


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if value is None:  # an empty YAML value (``policy:``, ``--set augment.policy=``)
            return []
        if isinstance(value, str):  # "translation,cutout": Optuna choices must be scalars
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return [coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        raise ConfigError(f"{path}: expected a list or a comma-separated string, got {value!r}")
    if origin is dict:  # a free mapping (model.options): string keys, any YAML values
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{path}: expected a mapping with string keys, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{path}: expected {type_name(tp)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return parse_dataclass(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        value = yaml11_number(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        value = yaml11_number(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # a NaN or infinite hyperparameter trains nothing
                raise ConfigError(f"{path}: must be a finite number, got {value}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # YAML reads `data_dir: 2024` as a number
            return str(value)
    else:  # pragma: no cover - every field above is one of these types
        raise ConfigError(f"{path}: unsupported type {tp}")
    raise ConfigError(f"{path}: expected {type_name(tp)}, got {value!r}")


def parse_dataclass(cls: type, data: dict[str, Any], path: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"{where}: unknown key (valid: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = coerce(value, hints[name], key)
        aliases = fields[name].metadata.get("aliases", {})
        if isinstance(kwargs[name], str) and kwargs[name] in aliases:  # an old name of a choice
            kwargs[name] = aliases[kwargs[name]]
        choices = fields[name].metadata.get("choices")
        if choices and kwargs[name] not in choices:
            shown = ", ".join("null" if c is None else str(c) for c in choices)
            raise ConfigError(f"{key}: {kwargs[name]!r} is not one of {shown}")
    return cls(**kwargs)


def field_type(root: type, dotted: str) -> Any:
    """The annotation of ``a.b.c`` in the dataclass tree under ``root`` (None for a path not in it)."""
    tp: Any = root
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp
