"""``gansearch train``: train one GAN from a preset or a config file; re-running resumes."""

from __future__ import annotations

import argparse
import json

from gan_core.config import apply_overrides
from gan_core.loop import train
from search.commands._common import add_config_args, budget_overrides, config_from_args, formatter

EXAMPLE = """example:
  gansearch train --preset mnist-dcgan --out runs/dcgan --steps 500
  gansearch train --config best.yaml --set optim.d.lr=1e-4 --out runs/best

writes into --out: config.yaml, checkpoint.pt, metrics.jsonl, samples/step-NNNNNN.png,
learning.gif and curves.png. Running the same command again resumes where it stopped.
Ctrl-C (or SIGTERM) stops after the current step and saves, so the resume is exact (exit 130);
a second Ctrl-C aborts at once without saving. One trainer at a time per --out (it is locked)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one GAN (resumable)", description=__doc__,
                       epilog=EXAMPLE, formatter_class=formatter())
    add_config_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    add_budget_args(p)
    p.set_defaults(run=run)


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


def train_and_report(cfg, args: argparse.Namespace, also: dict | None = None) -> int:
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
    result = train(cfg, args.out, device=args.device, progress=not args.quiet)
    print(json.dumps({"status": result.status, "reason": result.reason, "step": result.step,
                      "images_seen": result.images_seen, "run_dir": str(args.out),
                      **{k: v for k, v in result.metrics.items() if k not in ("step", "images_seen")},
                      **(also or {})}))
    if result.status == "diverged":
        return 1
    return 130 if result.reason == "interrupted" else 0


def run(args: argparse.Namespace) -> int:
    return train_and_report(config_from_args(args), args)
