"""``gansearch score``: every classifier metric of a trained run or of an .npz of images, as one JSON line."""

from __future__ import annotations

import argparse
import json

from search.commands._common import check_device, check_seed, existing_dir, formatter

EXAMPLE = """example:
  gansearch score runs/dcgan                      # 10000 samples from the run's generator
  gansearch score samples.npz --dataset mnist     # the images of a file (e.g. from gansearch sample)

an .npz holds `images` as uint8 (N,H,W) for grey or (N,H,W,3) for colour, and optionally `labels`
(int, N): the classes a conditional generator was asked for (adds cond_acc). Metric names carry the
sample count (cfd_10k); `score` is the objective metric, negated when higher is better."""

def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a run or an .npz of images with the classifier metrics",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("source", metavar="RUN_DIR|FILE.npz")
    p.add_argument("--dataset", metavar="NAME",
                   help="mnist, fashion, color-mnist, csv:PATH, folder:PATH, npz:PATH "
                        "(required for .npz; default for a run: its own)")
    p.add_argument("--n", type=int, help="samples: generated from a run (default 10000), "
                                         "or the first N of an .npz (default all)")
    p.add_argument("--seed", type=int, default=0, help="noise seed when generating from a run")
    p.add_argument("--objective", metavar="METRIC",
                   help="metric reported as score (default: the run's eval.objective, else cfd)")
    p.add_argument("--features", metavar="SPEC",
                   help="score on another feature network (eval.features: module:callable, a TorchScript "
                        "file, inception:WEIGHTS_FILE); default for a run: its own, else the reference classifier")
    p.add_argument("--data-dir", metavar="D", help="dataset root (default: $GANSEARCH_DATA, then the embedded MNIST)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gan_core.samples import score_source

    check_device("--device", args.device)
    check_seed("--seed", args.seed)
    if args.data_dir is not None:
        existing_dir("--data-dir", args.data_dir)
    print(json.dumps(score_source(args.source, dataset=args.dataset, n=args.n, seed=args.seed,
                                  objective=args.objective, data_dir=args.data_dir, device=args.device,
                                  features=args.features)))
    return 0
