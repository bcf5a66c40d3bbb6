"""``gansearch explore``: pictures of what a trained generator learned (seeds 002 and 004)."""

from __future__ import annotations

import argparse

from search.commands._common import check_seed, formatter, out_file

EXAMPLE = """example:
  gansearch explore runs/dcgan morph --out morph.png
  gansearch explore runs/dcgan quiz --out quiz.png          # also writes quiz-answers.png
  gansearch explore runs/cgan interpolate 7 9 --out 7to9.png
  gansearch explore runs/cgan clock --out clock.gif

WHAT is one of:
  samples      a grid of samples; conditional runs: a noise vector per row, a class per column (PNG)
  morph        a noise vector swept from all -1 to all +1 in ten steps (PNG)
  arith        images of noise vectors a, b and b - a (PNG)
  quiz         40 real and generated images mixed at random (PNG), and FILE-answers.png
               with the generated ones outlined in red
  interpolate  A B: class A blended into class B, one row per noise vector (PNG; cgan runs)
  clock        digits cross-fading 0 -> 9 -> 0 in label space, noise held at zero (GIF; cgan runs)
  walk         a smooth spherical walk through random latent points (GIF)

RUN_DIR is a run directory (train, retrain), a checkpoint.pt, or a search trial folder.
Conditional runs: morph shows one row per class, walk one digit per class, arith class 0,
unless --label picks one class (samples, morph, arith, walk)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from search.explore_modes import MODES

    p = sub.add_parser("explore", help="samples, morph, arithmetic, quiz, interpolation, clock, walk",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("what", metavar="WHAT", choices=list(MODES), help=", ".join(MODES))
    p.add_argument("classes", metavar="A B", nargs="*", type=int, help="interpolate: the two classes")
    p.add_argument("--out", required=True, metavar="FILE", help="a .png (or .gif for clock and walk)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same picture)")
    p.add_argument("--label", type=int, help="conditional runs: hold this class fixed (samples, morph, arith, walk)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.explore import explore

    out_file("--out", args.out)
    check_seed("--seed", args.seed)
    written = explore(args.run_dir, args.what, args.out, classes=args.classes, seed=args.seed,
                      label=args.label)
    print("wrote " + " and ".join(str(p) for p in written))
    return 0
