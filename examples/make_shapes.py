"""Write a labelled image folder of coloured shapes for the example search (nothing downloaded).

    python examples/make_shapes.py data/shapes --per-class 1500 --size 32

makes ``data/shapes/{circle,cross,square,triangle}/NNNNN.png``: one shape per image, of random
colour, size, position and rotation on a random plain background, drawn from ``--seed`` (the same
images on every machine). gansearch reads it as ``data.name: folder:data/shapes``.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("circle", "cross", "square", "triangle")


def draw(kind: str, size: int, rng: random.Random) -> Image.Image:
    """One image: a shape filling 40-80 % of the side, its colour far from the background's."""
    background = tuple(rng.randrange(256) for _ in range(3))
    colour = tuple((b + 96 + rng.randrange(64)) % 256 for b in background)
    scale = 4  # drawn large, then shrunk: smooth edges
    img = Image.new("RGB", (size * scale, size * scale), background)
    pen = ImageDraw.Draw(img)
    r = rng.uniform(0.2, 0.4) * size * scale
    cx = rng.uniform(r, size * scale - r)
    cy = rng.uniform(r, size * scale - r)
    angle = rng.uniform(0, 2 * math.pi)

    def corners(n: int, radius: float, turn: float = 0.0) -> list[tuple[float, float]]:
        return [(cx + radius * math.cos(angle + turn + 2 * math.pi * k / n),
                 cy + radius * math.sin(angle + turn + 2 * math.pi * k / n)) for k in range(n)]

    if kind == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        pen.polygon(corners(4, r * 1.1), fill=colour)
    elif kind == "triangle":
        pen.polygon(corners(3, r * 1.2), fill=colour)
    else:  # a cross: two bars
        for turn in (0.0, math.pi / 2):
            a, b = corners(2, r * 1.1, turn)
            pen.line((a, b), fill=colour, width=max(1, int(r * 0.5)))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def write_folder(out: Path, per_class: int, size: int = 32, seed: int = 0) -> None:
    rng = random.Random(seed)
    for kind in CLASSES:
        (out / kind).mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
        for kind in CLASSES:
            draw(kind, size, rng).save(out / kind / f"{i:05d}.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to write (class subfolders inside)")
    p.add_argument("--per-class", type=int, default=1500, help="images per class (default 1500)")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    write_folder(args.out, args.per_class, args.size, args.seed)
    print(f"wrote {args.per_class * len(CLASSES)} images of {len(CLASSES)} classes into {args.out}")


if __name__ == "__main__":
    main()
