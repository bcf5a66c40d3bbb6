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
  gansearch retrain best.yaml --out runs/best-long --images 2000000 --continue

trains for the config's train.images unless --steps or --images says otherwise, and writes
into --out: config.yaml, checkpoint.pt, metrics.jsonl, samples/step-NNNNNN.png, learning.gif
and curves.png, then prints one JSON line of the final metrics. For a config exported by
`review --export`, the line also holds "search": the trial it came from and the best score that
trial reached in the search, at how many images, next to the retrained score. The same config
and seed give the same weights on the CPU; running the same command again resumes where it
stopped.

--continue starts from the trial's best-point checkpoint that `review --export` recorded instead
of from scratch (its weights, optimisers and random streams, and its log): since the trial
trained the same seeded config, this is bit for bit the run a fresh start would be, without
training again the images the trial already trained (on the CPU, as each trial runs; GPU
kernels are not bitwise repeatable)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="train an exported config for its full budget",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("config", metavar="FILE.yaml", help="a config file, e.g. from `review --export`")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    add_budget_args(p)
    p.add_argument("--continue", dest="continue_trial", action="store_true",
                   help="start from the trial's best-point checkpoint recorded by `review --export`")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gan_core.errors import GansearchError
    from search.experiment import BestPoint

    cfg = load_config(args.config)  # a missing or bad file is a one-line error before anything else
    point = BestPoint.from_config_text(Path(args.config).read_text())
    also = None
    if point is not None:
        also = {"search": {"experiment": point.experiment, "trial": point.trial, "metric": point.metric,
                           "best_score": point.score, "best_images": point.images,
                           "last_score": point.last_score, "last_images": point.images_seen}}
    start_from = None
    if args.continue_trial:
        if point is None or not point.checkpoint:
            raise GansearchError(f"{args.config}: --continue needs a config exported by `gansearch review "
                                 "--export`, which records the trial's checkpoint; this one records none")
        start_from = Path(point.checkpoint)
        if "://" in point.checkpoint or not start_from.is_dir():
            raise GansearchError(f"{args.config}: --continue: the trial's checkpoint {point.checkpoint} is not a "
                                 "folder on this machine (copy the experiment here, or retrain without --continue)")
        also = {**(also or {}), "continued_from": {"checkpoint": str(start_from), "images": point.images}}
    return train_and_report(cfg, args, also, start_from=start_from)
