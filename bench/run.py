"""Run every benchmark in one process tree, one after another, and print their Markdown tables.

    make bench                 # or: python -m bench.run [--quick]

Each benchmark measures side by side in one run (e.g. a training step against a matmul peak
measured seconds before), so the ratios hold on whatever machine runs them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHES = [
    ("training step throughput", ["bench.bench_train"], ["--seconds", "3"]),
    ("metric speed", ["bench.bench_metrics"], []),
    ("converting a folder of your own images", ["bench.bench_convert"], ["--images", "2000"]),
    ("search overhead", ["bench.bench_search"], []),
    ("quality at equal compute (~15 min on 2 cores)", ["bench.bench_quality"], ["--images", "64000"]),
    ("does the search beat its base? (~35 min on 2 cores)", ["bench.bench_search_gain"], ["--seeds", "0"]),
    ("TPE's window: what it costs the search, what it saves the ask", ["bench.bench_optuna"],
     ["--trials", "1000", "--windows", "none", "500", "--seeds", "0"]),
    ("at scale: thousands of simulated trials (the longest: hours on 2 shared cores)", ["bench.bench_scale"],
     ["--sizes", "100", "--samplers", "--no-bare", "--ask-sizes", "1000"]),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter timings (noisier)")
    args = p.parse_args()
    failed = 0
    for title, module, quick_args in BENCHES:
        print(f"\n## {title}\n", flush=True)
        cmd = [sys.executable, "-m", *module, *(quick_args if args.quick else [])]
        failed += subprocess.call(cmd) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
