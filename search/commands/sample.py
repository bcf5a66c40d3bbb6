"""``gansearch sample``: draw N images from a trained run into an .npz file."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch

from gan_core.checkpoint import generate, load_run
from gan_core.errors import GansearchError
from gan_core.io import _atomic_write_bytes
from search.commands._common import formatter

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


def to_hwc(images: torch.Tensor) -> np.ndarray:
    """uint8 (N,C,H,W) -> (N,H,W) grey or (N,H,W,3) colour."""
    x = images.cpu().numpy()
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


def run(args: argparse.Namespace) -> int:
    if args.n <= 0:
        raise GansearchError(f"--n: must be > 0, got {args.n}")
    if not args.out.endswith(".npz"):
        raise GansearchError(f"--out: {args.out!r} must end in .npz")
    r = load_run(args.run_dir)
    labels = None
    if args.label is not None:
        if not r.G.conditional:
            raise GansearchError(f"--label: {args.run_dir} is not a conditional run (arch {r.cfg.model.arch})")
        if not 0 <= args.label < r.G.num_classes:
            raise GansearchError(f"--label: {args.label} is not in 0..{r.G.num_classes - 1}")
        labels = torch.full((args.n,), args.label)
    elif r.G.conditional:
        labels = torch.arange(args.n) % r.G.num_classes
    images = generate(r.G, args.n, seed=args.seed, labels=labels)
    arrays = {"images": to_hwc(images)}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    _atomic_write_bytes(Path(args.out), buf.getvalue())
    print(f"wrote {args.n} images {tuple(arrays['images'].shape[1:])} to {args.out}")
    return 0
