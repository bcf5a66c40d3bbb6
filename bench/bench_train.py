"""Training-step throughput per preset at its seed's batch size, against the matmul peak.

    python -m bench.bench_train            # all presets, ~10 s each
    python -m bench.bench_train --seconds 5 --presets mnist-dcgan mnist-mlp
    python -m bench.bench_train --preset mnist-dcgan-lite --set model.width=0.5
    python -m bench.bench_train --threads 1 --presets mnist-mlp \
        mnist-dcgan-lite:model.width=0.25 mnist-dcgan-lite:model.width=0.5,model.upsample=nearest

Measured in one process, side by side: a square fp32 matmul gives the machine's achievable peak;
each preset's real training step (data sampling, D and G phases, optimiser updates) is timed
and its arithmetic counted with forward hooks (backward = 2x forward). The ratio says how close
the step is to being bound by arithmetic rather than by Python or data handling.

A case is a preset name, optionally with overrides after a colon (``PRESET:key=v,key=v``);
``--set`` overrides apply to every case. ``--compile`` wraps G and D in ``torch.compile`` and
reports the warm-up (compilation) time next to the steady rate.
"""

from __future__ import annotations

import argparse
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


def bench(preset: str, seconds: float, device: str, sets: list[str] | None = None,
          compile_: bool = False) -> dict:
    cfg = apply_overrides(load_preset(preset), ["eval.enabled=false", "balance.enabled=false", *(sets or [])])
    tr = Trainer(cfg, None, torch.device(device), None)
    flops = step_flops(tr)  # before compiling: the hooks count the plain modules
    if compile_:
        tr.G, tr.D = torch.compile(tr.G), torch.compile(tr.D)
    t_warm = time.perf_counter()
    for _ in range(3):
        tr.train_step()
    warmup = time.perf_counter() - t_warm
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tr.train_step()
        steps += 1
    dt = time.perf_counter() - t0
    label = preset + (f" ({', '.join(sets)})" if sets else "")
    return {"preset": label, "batch": cfg.train.batch_size, "steps_s": steps / dt,
            "images_s": steps * cfg.train.batch_size / dt, "gflops": flops * steps / dt / 1e9,
            "warmup_s": warmup}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--presets", "--preset", nargs="*", default=PRESETS, metavar="PRESET[:KEY=V,...]",
                   help="cases to bench (default: the seed presets)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every case (repeatable), e.g. model.width=0.5")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (reports warm-up)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [parse_case(case, args.set) for case in args.presets]  # refuse a typo before timing
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak {peak:.1f} GFLOP/s fp32\n")
    print("| preset | batch | steps/s | images/s | GFLOP/s | share of matmul peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, sets in cases:
        r = bench(name, args.seconds, args.device, sets, args.compile)
        warm = f" (warm-up {r['warmup_s']:.1f} s)" if args.compile else ""
        print(f"| {r['preset']}{warm} | {r['batch']} | {r['steps_s']:.1f} | {r['images_s']:.0f} | "
              f"{r['gflops']:.1f} | {r['gflops'] / peak:.0%} |", flush=True)


if __name__ == "__main__":
    main()
