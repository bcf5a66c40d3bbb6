"""The config's value rules that its types cannot express, each checked once (``validate``).

Names are checked against ``gan_core.choices`` (the registries' names), so validating a config
imports no model code; an import-path architecture is only checked for its form here (it is
imported when it is built)."""

from __future__ import annotations

import dataclasses
import re

from gan_core import choices as registry
from gan_core.config_sections import Config, ModelConfig, OptimSide
from gan_core.errors import ConfigError

IMPORT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def validate_model(model: ModelConfig) -> None:
    """The model section's rules, also for a ModelConfig built in code (``models.build`` calls
    this rather than checking again): every choice field and the architecture name, depths >= 1."""
    for f in dataclasses.fields(ModelConfig):
        allowed = f.metadata.get("choices")
        if allowed and getattr(model, f.name) not in allowed:
            raise ConfigError(f"model.{f.name}: {getattr(model, f.name)!r} is not one of {', '.join(allowed)}")
    if ":" in model.arch:
        if not IMPORT_PATH.fullmatch(model.arch):
            raise ConfigError(f"model.arch: {model.arch!r} is not an import path module:callable "
                              "(e.g. my_pkg.nets:build)")
    elif model.arch not in registry.ARCHITECTURES:
        raise ConfigError(f"model.arch: {model.arch!r} is not one of {', '.join(registry.ARCHITECTURES)}, "
                          "or an import path module:callable (e.g. my_pkg.nets:build)")
    elif model.options:
        raise ConfigError(f"model.options: {model.arch} takes no options (only an import-path architecture, "
                          f"model.arch: module:callable, does); got {', '.join(model.options)}")
    for key in ("g_depth", "d_depth"):
        if getattr(model, key) < 1:
            raise ConfigError(f"model.{key}: must be >= 1, got {getattr(model, key)}")
    if model.d_width is not None and model.d_width <= 0:
        raise ConfigError(f"model.d_width: must be > 0, or null for model.width, got {model.d_width}")
    for key in ("g_min_channels", "mbstd_group"):
        if getattr(model, key) < 0:
            raise ConfigError(f"model.{key}: must be >= 0 (0: off), got {getattr(model, key)}")


def validate(cfg: Config) -> None:
    """Value checks the types cannot express; names are checked against ``gan_core.choices``
    (the registries' names), so validating a config imports no model code."""
    validate_model(cfg.model)
    if cfg.loss.name not in registry.LOSSES:
        raise ConfigError(f"loss.name: {cfg.loss.name!r} is not one of {', '.join(registry.LOSSES)}")
    positive = {
        "train.batch_size": cfg.train.batch_size,
        "train.images": cfg.train.images,
        "train.d_steps": cfg.train.d_steps,
        "model.latent_dim": cfg.model.latent_dim,
        "model.width": cfg.model.width,
        "optim.d.lr": cfg.optim.d.lr,
        "optim.g.lr": cfg.optim.g.lr,
        "eval.n": cfg.eval.n,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    for key, value in {"model.dropout": cfg.model.dropout, "model.g_dropout": cfg.model.g_dropout}.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{key}: must be in [0, 1), got {value}")
    b = cfg.balance
    if b.enabled and not b.lower + b.hysteresis < b.upper - b.hysteresis:
        raise ConfigError(
            f"balance: need lower + hysteresis < upper - hysteresis, got lower={b.lower}, "
            f"upper={b.upper}, hysteresis={b.hysteresis}"
        )
    if not 0.0 <= b.smoothing < 1.0:
        raise ConfigError(f"balance.smoothing: must be in [0, 1), got {b.smoothing}")
    if cfg.data.resolution is not None and not 4 <= cfg.data.resolution <= 1024:
        raise ConfigError(f"data.resolution: must be in 4..1024 (or null: the data's own), got {cfg.data.resolution}")
    for key in ("log_every", "sample_every", "checkpoint_every"):
        if getattr(cfg.train, key) < 0:
            raise ConfigError(f"train.{key}: must be >= 0")
    _validate_stabilisers(cfg)
    _validate_ranges(cfg)


def _validate_stabilisers(cfg: Config) -> None:
    for name in cfg.augment.policy:
        if name not in registry.AUGMENTATIONS:
            raise ConfigError(f"augment.policy: {name!r} is not one of {', '.join(registry.AUGMENTATIONS)}")
    twice = [n for i, n in enumerate(cfg.augment.policy) if n in cfg.augment.policy[:i]]
    if twice:
        raise ConfigError(f"augment.policy: {twice[0]!r} is listed twice")
    if not 0.0 <= cfg.augment.p <= 1.0:
        raise ConfigError(f"augment.p: must be in [0, 1], got {cfg.augment.p}")
    if cfg.augment.blur_sigma < 0:
        raise ConfigError(f"augment.blur_sigma: must be >= 0 (0: off), got {cfg.augment.blur_sigma}")
    if cfg.augment.blur_sigma > 0 and cfg.augment.blur_images <= 0:
        raise ConfigError(f"augment.blur_images: must be > 0 with augment.blur_sigma {cfg.augment.blur_sigma:g} "
                          f"(the images over which the blur fades out), got {cfg.augment.blur_images}")
    if not 0.0 <= cfg.ema.decay < 1.0:
        raise ConfigError(f"ema.decay: must be in [0, 1), got {cfg.ema.decay}")
    if cfg.ema.start_images < 0:
        raise ConfigError(f"ema.start_images: must be >= 0, got {cfg.ema.start_images}")
    if cfg.ema.standing_stats < 0:
        raise ConfigError(f"ema.standing_stats: must be >= 0 (0: copy G's), got {cfg.ema.standing_stats}")
    if cfg.loss.r1_gamma < 0:
        raise ConfigError(f"loss.r1_gamma: must be >= 0, got {cfg.loss.r1_gamma}")
    if cfg.loss.r1_every < 1:
        raise ConfigError(f"loss.r1_every: must be >= 1, got {cfg.loss.r1_every}")


SEED_MAX = 2**32 - 1  # what numpy, Optuna and every torch generator (seed * 1000 + k) accept
BATCH_MAX = 65536  # a batch beyond this is a typo: it cannot be allocated at any useful width


def _validate_ranges(cfg: Config) -> None:
    """Ranges of the numeric keys the optimisers, layers and schedule would otherwise refuse late
    (a traceback mid-run) or take silently (a negative decay, a clip value of 0)."""
    unit = "[0, 1)"
    checks: list[tuple[str, float, bool, str]] = []  # key, value, ok, the valid range
    for side in ("d", "g"):
        o: OptimSide = getattr(cfg.optim, side)
        k = f"optim.{side}"
        checks += [(f"{k}.beta1", o.beta1, 0 <= o.beta1 < 1, unit), (f"{k}.beta2", o.beta2, 0 <= o.beta2 < 1, unit),
                   (f"{k}.alpha", o.alpha, 0 <= o.alpha < 1, unit),
                   (f"{k}.momentum", o.momentum, 0 <= o.momentum < 1, unit),
                   (f"{k}.decay", o.decay, o.decay >= 0, ">= 0")]
        if o.clip_value is not None:
            checks.append((f"{k}.clip_value", o.clip_value, o.clip_value > 0, "> 0, or null for no clipping"))
    m, t, b = cfg.model, cfg.train, cfg.balance
    checks += [
        ("model.bn_momentum", m.bn_momentum, 0 <= m.bn_momentum <= 1, "[0, 1]"),
        ("model.leaky_slope", m.leaky_slope, m.leaky_slope >= 0, ">= 0"),
        ("loss.gp_weight", cfg.loss.gp_weight, cfg.loss.gp_weight >= 0, ">= 0"),
        ("train.seed", t.seed, 0 <= t.seed <= SEED_MAX, f"0..{SEED_MAX}"),
        ("train.batch_size", t.batch_size, t.batch_size <= BATCH_MAX, f"1..{BATCH_MAX}"),
        ("train.weight_warn", t.weight_warn, t.weight_warn > 0, "> 0"),
        ("eval.every", cfg.eval.every, cfg.eval.every >= 0, ">= 0 (0: only at the end)"),
        ("balance.hysteresis", b.hysteresis, b.hysteresis >= 0, ">= 0"),
        ("balance.warmup", b.warmup, b.warmup >= 0, ">= 0"),
    ]
    for key, value, ok, valid in checks:
        if not ok:
            raise ConfigError(f"{key}: must be {'in ' if valid[0] in '[(' else ''}{valid}, got {value}")
