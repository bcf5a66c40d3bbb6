"""``gansearch retrain``: train a config exported by ``review`` (or any config file) locally for its
full budget, with everything ``gansearch train`` writes; re-running resumes."""

from __future__ import annotations

import argparse

from gan_core.config import load_config
from search.commands._common import add_budget_args, formatter, train_and_report

EXAMPLE = """example:
  gansearch review runs/quick --export best.yaml
  gansearch retrain best.yaml --out runs/best
  gansearch retrain best.yaml --out runs/best-long --images 2000000 --seed 1

trains for the config's train.images unless --steps or --images says otherwise, and writes
into --out: config.yaml, checkpoint.pt, metrics.jsonl, samples/step-NNNNNN.png, learning.gif
and curves.png, then prints one JSON line of the final metrics. For a config exported by
`review --export`, the line also holds "search": the trial it came from and the best score that
trial reached in the search, at how many images, next to the retrained score. The same config
and seed give the same weights on the CPU; running the same command again resumes where it
stopped."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="train an exported config for its full budget",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("config", metavar="FILE.yaml", help="a config file, e.g. from `review --export`")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    add_budget_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from search.experiment import BestPoint

    cfg = load_config(args.config)  # a missing or bad file is a one-line error before anything else
    point = BestPoint.from_config_text(Path(args.config).read_text())
    also = None
    if point is not None:
        also = {"search": {"experiment": point.experiment, "trial": point.trial, "metric": point.metric,
                           "best_score": point.score, "best_images": point.images,
                           "last_score": point.last_score, "last_images": point.images_seen}}
    return train_and_report(cfg, args, also)
