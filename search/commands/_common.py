"""Helpers shared by the commands (commands never import each other): arguments, training
with the budget flags, the closing lines of a search. Light imports only: --help must stay fast."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from gan_core.config import Config, apply_overrides, load_config, load_preset, preset_names

if TYPE_CHECKING:
    from search.tune import SearchOutcome


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


def train_and_report(cfg: Config, args: argparse.Namespace, also: dict[str, Any] | None = None) -> int:
    """Train with the budget flags applied, print one JSON line (with ``also``'s keys added: retrain
    adds the search's best point); exit 1 diverged, 130 interrupted (SIGINT/SIGTERM)."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    extra = budget_overrides(args, cfg)
    if args.no_eval:
        extra.append("eval.enabled=false")
    if extra:
        cfg = apply_overrides(cfg, extra)
    from gan_core.loop import train  # torch: only when a command trains

    result = train(cfg, args.out, device=args.device, progress=not args.quiet)
    print(json.dumps({"status": result.status, "reason": result.reason, "step": result.step,
                      "images_seen": result.images_seen, "run_dir": str(args.out),
                      **{k: v for k, v in result.metrics.items() if k not in ("step", "images_seen")},
                      **(also or {})}))
    if result.status == "diverged":
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
        lines.append(f"best trial: {out.best.trial_id}  {out.metric} = {out.best.score:.6g} ({out.mode}) "
                     f"after {out.best.best_images} images (its last: {last} after {out.best.images_seen})")
        lines.append(f"best config: {out.best_config_path}")
        if out.best.checkpoint:
            lines.append(f"best checkpoint: {out.best.checkpoint}")
    if out.interrupted:
        lines.append(f"interrupted: continue with `gansearch resume {out.experiment_path}`")
    return "\n".join(lines)
