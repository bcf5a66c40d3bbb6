"""Helpers shared by the commands (commands never import each other): arguments, training
with the budget flags, the closing lines of a search. Light imports only: --help must stay fast."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gan_core.config import (
    SEED_MAX,
    Config,
    apply_overrides,
    apply_values,
    load_config,
    load_preset,
    preset_names,
)
from gan_core.errors import GansearchError
from search.help_format import HelpFormatter

if TYPE_CHECKING:
    from search.raytune.tune import SearchOutcome


def formatter() -> type[argparse.HelpFormatter]:
    return HelpFormatter


def add_config_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("--preset", help=f"a built-in config: {', '.join(preset_names())}")
    src.add_argument("--config", metavar="FILE", help="a config YAML (e.g. one exported by review)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.d.lr=1e-4 (repeatable)")


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = load_preset(args.preset) if args.preset else load_config(args.config)
    return apply_overrides(cfg, args.overrides) if args.overrides else cfg


def budget_overrides(args: argparse.Namespace, cfg: Config) -> dict[str, Any]:
    """--steps N / --images N / --seed S / --data-dir D as config values (taken as given: a
    --data-dir named ``2024`` or ``null`` is that folder, not a number or None)."""
    out: dict[str, Any] = {}
    for flag in ("steps", "images"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            raise GansearchError(f"--{flag}: must be >= 1, got {getattr(args, flag)}")
    if getattr(args, "steps", None) is not None:
        out["train.images"] = args.steps * cfg.train.batch_size
    if getattr(args, "images", None) is not None:
        out["train.images"] = args.images
    if getattr(args, "seed", None) is not None:
        out["train.seed"] = check_seed("--seed", args.seed)
    if getattr(args, "data_dir", None) is not None:
        out["data.data_dir"] = existing_dir("--data-dir", args.data_dir)
    return out


def check_seed(flag: str, seed: int) -> int:
    """A seed every generator takes (numpy, Optuna and torch's seed * 1000 + k)."""
    if not 0 <= seed <= SEED_MAX:
        raise GansearchError(f"{flag}: must be in 0..{SEED_MAX}, got {seed}")
    return seed


def existing_dir(flag: str, path: str) -> str:
    if not path or not Path(path).expanduser().is_dir():
        raise GansearchError(f"{flag}: {path!r}: no such directory")
    return path


def _first_existing(p: Path) -> Path:
    for q in (p, *p.parents):
        if q.exists():
            return q
    return Path(".")


def out_dir(flag: str, path: str) -> Path:
    """A directory to write into, checked before anything is written: not empty, not a file,
    not under a file, writable (a read-only place still fails at mkdir, as one line)."""
    if not path.strip():
        raise GansearchError(f"{flag}: empty; give a directory")
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise GansearchError(f"{flag}: {p} is a file, not a directory")
    base = _first_existing(p)
    if not base.is_dir():
        raise GansearchError(f"{flag}: {base} is a file, not a directory (in {p})")
    if not os.access(base, os.W_OK | os.X_OK):
        raise GansearchError(f"{flag}: {base}: permission denied (cannot write {p})")
    return p


def out_file(flag: str, path: str, *, suffixes: tuple[str, ...] = ()) -> Path:
    """A file to write, checked before any work: not empty, not a directory, not under a file."""
    if not path.strip():
        raise GansearchError(f"{flag}: empty; give a file name")
    p = Path(path).expanduser()
    if suffixes and not path.endswith(suffixes):
        raise GansearchError(f"{flag}: {path!r} must end in {' or '.join(suffixes)}")
    if p.is_dir():
        raise GansearchError(f"{flag}: {p} is a directory, not a file")
    out_dir(flag, str(p.parent))
    return p


def check_device(flag: str, device: str) -> str:
    """auto, cpu, cuda or cuda:N, and a CUDA one only when torch sees a GPU."""
    from gan_core.loop import resolve_device

    try:
        resolve_device(device)
    except GansearchError as exc:
        raise GansearchError(str(exc).replace("--device", flag, 1)) from None
    return device


def preflight(cfg: Config) -> None:
    """What the config's keys cannot say alone, checked before the run directory is touched: the
    data folder exists, the metric is known, the dataset loads and the models build for it."""
    from gan_core import models
    from gan_core.data import load_dataset
    from gan_core.metrics.registry import get_metric

    if cfg.data.data_dir is not None:
        existing_dir("data.data_dir", cfg.data.data_dir)
    get_metric(cfg.eval.objective)
    data = load_dataset(cfg.data, "train")  # cached: train() reuses it
    try:
        models.build(cfg.model, data.shape, data.num_classes)
    except (ValueError, RuntimeError) as exc:
        raise GansearchError(f"model: {cfg.model.arch} cannot be built for {cfg.data.name} "
                             f"{tuple(data.shape)} ({str(exc).splitlines()[0]})") from None


def add_budget_args(p: argparse.ArgumentParser) -> None:
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="train this many steps at the config's batch size")
    budget.add_argument("--images", type=int, help="train until this many images are seen")
    p.add_argument("--seed", type=int, help="random seed (default: the config's train.seed)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", metavar="D", help="dataset root (default: $GANSEARCH_DATA, then the embedded MNIST)")
    p.add_argument("--no-eval", action="store_true", help="skip the classifier-based evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: torch's, one per core; 1 is faster on a busy machine)")


def train_and_report(cfg: Config, args: argparse.Namespace, also: dict[str, Any] | None = None,
                     start_from: Path | None = None) -> int:
    """Train with the budget flags applied, print one JSON line (with ``also``'s keys added: retrain
    adds the search's best point); exit 1 diverged, 130 interrupted (SIGINT/SIGTERM).
    ``start_from``: a checkpoint folder the run begins at (``retrain --continue``)."""
    out_dir("--out", str(args.out))
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise GansearchError(f"--threads: must be >= 1, got {args.threads}")
    extra = budget_overrides(args, cfg)
    if args.no_eval:
        extra["eval.enabled"] = False
    if extra:
        cfg = apply_values(cfg, extra)
    check_device("--device", args.device)
    preflight(cfg)
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    from gan_core.loop import RunStatus, train  # torch: only when a command trains

    if start_from is not None:
        from gan_core.checkpoint import start_run_from

        start_run_from(start_from, args.out, cfg)
    result = train(cfg, args.out, device=args.device, progress=not args.quiet)
    print(json.dumps({"status": result.status, "reason": result.reason, "step": result.step,
                      "images_seen": result.images_seen, "run_dir": str(args.out),
                      **{k: v for k, v in result.metrics.items() if k not in ("step", "images_seen")},
                      **(also or {})}))
    if result.status is RunStatus.DIVERGED:
        return 1
    return 130 if result.reason == "interrupted" else 0


def format_outcome(out: SearchOutcome) -> str:
    """The lines ``gansearch search`` and ``resume`` end with."""
    from search.experiment import TrialStatus

    counts = ", ".join(f"{out.count(s)} {s}" for s in TrialStatus if out.count(s))
    lines = [f"experiment: {out.experiment_path} ({len(out.rows)} trials: {counts or 'none'})"]
    for r in out.rows:
        if r.status in (TrialStatus.DIVERGED, TrialStatus.FAILED):
            lines.append(f"  {r.trial_id} {r.status}: {r.why}")
    if out.best is None:
        lines.append("no trial finished with a finite score; nothing to export")
    else:
        last = f"{out.best.last_score:.6g}" if out.best.last_score is not None else "-"
        lines.append(f"best trial: {out.best.trial_id}  {out.objective.metric} = {out.best.score:.6g} "
                     f"({out.objective.direction}) "
                     f"after {out.best.best_images} images (its last: {last} after {out.best.images_seen})")
        lines.append(f"best config: {out.best_config_path}")
        if out.best.checkpoint:
            lines.append(f"best checkpoint: {out.best.checkpoint}")
    if out.interrupted:
        lines.append(f"interrupted: continue with `gansearch resume {out.experiment_path}`")
    return "\n".join(lines)
