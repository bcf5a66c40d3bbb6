"""Benchmark: scoring N 28x28 samples with cached reference statistics (not a test).

Prints the time of each stage (classifier forward pass, Frechet distance, k-NN radii, precision
and recall) and of a full ``Evaluator`` call, best of ``--repeat`` runs, plus the load average:
this machine's 2 cores are shared, so a busy moment inflates every figure.

Usage::

    .venv/bin/python bench/bench_metrics.py [--dataset mnist] [--n 10000 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.config import DataConfig  # noqa: E402
from gan_core.data import load_dataset  # noqa: E402
from gan_core.metrics import Evaluator  # noqa: E402
from gan_core.metrics import metrics as M  # noqa: E402


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--n", type=int, nargs="+", default=[10_000, 2000])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = DataConfig(name=args.dataset)

    start = time.perf_counter()
    ev = Evaluator(data)  # classifier + reference statistics: cached after the first run
    print(f"setup (load or build classifier and reference): {time.perf_counter() - start:.2f} s; "
          f"classifier accuracy {ev.classifier.test_accuracy:.2%}; torch threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    images, _ = load_dataset(data, "train").take(max(args.n))
    print("| n | forward | cfd | k-NN radii | precision+recall | full evaluator | samples/s |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for n in args.n:
        x = images[:n]
        emb = ev.classifier.embed(x)
        feats, manifold = emb.features, emb.manifold
        real, radii = ev.reference.subset(n)
        t_fwd = best_of(args.repeat, lambda x=x: ev.classifier.embed(x))
        t_cfd = best_of(args.repeat, lambda f=feats: M.frechet_distance(*M.feature_statistics(f),
                                                                     ev.reference.mu, ev.reference.sigma))
        t_rad = best_of(args.repeat, lambda m=manifold: M.knn_radii(m))
        t_pr = best_of(args.repeat, lambda m=manifold, r=real, rr=radii: M.precision_recall(r, m, real_radii=rr))
        t_all = best_of(args.repeat, lambda x=x: ev(x))
        print(f"| {n} | {t_fwd:.2f} s | {t_cfd:.3f} s | {t_rad:.2f} s | {t_pr:.2f} s | {t_all:.2f} s "
              f"| {n / t_all:,.0f} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
