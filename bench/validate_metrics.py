"""Validate the classifier metrics on real data; prints the README's validation table as Markdown.

Each row scores one kind of sample set against the dataset's test split (reference statistics
of all 10k test images; precision/recall against the first n):

    real train        n training images (the best a generator can hope for)
    uniform noise     uint8 uniform noise
    shuffled pixels   training images with each image's pixels permuted (same intensities, no shape)
    single class      n training images of class 0 only (mode collapse)
    half intensity    training images // 2 (right shapes, wrong contrast)
    GAN, S steps      a generator of the dataset's preset trained for S steps (--gan-steps)

Usage::

    .venv/bin/python bench/validate_metrics.py --datasets mnist fashion --n 5000
    .venv/bin/python bench/validate_metrics.py --gan-steps 300 --gan-set model.width=0.25 --gan-set train.batch_size=64
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.config import DataConfig  # noqa: E402
from gan_core.data import load_dataset  # noqa: E402
from gan_core.metrics import Evaluator, protocol_name  # noqa: E402

COLUMNS = ("cis", "cfd", "coverage", "class_kl", "precision", "recall", "density", "manifold_coverage")
PRESETS = {"mnist": "mnist-dcgan", "fashion": "fashion-dcgan"}


def shuffled_pixels(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    flat = x.reshape(len(x), -1)
    idx = torch.argsort(torch.rand(flat.shape, generator=g), dim=1)
    return flat.gather(1, idx).reshape(x.shape)


def gan_samples(name: str, steps: int, n: int, overrides: list[str]) -> torch.Tensor:
    """Samples of the dataset's preset generator after ``steps`` training steps (no evaluation)."""
    import tempfile

    from gan_core.checkpoint import load_run
    from gan_core.config import apply_overrides, load_preset
    from gan_core.loop import train
    from gan_core.sampling import generate

    cfg = apply_overrides(load_preset(PRESETS[name]), overrides)
    cfg = apply_overrides(cfg, [
        f"data.name={name}", f"train.images={steps * cfg.train.batch_size}", "eval.enabled=false",
        "train.sample_every=0", "train.checkpoint_every=0",
    ])
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, tmp, device="cpu", progress=False)
        return generate(load_run(tmp).G, n, seed=0)


def rows_for(name: str, n: int, gan_steps: int,
             gan_set: list[str]) -> tuple[Evaluator, list[tuple[str, dict[str, float]]]]:
    data = DataConfig(name=name)
    ev = Evaluator(data)
    train_x, train_y = load_dataset(data, "train").take(None)
    test_x, _ = load_dataset(data, "test").take(None)
    x = train_x[:n]
    g = torch.Generator().manual_seed(0)
    sets = [
        ("real test (itself)", test_x[:n]),
        ("real train", x),
        ("uniform noise", torch.randint(0, 256, x.shape, dtype=torch.uint8, generator=g)),
        ("shuffled pixels", shuffled_pixels(x)),
        ("single class (0)", train_x[train_y == 0][:n]),
        ("half intensity", x // 2),
    ]
    if gan_steps > 0 and name in PRESETS:
        start = time.perf_counter()
        label = f"GAN {PRESETS[name]}, {gan_steps} steps" + (f" ({', '.join(gan_set)})" if gan_set else "")
        sets.append((label, gan_samples(name, gan_steps, n, gan_set)))
        print(f"[{name}] trained the GAN for {gan_steps} steps in {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
    rows = []
    for label, images in sets:
        out = ev.metrics(images)
        rows.append((label, {c: out[protocol_name(c, len(images))] for c in COLUMNS} | {"n": len(images)}))
    return ev, rows


def markdown(results: list[tuple[str, Evaluator, list[tuple[str, dict[str, float]]]]]) -> str:
    lines = ["| dataset | samples | n | cis | cfd | coverage | class_kl | precision | recall | density "
             "| manifold_coverage |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, _, rows in results:
        for label, m in rows:
            lines.append(f"| {name} | {label} | {m['n']} | {m['cis']:.2f} | {m['cfd']:.2f} | {m['coverage']:.0f} "
                         f"| {m['class_kl']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['density']:.3f} "
                         f"| {m['manifold_coverage']:.3f} |")
    notes = ", ".join(f"{name} {ev.classifier.test_accuracy:.2%}" for name, ev, _ in results)
    lines.append("")
    lines.append(f"Reference: each dataset's 10k test images; classifier test accuracy: {notes}. "
                 "cis in [1, 10] (higher is better); cfd lower is better; coverage = classes with >= 2 % "
                 "of the samples; class_kl = KL(class histogram || uniform); precision/recall: k=3 "
                 "(Kynkaanniemi et al., 2019), density/manifold_coverage (Naeem et al., 2020), all on "
                 "k-NN manifolds of unit-norm classifier features against the first n test images.")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion"])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--gan-steps", type=int, default=0, help="also score a preset GAN after this many steps")
    p.add_argument("--gan-set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for that GAN, e.g. model.width=0.25 (repeatable)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name in args.datasets:
        start = time.perf_counter()
        ev, rows = rows_for(name, args.n, args.gan_steps, args.gan_set)
        results.append((name, ev, rows))
        print(f"[{name}] {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
