"""Benchmark: converting a folder of your own images (``data.name: folder:PATH``) into the cached
array a search trains from (not a test).

Writes ``--images`` PNGs of the example's shapes (examples/make_shapes.py) at ``--size`` pixels
into a temporary folder, then times ``load_image_set`` converting them at each ``--resolution``
(decoding, colour conversion, Lanczos resize, centre crop, stacking; Pillow in a thread pool),
and once more from the cache. Prints images per second and the load average (this machine's
cores may be shared; a busy moment lowers every figure).

Usage::

    .venv/bin/python -m bench.bench_convert [--images 8000] [--size 64] [--resolution 64 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from gan_core.config import DataConfig  # noqa: E402
from gan_core.data import image_files, load_image_set  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=8000, help="images to write (default 8000)")
    p.add_argument("--size", type=int, default=64, help="side of the written PNGs (default 64)")
    p.add_argument("--resolution", type=int, nargs="+", default=[64, 32], help="sides to convert to")
    args = p.parse_args()
    from make_shapes import CLASSES, write_folder

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANSEARCH_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp) / "shapes"
        started = time.perf_counter()
        write_folder(folder, args.images // len(CLASSES), args.size)
        n = args.images // len(CLASSES) * len(CLASSES)
        print(f"wrote {n} PNGs of {args.size}x{args.size} in {time.perf_counter() - started:.1f} s; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
        print("| conversion | images | seconds | images/s |")
        print("|---|--:|--:|--:|")
        for side in args.resolution:
            cfg = DataConfig(name=f"folder:{folder}", resolution=side, channels=3)
            start = time.perf_counter()
            load_image_set(cfg)
            first = time.perf_counter() - start
            start = time.perf_counter()
            load_image_set(cfg)
            cached = time.perf_counter() - start
            print(f"| {args.size}px PNG -> {side}x{side} RGB | {n} | {first:.2f} | {n / first:.0f} |")
            print(f"| the same, from the cache | {n} | {cached:.2f} | {n / cached:.0f} |")
        assert len(image_files.CONVERSIONS) == len(args.resolution)
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
