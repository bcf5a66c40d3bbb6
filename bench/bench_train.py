"""Training-step throughput per preset at its seed's batch size, against the matmul peak.

    python -m bench.bench_train            # all presets, ~10 s each
    python -m bench.bench_train --seconds 5 --presets mnist-dcgan mnist-mlp
    python -m bench.bench_train --preset mnist-dcgan-lite --set model.width=0.5
    python -m bench.bench_train --threads 1 --presets mnist-mlp \
        mnist-dcgan-lite:model.width=0.25 mnist-dcgan-lite:model.width=0.5,model.upsample=nearest

Measured in one process, side by side: a square fp32 matmul gives the machine's achievable peak;
each preset's real training step (data sampling, D and G phases, optimiser updates) is timed
and its arithmetic counted with forward hooks (backward = 2x forward). The ratio says how close
the step is to being bound by arithmetic rather than by Python or data handling. The time is
split into ``--rounds`` rounds, each measuring the peak and then every case in turn, and the
table gives medians over rounds (a case's share is its rate over the same round's peak), so
load from other processes that comes and goes shifts a case and its peak together.

A case is a preset name, optionally with overrides after a colon (``PRESET:key=v,key=v``);
``--set`` overrides apply to every case. ``--compile`` wraps G and D in ``torch.compile`` and
reports the warm-up (compilation) time next to the steady rate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gan_core import models
from gan_core.config import apply_overrides, load_preset, preset_names
from gan_core.loop import Trainer

PRESETS = ["mnist-mlp", "mnist-dcgan-lite", "mnist-dcgan", "fashion-dcgan", "mnist-cgan", "color-mnist-dcgan"]


def matmul_peak(n: int = 2048, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def step_flops(tr: Trainer) -> float:
    """Arithmetic of one training step: D phase (G fwd on B, D fwd+bwd on 2B per D step) and
    G phase (G fwd+bwd and D fwd+bwd on B)."""
    bs, d_steps = tr.cfg.train.batch_size, tr.cfg.train.d_steps
    z = models.sample_latent(1, tr.G.latent_dim, tr.G.latent_dist, torch.Generator().manual_seed(0), tr.device)
    y = torch.zeros(1, tr.num_classes, device=tr.device) if tr.G.conditional else None
    x = tr.G.eval()(z, y)
    tr.G.train()
    fg = models.estimate_flops(tr.G, (z, y))
    fd = models.estimate_flops(tr.D, (x, y))
    d_phase = d_steps * (fg + 3 * 2 * fd)
    g_phase = 3 * fg + 3 * fd
    return bs * (d_phase + g_phase)


def parse_case(case: str, sets: list[str]) -> tuple[str, list[str]]:
    """``PRESET[:key=v,key=v]`` -> (preset, overrides), the case's own after ``sets``."""
    name, _, rest = case.partition(":")
    if name not in preset_names():
        raise SystemExit(f"--presets: {name!r} is not one of {', '.join(preset_names())}")
    return name, list(sets) + [item for item in rest.split(",") if item]


class Case:
    """One preset's trainer, built and warmed up, timed in slices (``run``)."""

    def __init__(self, preset: str, device: str, sets: list[str], compile_: bool = False) -> None:
        cfg = apply_overrides(load_preset(preset), ["eval.enabled=false", "balance.enabled=false", *sets])
        self.label = preset + (f" ({', '.join(sets)})" if sets else "")
        self.batch = cfg.train.batch_size
        self.tr = Trainer(cfg, None, torch.device(device), None)
        self.flops = step_flops(self.tr)  # before compiling: the hooks count the plain modules
        if compile_:
            self.tr.G, self.tr.D = torch.compile(self.tr.G), torch.compile(self.tr.D)
        t_warm = time.perf_counter()
        for _ in range(3):
            self.tr.train_step()
        self.warmup_s = time.perf_counter() - t_warm
        self.rates: list[float] = []  # steps/s per round
        self.shares: list[float] = []  # GFLOP/s over the round's matmul peak

    def run(self, seconds: float, peak: float) -> None:
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            self.tr.train_step()
            steps += 1
        rate = steps / (time.perf_counter() - t0)
        self.rates.append(rate)
        self.shares.append(self.flops * rate / 1e9 / peak)

    def row(self) -> dict:
        rate = statistics.median(self.rates)
        return {"preset": self.label, "batch": self.batch, "steps_s": rate, "images_s": rate * self.batch,
                "gflops": self.flops * rate / 1e9, "share": statistics.median(self.shares),
                "warmup_s": self.warmup_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--presets", "--preset", nargs="*", default=PRESETS, metavar="PRESET[:KEY=V,...]",
                   help="cases to bench (default: the seed presets)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every case (repeatable), e.g. model.width=0.5")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (reports warm-up)")
    p.add_argument("--rounds", type=int, default=4,
                   help="split each case's seconds into this many rounds, each after its own peak (default 4)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    args = p.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds: must be >= 1, got {args.rounds}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [parse_case(case, args.set) for case in args.presets]  # refuse a typo before timing
    built = [Case(name, args.device, sets, args.compile) for name, sets in cases]
    peaks = []
    for _ in range(args.rounds):
        peaks.append(matmul_peak(seconds=max(0.5, 2.0 / args.rounds)))
        for case in built:
            case.run(args.seconds / args.rounds, peaks[-1])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak {statistics.median(peaks):.1f} "
          f"GFLOP/s fp32 (median of {args.rounds} rounds, {min(peaks):.1f}-{max(peaks):.1f})\n")
    print("| preset | batch | steps/s | images/s | GFLOP/s | share of matmul peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for case in built:
        r = case.row()
        warm = f" (warm-up {r['warmup_s']:.1f} s)" if args.compile else ""
        print(f"| {r['preset']}{warm} | {r['batch']} | {r['steps_s']:.1f} | {r['images_s']:.0f} | "
              f"{r['gflops']:.1f} | {r['share']:.0%} |", flush=True)


if __name__ == "__main__":
    main()
