"""A simulated GPU: the training a trial of bench/bench_scale.py runs in place of the GAN.

It keeps the contract of search/raytune/trainable.py's ``Training`` (the one seam where a
search's trial chooses what trains), so every other part of a trial is gansearch's own: the
config validated from the sampled values, the run folder, restoring a checkpoint, the reports
with their checkpoints and costs. It imports neither torch nor numpy, so 64 trials at once fit
in a 2-core machine's memory.

At every evaluation it does what a GAN trial does on disk, in miniature, and then waits as if it
had trained: it appends a line to metrics.jsonl, writes a small checkpoint.pt and config.yaml,
and a sample grid PNG, then reports a score from a synthetic learning curve that depends on the
sampled values (a hidden best point in the dense quick space's learning rates, betas, dropout, R1
weight and EMA decay; a trial far from it converges higher and slower), so TPE, ASHA and the
study see a search with something to find. Deterministic in the trial's seed.
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHECKPOINT_BYTES = 16_384  # a tiny checkpoint; a real mnist-mlp-quick one is ~3 MB
GRID = 112  # the sample grid's side in pixels (a real 8x8 grid of 28x28 digits is 224)

# Where the synthetic curve is best: config key -> (best value, scale, log-scaled).
OPTIMUM = {
    "optim.d.lr": (1.1e-3, 0.5, True),
    "optim.g.lr": (3.2e-4, 0.5, True),
    "optim.d.beta1": (0.5, 0.25, False),
    "optim.g.beta1": (0.5, 0.25, False),
    "model.dropout": (0.05, 0.15, False),
    "loss.r1_gamma": (0.1, 1.0, True),
}


def _get(cfg: Any, key: str) -> float:
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return float(obj)


def floor_of(value: Callable[[str], float]) -> float:
    """The score a trial converges to, ``value(key)`` giving its config's values: 2 at the hidden
    best point, more away from it."""
    d2 = 0.0
    for key, (best, scale, log) in OPTIMUM.items():
        v = value(key)
        d = (math.log(v / best) if log else v - best) / scale
        d2 += d * d
    return 2.0 + 40.0 * d2 / (1.0 + d2) + (0.5 if value("ema.decay") < 0.999 else 0.0)


def curve_floor(cfg: Any) -> float:
    """The score the trial converges to (:func:`floor_of` the config)."""
    return floor_of(lambda key: _get(cfg, key))


def score_at(cfg: Any, images: int) -> float:
    """The synthetic learning curve: from ~150 down to the floor, with seeded noise."""
    floor = curve_floor(cfg)
    tau = 60_000.0 * (1.0 + floor / 20.0)  # worse points also learn slower
    noise = random.Random(cfg.train.seed * 1_000_003 + images).gauss(0.0, 0.03)
    return (floor + 150.0 * math.exp(-images / tau)) * (1.0 + noise)


def png_gray(width: int, height: int, pixels: bytes) -> bytes:
    """A greyscale PNG (8 bits), written with zlib only."""
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


_TILES: list[list[bytes]] = []  # blob tiles, each a list of rows, made once per process


def _tiles() -> list[list[bytes]]:
    if not _TILES:
        rng, cell = random.Random(0), GRID // 8
        for _ in range(32):
            cx, cy, r = rng.uniform(0.3, 0.7) * cell, rng.uniform(0.3, 0.7) * cell, rng.uniform(3, cell / 2.5)
            _TILES.append([bytes(min(255, int(255 * max(0.0, 1.0 - math.hypot(x - cx, y - cy) / r)) + rng.randrange(8))
                                 for x in range(cell)) for y in range(cell)])
    return _TILES


def sample_grid(seed: int, step: int) -> bytes:
    """An 8x8 grid of blurry blobs, different at every step (compresses like a grid of digits)."""
    rng, tiles = random.Random(seed * 7919 + step), _tiles()
    rows = []
    for _ in range(8):
        picked = [tiles[rng.randrange(len(tiles))] for _ in range(8)]
        rows += [b"".join(t[y] for t in picked) for y in range(GRID // 8)]
    return png_gray(GRID, GRID, b"".join(rows))


class SimulatedGPU:
    """Makes a trial's :class:`SimulatedTraining` (a ``TrialContext.training``): ``seconds_per_eval``
    is how long the simulated GPU trains between two evaluations."""

    def __init__(self, seconds_per_eval: float = 1.0) -> None:
        self.seconds_per_eval = seconds_per_eval

    def __call__(self, cfg: Any, ctx: Any, *, trial_id: str, cpus: float, gpu_ids: list[Any]) -> SimulatedTraining:
        return SimulatedTraining(cfg, self.seconds_per_eval)


class SimulatedTraining:
    """One simulated trial (search/raytune/trainable.py's Training contract)."""

    def __init__(self, cfg: Any, seconds_per_eval: float) -> None:
        from search.raytune.trainable import TrialFacts

        self.cfg, self.seconds = cfg, seconds_per_eval
        width = float(getattr(cfg.model, "width", 1.0) or 1.0)
        self.facts = TrialFacts("cpu", 1, "simulated", int(1_200_000 * width))

    def run(self, run_dir: Path, *, on_eval: Any, should_stop: Any, on_log: Any) -> str | None:
        cfg = self.cfg
        budget, every, batch = cfg.train.images, cfg.eval.every, cfg.train.batch_size
        images = 0
        ckpt = run_dir / "checkpoint.pt"
        if ckpt.exists():  # a resumed trial goes on from its checkpoint, as the loop does
            images = int(json.loads(ckpt.read_bytes()[:200].decode().split("\n", 1)[0])["images_seen"])
        if not (run_dir / "config.yaml").exists():
            from gan_core.config import dump_config

            (run_dir / "config.yaml").write_text(dump_config(cfg))
        (run_dir / "samples").mkdir(exist_ok=True)
        should_stop()
        while images < budget:
            time.sleep(self.seconds)  # the GPU trains
            if should_stop():
                return None
            images = min(budget, images + every)
            step = images // batch
            score = score_at(cfg, images)
            on_log({"images_per_s": every / max(self.seconds, 1e-9)})
            metrics = {"step": step, "images_seen": images, "score": score, "cfd_2k": score,
                       "precision": max(0.0, 1.0 - score / 100.0), "recall": max(0.0, 1.0 - score / 120.0)}
            with (run_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"kind": "eval", **metrics}) + "\n")
            (run_dir / "samples" / f"step-{step:06d}.png").write_bytes(sample_grid(cfg.train.seed, step))
            head = json.dumps({"images_seen": images, "step": step}).encode() + b"\n"
            tmp = ckpt.with_suffix(".tmp")
            tmp.write_bytes(head + os.urandom(CHECKPOINT_BYTES - len(head)))
            os.replace(tmp, ckpt)  # replaced atomically, as the loop does (the report hard-links it)
            on_eval(metrics, run_dir)
        return None
