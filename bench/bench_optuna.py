"""Optuna alone, no Ray: what a sampler's ask costs against a study's size, and what TPE's window
(search/tpe_window.py) costs the search and saves the ask.

**The ask table** (:func:`ask_latency`; bench/bench_scale.py prints it, ``--ask-sizes``): each
sampler's ask (the dense quick space's define-by-run sampling) and tell against a study already holding
N finished trials shaped like an ASHA search's; ``tpe`` is the search's TPE (it models the latest
``TPE_HISTORY`` trials), ``tpe-all`` Optuna's own, modelling all of them.

**The window table** (``python -m bench.bench_optuna``): searches of the dense quick space asked and told
as a search of ``--concurrent`` trials at once runs them (that many asked and running, the
constant liar on; the oldest told, one more asked), on the simulated curve's floor
(bench/sim_training.py: a hidden best point, 2 there, up to ~42.5 far from it; 3 % noise on what
the sampler is told). For each window (``none``: Optuna's own TPESampler, the whole study) and
seed:

- the best floor found (the true one, without the noise) and the mean floor of the last fifth of
  the trials: how close the search got, and how close it keeps sampling;
- the ask's CPU (this thread's) at the median and 99th percentile over the last tenth of the asks,
  the largest study.

    python -m bench.bench_optuna                                      # 2,000 trials, 3 seeds
    python -m bench.bench_optuna --trials 500 --windows none 100 --seeds 0   # a minute
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPACE = REPO / "spaces" / "mnist-mlp-quick.yaml"


def ask_latency(sampler: str, size: int, asks: int = 60) -> dict[str, Any]:
    """At a given study size: an in-memory study (the driver's SQLite storage serves finished
    trials from its cache after the first ask; Optuna inserts trials into SQLite one by one, minutes
    for 5,000) pre-filled with ``size`` finished trials of the dense quick space shaped like an ASHA
    search's (two thirds PRUNED at the first rung, a third COMPLETE), then ``asks`` times the
    searcher's ask (the define-by-run sampling) and tell, p50/p99 in ms."""
    import optuna

    from search.samplers import make_sampler
    from search.space import parse_space
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = parse_space(SPACE.read_text(), str(SPACE), base_dir=SPACE.parent)
    cost = sampler == "nsga2"
    window = {"tpe_history": None} if sampler == "tpe-all" else {}
    study = optuna.create_study(sampler=make_sampler(sampler.removesuffix("-all"), seed=0, n_startup=10, **window),
                                directions=["minimize"] * (2 if cost else 1))
    filler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))  # in memory: fast
    fn, rows = space.define_by_run(0), []
    for i in range(size):
        t = filler.ask()
        fn(t)
        values = [2.0 + 40.0 * ((t.params["optim.d.lr"] - 1e-3) ** 2) * 1e6 + (i % 7)]
        if cost:
            values.append(float(1_000_000 + i % 1000))
        pruned = not cost and i % 3 != 0
        rows.append(optuna.trial.create_trial(
            params=t.params, distributions=t.distributions, values=None if pruned else values,
            state=optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE,
            intermediate_values={1: values[0] + 20.0, 2: values[0]} if not cost else None))
    study.add_trials(rows)
    ask_s, tell_s, ask_cpu = [], [], []
    started = time.perf_counter()
    for _ in range(asks):
        if len(ask_s) >= 6 and time.perf_counter() - started > 90:  # a slow sampler: enough to see it
            break
        t0, c0 = time.perf_counter(), time.thread_time()
        trial = study.ask()
        fn(trial)
        t1, c1 = time.perf_counter(), time.thread_time()
        study.tell(trial, [5.0, 1e6] if cost else 5.0)
        ask_s.append(t1 - t0)
        ask_cpu.append(c1 - c0)
        tell_s.append(time.perf_counter() - t1)

    def p(xs: list[float]) -> tuple[float, float]:
        xs = sorted(xs[1:])  # the first ask loads the whole study into the storage's cache, once a driver
        return statistics.median(xs) * 1000, xs[min(len(xs) - 1, int(0.99 * len(xs)))] * 1000

    return {"sampler": sampler, "size": size, "asks": len(ask_s), "ask_ms": p(ask_s), "ask_cpu_ms": p(ask_cpu),
            "tell_ms": p(tell_s)}


ASK_SAMPLERS = ["tpe", "tpe-all", "cmaes", "gp", "random", "nsga2"]  # tpe-all: Optuna's TPE, no window


def print_ask_table(sizes: list[int], measure: Callable[[str, int], dict[str, Any]]) -> None:
    """The ask table: each sampler's ``measure(sampler, size)`` (an :func:`ask_latency` result)."""
    print("Optuna alone: the searcher's ask (define-by-run sampling) and tell against a study already "
          "holding N finished trials (in memory: the driver's SQLite storage serves finished trials from "
          "its cache after the first ask), ms; CPU: this thread's CPU time, what the ask costs on a core "
          "of its own; tpe models the latest search/samplers.py TPE_HISTORY trials, tpe-all all of them\n")
    print("| sampler | study size | ask p50 / p99 | ask CPU p50 / p99 | tell p50 / p99 |")
    print("|---|--:|--:|--:|--:|")
    for size in sizes:
        for sampler in ASK_SAMPLERS:
            r = measure(sampler, size)
            print(f"| {sampler}{' (2 objectives)' if sampler == 'nsga2' else ''} | {size} "
                  f"| {r['ask_ms'][0]:.0f} / {r['ask_ms'][1]:.0f} | {r['ask_cpu_ms'][0]:.0f} / {r['ask_cpu_ms'][1]:.0f} "
                  f"| {r['tell_ms'][0]:.0f} / {r['tell_ms'][1]:.0f} |", flush=True)
    print()


def one_search(window: int | None, seed: int, trials: int, concurrent: int) -> dict[str, Any]:
    import optuna

    from bench.sim_training import floor_of
    from search.samplers import make_sampler
    from search.space import parse_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = parse_space(SPACE.read_text(), str(SPACE), base_dir=SPACE.parent)
    study = optuna.create_study(sampler=make_sampler("tpe", seed=seed, n_startup=space.n_startup_trials(trials),
                                                     tpe_history=window))
    sample, noise = space.define_by_run(seed), random.Random(seed)
    running: deque[Any] = deque()
    floors: list[float] = []
    ask_cpu: list[float] = []
    t0 = time.time()

    def ask() -> None:
        c0 = time.thread_time()
        trial = study.ask()
        sample(trial)
        ask_cpu.append(time.thread_time() - c0)
        running.append(trial)

    def tell() -> None:
        trial = running.popleft()
        floor = floor_of(lambda key: float(trial.params.get(key, 0.999 if key == "ema.decay" else 0.0)))
        floors.append(floor)
        study.tell(trial, floor * (1.0 + noise.gauss(0.0, 0.03)))

    while len(ask_cpu) < trials:
        if len(running) >= concurrent:
            tell()
        ask()
    while running:
        tell()
    last = sorted(ask_cpu[-max(2, trials // 10):])
    return {"window": window, "seed": seed, "best": min(floors),
            "last_mean": statistics.fmean(floors[-max(1, trials // 5):]),
            "ask_cpu_ms": (statistics.median(last) * 1000, last[min(len(last) - 1, int(0.99 * len(last)))] * 1000),
            "wall_s": time.time() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--windows", nargs="+", default=["none", "500", "1000"],
                    help="trials TPE models (none: all of them)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--concurrent", type=int, default=48, help="trials running at once")
    args = ap.parse_args()
    print(f"\n## TPE's window: {args.trials} trials of the dense quick space, {args.concurrent} at once, "
          f"seeds {' '.join(map(str, args.seeds))}\n")
    print("| window | best floor per seed | last fifth's mean floor per seed | ask CPU ms p50 / p99 "
          "(last tenth, worst seed) | seconds a search |")
    print("|---|---|---|--:|--:|", flush=True)
    for w in args.windows:
        window = None if w == "none" else int(w)
        runs = [one_search(window, s, args.trials, args.concurrent) for s in args.seeds]
        p50 = max(r["ask_cpu_ms"][0] for r in runs)
        p99 = max(r["ask_cpu_ms"][1] for r in runs)
        best = " ".join(f"{r['best']:.3f}" for r in runs)
        last = " ".join(f"{r['last_mean']:.2f}" for r in runs)
        print(f"| {w} | {best} | {last} | {p50:.0f} / {p99:.0f} "
              f"| {statistics.fmean(r['wall_s'] for r in runs):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
