"""One typed config tree for a GAN training run, loaded from and saved to YAML.

Every key has a type; unknown keys and wrong types are refused with the key's path, so a
misspelt or silently ignored hyperparameter is impossible (the bug of Ray Tune's DCGAN example,
whose optimisers read ``config.get("lr")`` while the space sampled ``netG_lr``). The sections
are in ``config_sections.py``, the typed parsing in ``typed_parse.py``, the value rules in
``config_rules.py``; this module is the door: files, presets, overrides, diffs.

Example::

    cfg = load_preset("mnist-dcgan")
    cfg = apply_overrides(cfg, ["optim.d.lr=1e-4", "model.dropout=0.3"])
    save_config(cfg, "run/config.yaml")
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from gan_core.config_rules import BATCH_MAX, IMPORT_PATH, SEED_MAX, validate, validate_model
from gan_core.config_sections import (
    AugmentConfig,
    BalanceConfig,
    Config,
    DataConfig,
    EmaConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    OptimSide,
    TrainConfig,
)
from gan_core.errors import ConfigError
from gan_core.typed_parse import field_type, parse_dataclass

__all__ = ["BATCH_MAX", "IMPORT_PATH", "PRESET_DIR", "SEED_MAX", "AugmentConfig", "BalanceConfig", "Config",
           "DataConfig", "EmaConfig", "EvalConfig", "LossConfig", "ModelConfig", "OptimConfig", "OptimSide",
           "TrainConfig", "apply_overrides", "apply_values", "diff", "dump_config", "flatten", "from_dict",
           "is_free_key", "load_config", "load_preset", "preset_names", "save_config", "set_path", "to_dict", "validate",
           "validate_model"]

PRESET_DIR = Path(__file__).parent / "presets"


def _legacy_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Old spellings still read: ``data.image_size`` (color-mnist's side) is ``data.resolution``
    for color-mnist and meant nothing for any other dataset (its default, 64, was in every config)."""
    section = data.get("data")
    if isinstance(section, dict) and "image_size" in section:
        section = dict(section)
        side = section.pop("image_size")
        if section.get("name", DataConfig.name) == "color-mnist" and section.get("resolution") is None:
            section["resolution"] = side
        data = {**data, "data": section}
    return data


def from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from plain data (e.g. YAML or a search trial's values)."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {data!r}")
    cfg = parse_dataclass(Config, _legacy_keys(data))
    validate(cfg)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def load_config(path: str | Path) -> Config:
    """Read a YAML config; errors name the file and the key path."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a config is YAML)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return from_dict(data or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file."""
    from gan_core.io import atomic_write_text

    atomic_write_text(Path(path), dump_config(cfg))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> Config:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"--preset: {name!r} is not one of {', '.join(preset_names())}")
    return load_config(path)


def _parse_value(text: str, tp: Any = None) -> Any:
    """An override's text as a value. Keys of type str (names, paths) take the text as written,
    not parsed as YAML: a folder named ``2024``, ``csv:my: file.csv`` or ``a #b.csv`` stay
    themselves (``null``/``~`` or nothing is None for optional ones; quotes are removed)."""
    strs = (str, str | None, typing.Optional[str])  # noqa: UP045 - both spellings of the annotation
    if tp in strs:
        if tp is not str and text in ("", "null", "~", "None", "none"):
            return None
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        return text
    value = yaml.safe_load(text)
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    return value


def _field_type(dotted: str) -> Any:
    """The annotation of ``a.b.c`` in the Config tree (None for a path not in it)."""
    return field_type(Config, dotted)


def _free_mapping(dotted: str) -> bool:
    """Whether ``a.b`` is a free mapping (``model.options``), which takes any key."""
    return typing.get_origin(_field_type(dotted)) is dict


def is_free_key(dotted: str) -> bool:
    """Whether ``dotted`` is a key inside a free mapping (``model.options.channels``): any name,
    any YAML value, which the user's own code reads."""
    parts = dotted.split(".")
    return any(_free_mapping(".".join(parts[:i])) for i in range(1, len(parts)))


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, refusing paths that are not in the tree."""
    node = data
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        free = i > 0 and _free_mapping(".".join(parts[:i]))
        if free and isinstance(node, dict) and part not in node and i < len(parts) - 1:
            node[part] = {}  # model.options.a.b: nested mappings are created as needed
        if not isinstance(node, dict) or (part not in node and not free):
            valid = ", ".join(node) if isinstance(node, dict) else "none"
            raise ConfigError(f"{here}: unknown key (valid: {valid})")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``key.path=value`` strings (values parsed as YAML scalars) and re-validate."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        key, text = key.strip(), text.strip()
        if is_free_key(key):
            value = yaml.safe_load(text) if text else None  # model.options.KEY: plain YAML ("none" stays a word)
        else:
            value = _parse_value(text, _field_type(key))
        set_path(data, key, value)
    return from_dict(data)


def apply_values(cfg: Config, values: dict[str, Any]) -> Config:
    """Set ``key.path`` to values as they are (a flag's string is not parsed) and re-validate."""
    data = to_dict(cfg)
    for key, value in values.items():
        set_path(data, key, value)
    return from_dict(data)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"d": {"lr": 1}}}`` -> ``{"optim.d.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def diff(a: Config, b: Config) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ, as ``{"optim.d.lr": (old, new)}``."""
    fa, fb = flatten(to_dict(a)), flatten(to_dict(b))
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
