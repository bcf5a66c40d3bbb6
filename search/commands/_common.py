"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse

from gan_core.config import Config, apply_overrides, load_config, load_preset, preset_names


def formatter() -> type[argparse.HelpFormatter]:
    from search.cli import _Formatter

    return _Formatter


def add_config_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("--preset", help=f"a built-in config: {', '.join(preset_names())}")
    src.add_argument("--config", metavar="FILE", help="a config YAML (e.g. one exported by review)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.d.lr=1e-4 (repeatable)")


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = load_preset(args.preset) if args.preset else load_config(args.config)
    return apply_overrides(cfg, args.overrides) if args.overrides else cfg


def budget_overrides(args: argparse.Namespace, cfg: Config) -> list[str]:
    """--steps N / --images N / --seed S / --data-dir D as config overrides."""
    out = []
    if getattr(args, "steps", None) is not None:
        out.append(f"train.images={args.steps * cfg.train.batch_size}")
    if getattr(args, "images", None) is not None:
        out.append(f"train.images={args.images}")
    if getattr(args, "seed", None) is not None:
        out.append(f"train.seed={args.seed}")
    if getattr(args, "data_dir", None) is not None:
        out.append(f"data.data_dir={args.data_dir}")
    return out
