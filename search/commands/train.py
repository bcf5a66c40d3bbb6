"""``gansearch train``: train one GAN from a preset or a config file; re-running resumes."""

from __future__ import annotations

import argparse

from search.commands._common import (
    add_budget_args,
    add_config_args,
    config_from_args,
    formatter,
    train_and_report,
)

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


def run(args: argparse.Namespace) -> int:
    return train_and_report(config_from_args(args), args)
