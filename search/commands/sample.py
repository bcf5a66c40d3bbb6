"""``gansearch sample``: draw N images from a trained run into an .npz file."""

from __future__ import annotations

import argparse

from gan_core.errors import GansearchError
from search.commands._common import check_seed, formatter, out_file

EXAMPLE = """example:
  gansearch sample runs/dcgan --n 1000 --out samples.npz
  gansearch sample runs/cgan --n 100 --label 7 --out sevens.npz

the file holds `images` as uint8 (N,H,W) for grey or (N,H,W,3) for colour, and for
conditional runs `labels` (cycling 0..9 unless --label)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample images from a trained run", description=__doc__,
                       epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", required=True, metavar="FILE.npz")
    p.add_argument("--label", type=int, help="conditional runs: draw only this class")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.n <= 0:
        raise GansearchError(f"--n: must be > 0, got {args.n}")
    out_file("--out", args.out, suffixes=(".npz",))
    check_seed("--seed", args.seed)
    import torch

    from gan_core.checkpoint import load_run
    from gan_core.samples import save_npz, to_hwc
    from gan_core.sampling import cycling_labels, generate

    r = load_run(args.run_dir)
    labels = None
    if args.label is not None:
        if not r.G.conditional:
            raise GansearchError(f"--label: {args.run_dir} is not a conditional run (arch {r.cfg.model.arch})")
        if not 0 <= args.label < r.G.num_classes:
            raise GansearchError(f"--label: {args.label} is not in 0..{r.G.num_classes - 1}")
        labels = torch.full((args.n,), args.label)
    elif r.G.conditional:
        labels = cycling_labels(args.n, r.G.num_classes)
    images = generate(r.G, args.n, seed=args.seed, labels=labels)
    save_npz(args.out, images, labels)
    print(f"wrote {args.n} images {to_hwc(images[:1]).shape[1:]} to {args.out}")
    return 0
