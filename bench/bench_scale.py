"""A thousand GPUs' worth of trials, simulated: the search driver, the study and review at scale.

Runs gansearch's real driver path (the dense quick space, the BudgetOptunaSearch searcher and its
Optuna study in SQLite, ASHA, the callbacks and loggers, the experiment folder) with a simulated
GPU in place of the GAN (bench/sim_training.py, through the trainable's one seam,
``TrialContext.training``): a synthetic learning curve of the sampled values, reported on the
dense quick space's schedule (every 64k images, ASHA's rungs at 128k and 384k) with a small
checkpoint and a sample grid per report, and a sleep instead of training. Ray gets 64 logical
CPUs (or ``--concurrent``), so 64 trials run at once on a 2-core machine.

The same simulated training runs under bare Ray Tune too (Tuner + Ray's OptunaSearch with the
same TPE + ASHA + Tune's default loggers, as a plain Tune user writes it), measured the same
way, so gansearch's own cost per trial stands next to Tune's. Each run is its own process with
its own private Ray, so the figures of one do not leak into the next. Prints a Markdown table:

- trials per hour, sustained (between 10 % and 90 % of the trials finished);
- the driver's CPU seconds (all its threads, Tuner.fit only) per trial and per report, and its
  wall-time overhead per trial as Ray's own benchmark counts it: (wall - ideal) / trials, where
  ideal = the trials' total sleep / concurrency (Ray: 10,000 one-second trials on 16 CPUs in
  715 s against 625 s ideal, ~9 ms per trial);
- Optuna's ask (the searcher's ``suggest``: ask and the define-by-run sampling) and tell, median
  and 99th percentile, over the last fifth of the trials (the largest study);
- experiment folder and study database bytes per trial;
- ``gansearch review`` (and ``review --plots``) wall time and peak memory over the experiment;
- ``resume --trials 8`` start-up: from the call to the first new trial running.

    python -m bench.bench_scale                       # the full table: 100, 1,000, 5,000 trials and
                                                      # every sampler at 1,000 (an hour or two)
    python -m bench.bench_scale --sizes 200 --samplers --no-bare --ask-sizes 1000   # tens of minutes
    python -m bench.bench_scale --one gansearch --trials 300 --profile /tmp/driver.prof
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPACE = REPO / "spaces" / "mnist-mlp-quick.yaml"


# ----------------------------------------------------------------------------- one run (a child)


def _meter() -> Any:
    """A Tune callback counting what the driver handled, and the driver's CPU time over fit."""
    from ray.tune import Callback

    class Meter(Callback):
        def __init__(self) -> None:
            self.reports = self.starts = 0
            self.ends: list[float] = []
            self.cpu0 = self.cpu1 = self.t0 = self.t1 = 0.0
            self.first_start = 0.0

        def setup(self, **info: Any) -> None:
            self.cpu0, self.t0 = _cpu(), time.time()

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.starts += 1
            self.first_start = self.first_start or time.time()

        def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any) -> None:
            self.reports += 1

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.ends.append(time.time())

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.ends.append(time.time())

        def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
            self.cpu1, self.t1 = _cpu(), time.time()

    return Meter()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _instrument(timings: dict[str, list[float]], searcher_cls: Any) -> None:
    """Time Optuna's ask and tell and the searcher's per-report and per-trial-end work (wrapped
    in place in this process: the searcher itself is the real one)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    def wrap(cls: Any, name: str, key: str) -> None:
        orig = getattr(cls, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return orig(*args, **kwargs)
            finally:  # wall time, and this thread's CPU time (what it costs on a core of its own)
                timings.setdefault(key, []).append(time.perf_counter() - t)
                timings.setdefault(key + "_cpu", []).append(time.thread_time() - c)

        setattr(cls, name, timed)

    wrap(OptunaSearch, "suggest", "ask")
    wrap(optuna.study.Study, "tell", "tell")
    wrap(searcher_cls, "on_trial_result", "searcher_report")
    wrap(searcher_cls, "on_trial_complete", "searcher_end")


def _tune_param_space(space: Any) -> dict[str, Any]:
    """The space's ranges and choices as Tune domains, as a plain Tune user writes them."""
    from ray import tune

    from search.space import ChoiceParam, FixedParam, FloatParam, IntParam

    out: dict[str, Any] = {}
    for p in space.params:
        if isinstance(p, FloatParam):
            out[p.key] = tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
        elif isinstance(p, IntParam):
            out[p.key] = tune.randint(p.low, p.high + 1)
        elif isinstance(p, ChoiceParam):
            out[p.key] = tune.choice(list(p.choices))
        elif isinstance(p, FixedParam):
            out[p.key] = p.value
    return out


def bare_trial(config: dict[str, Any], space: Any, gpu: Any) -> None:
    """The simulated training under bare Tune: a config, a run folder, a checkpoint per report."""
    from ray import tune

    ctx = tune.get_context()
    seed = int(ctx.get_trial_id().split("_")[-1], 16) % 1_000_000 if "_" in ctx.get_trial_id() else 0
    cfg = space.config_for({**config, "train.seed": seed})
    run_dir = Path(ctx.get_trial_dir()) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as src:
            for f in Path(src).iterdir():
                shutil.copy2(f, run_dir / f.name)

    def on_eval(metrics: dict[str, Any], rd: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="bare-checkpoint-") as stage:
            for name in ("checkpoint.pt", "metrics.jsonl", "config.yaml"):
                shutil.copy2(rd / name, Path(stage) / name)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(stage))

    gpu(cfg, None, trial_id=ctx.get_trial_id(), cpus=1, gpu_ids=[]).run(
        run_dir, on_eval=on_eval, should_stop=lambda: False, on_log=lambda r: None)


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """One search in this process with its own private Ray; a dict of what was measured."""
    import ray

    from bench.sim_training import SimulatedGPU
    from search.space import parse_space

    os.environ.setdefault("GANSEARCH_DATA", str(REPO.parent / "shared" / "data"))
    space = parse_space(SPACE.read_text(), str(SPACE), base_dir=SPACE.parent)
    gpu = SimulatedGPU(args.seconds)
    meter, timings = _meter(), {}
    env = {k: os.environ[k] for k in ("GANSEARCH_DATA", "GANSEARCH_CACHE") if k in os.environ}
    ray.init(num_cpus=args.concurrent, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {**env, "PYTHONPATH": str(REPO), "RAY_DEDUP_LOGS": "0"}})
    root = Path(args.root)
    name = f"{args.one}-{args.sampler}-{args.trials}"
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    t_call = time.time()
    extra: dict[str, Any] = {}
    if args.one == "gansearch":
        from search.experiment import SearchOptions
        from search.raytune.searcher import BudgetOptunaSearch
        from search.raytune.tune import run_search

        _instrument(timings, BudgetOptunaSearch)
        opts = SearchOptions(name=name, storage=str(root), trials=args.trials, max_concurrent=args.concurrent,
                             seed=0, verbose=0, sampler=args.sampler, cost=args.cost)
        if profiler:
            profiler.enable()
        run_search(space, opts, callbacks=[meter], training=gpu)
        exp = root / name
        extra["finish_s"] = time.time() - meter.t1
    elif args.one == "resume":
        from search.raytune.searcher import BudgetOptunaSearch
        from search.raytune.tune import resume_search

        _instrument(timings, BudgetOptunaSearch)
        exp = Path(args.experiment)
        if profiler:
            profiler.enable()
        resume_search(str(exp), more=args.trials, callbacks=[meter], training=gpu)
        extra["startup_s"] = meter.first_start - t_call
    else:
        import optuna
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        _instrument(timings, OptunaSearch)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(
            seed=0, n_startup_trials=space.n_startup_trials(args.trials)))
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(bare_trial, space=space, gpu=gpu), {"cpu": 1}),
            param_space=_tune_param_space(space),
            tune_config=tune.TuneConfig(
                metric="score", mode="min", search_alg=searcher, num_samples=args.trials,
                scheduler=ASHAScheduler(time_attr="images_seen", max_t=space.budget.images,
                                        grace_period=space.budget.grace_images,
                                        reduction_factor=space.search.reduction_factor),
                max_concurrent_trials=args.concurrent, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=str(root), verbose=0, callbacks=[meter],
                                      checkpoint_config=tune.CheckpointConfig(
                                          num_to_keep=2, checkpoint_score_attribute="score",
                                          checkpoint_score_order="min")))
        if profiler:
            profiler.enable()
        tuner.fit()
        exp = root / name
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    extra["ray_cpu_s"] = process_cpu()  # the trials' workers and Ray's own processes
    ray.shutdown()
    return _measures(args, meter, timings, exp, extra)


def _measures(args: argparse.Namespace, meter: Any, timings: dict[str, list[float]], exp: Path,
              extra: dict[str, Any]) -> dict[str, Any]:
    wall = meter.t1 - meter.t0
    ends = sorted(meter.ends)
    lo, hi = int(0.1 * len(ends)), max(int(0.9 * len(ends)) - 1, 0)
    sustained = (hi - lo) / (ends[hi] - ends[lo]) * 3600 if hi > lo and ends[hi] > ends[lo] else float("nan")
    ideal = meter.reports * args.seconds / args.concurrent
    db = exp / "optuna.db"

    def stats(key: str) -> tuple[float, float]:
        xs = timings.get(key, [])
        tail = xs[len(xs) * 4 // 5:] or xs
        if not tail:
            return float("nan"), float("nan")
        tail = sorted(tail)
        return statistics.median(tail) * 1000, tail[min(len(tail) - 1, int(0.99 * len(tail)))] * 1000

    n = max(len(ends), 1)
    return {
        "mode": args.one, "sampler": args.sampler, "trials": len(ends), "reports": meter.reports,
        "concurrent": args.concurrent, "seconds_per_eval": args.seconds, "experiment": str(exp),
        "wall_s": wall, "trials_per_hour": sustained,
        "driver_cpu_s": meter.cpu1 - meter.cpu0,
        "cpu_per_trial_ms": (meter.cpu1 - meter.cpu0) / n * 1000,
        "cpu_per_report_ms": (meter.cpu1 - meter.cpu0) / max(meter.reports, 1) * 1000,
        "overhead_per_trial_ms": (wall - ideal) / n * 1000,
        "ask_ms": stats("ask"), "tell_ms": stats("tell"), "ask_cpu_ms": stats("ask_cpu"), "tell_cpu_ms": stats("tell_cpu"),
        "searcher_report_ms": stats("searcher_report"), "searcher_end_ms": stats("searcher_end"),
        "folder_bytes_per_trial": _du(exp) / n,
        "db_bytes_per_trial": (db.stat().st_size / n) if db.exists() else None,
        "load": os.getloadavg(), **extra,
    }


def process_cpu() -> dict[str, float]:
    """CPU seconds of this process and of every process under it (Ray's: gcs_server, raylet, the
    trial workers), by kind, read from /proc before Ray is shut down (Linux only; {} elsewhere)."""
    procs: dict[int, tuple[int, str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").glob("[0-9]*"):
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        procs[int(d.name)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / tick)
    me, out = os.getpid(), {}
    for pid, (_, cmd, cpu) in procs.items():
        p, seen = pid, 0
        while p not in (me, 0, 1) and p in procs and seen < 50:
            p, seen = procs[p][0], seen + 1
        if p != me or pid == me:
            continue
        kind = "worker" if cmd.startswith("ray::") or "default_worker" in cmd else \
            "raylet" if "raylet" in cmd else "gcs" if "gcs_server" in cmd else "other"
        out[kind] = out.get(kind, 0.0) + cpu
    return out


def _du(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files
               if os.path.lexists(os.path.join(d, f)))


# ----------------------------------------------------------------------------- the table (parent)


def _child(argv: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh process; its RESULT line."""
    out = subprocess.run([sys.executable, "-m", "bench.bench_scale", *argv], cwd=REPO, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE if not os.environ.get("BENCH_VERBOSE")
                         else None)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    # Ray says why a search died on stderr (a worker its memory monitor killed, say): keep its end.
    raise RuntimeError(f"bench_scale {' '.join(argv)} failed (exit {out.returncode}):\n{out.stdout[-3000:]}\n"
                       f"stderr:\n{(out.stderr or '')[-3000:]}")


def _timed_command(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak memory (GiB, the process's maximum resident set) of a command."""
    t = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def review_measures(exp: str, plots: Path) -> dict[str, Any]:
    gansearch = str(Path(sys.executable).with_name("gansearch"))
    wall, mem = _timed_command([gansearch, "review", exp])
    wall_p, mem_p = _timed_command([gansearch, "review", exp, "--plots", str(plots)])
    return {"review_s": wall, "review_gib": mem, "review_plots_s": wall_p, "review_plots_gib": mem_p}


def _f(x: Any, fmt: str = ".0f") -> str:
    return "-" if x is None or (isinstance(x, float) and x != x) else format(x, fmt)


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| run | trials | reports | trials/h | driver CPU ms/trial | ms/report | overhead ms/trial (Ray's way) "
          "| ask ms p50/p99 | tell ms p50/p99 | folder KB/trial | study DB KB/trial | review s / GiB "
          "| review --plots s / GiB | resume start-up s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        name = f"{r['mode']} {r['sampler']}" + (f" --cost {r['cost']}" if r.get("cost") else "")
        review = f"{_f(r.get('review_s'), '.1f')} / {_f(r.get('review_gib'), '.2f')}" if "review_s" in r else "-"
        plots = (f"{_f(r.get('review_plots_s'), '.1f')} / {_f(r.get('review_plots_gib'), '.2f')}"
                 if "review_plots_s" in r else "-")
        db = r.get("db_bytes_per_trial")
        print(f"| {name} | {r['trials']} | {r['reports']} | {_f(r['trials_per_hour'])} | {_f(r['cpu_per_trial_ms'])} "
              f"| {_f(r['cpu_per_report_ms'], '.1f')} | {_f(r['overhead_per_trial_ms'])} "
              f"| {_f(r['ask_ms'][0], '.1f')} / {_f(r['ask_ms'][1], '.1f')} "
              f"| {_f(r['tell_ms'][0], '.1f')} / {_f(r['tell_ms'][1], '.1f')} "
              f"| {_f(r['folder_bytes_per_trial'] / 1024)} | {_f(db / 1024 if db else None, '.1f')} "
              f"| {review} | {plots} | {_f(r.get('resume_startup_s'), '.1f')} |", flush=True)


def machine() -> str:
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "unknown CPU")
    except OSError:
        cpu = "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node() or 'this machine'}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 5000], help="trials per search")
    ap.add_argument("--samplers", nargs="*", default=["cmaes", "gp", "random", "nsga2"],
                    help="other samplers, each at --sampler-trials (tpe is in --sizes)")
    ap.add_argument("--sampler-trials", type=int, default=1000)
    ap.add_argument("--concurrent", type=int, default=64, help="trials at once (Ray's logical CPUs)")
    ap.add_argument("--seconds", type=float, default=1.0, help="the simulated GPU's seconds between evaluations")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare Tune runs")
    ap.add_argument("--ask-sizes", type=int, nargs="*", default=[1000, 5000],
                    help="study sizes of the Optuna-only ask/tell table (every sampler)")
    ap.add_argument("--keep", metavar="DIR", help="keep the experiments here (default: a temporary folder)")
    # One measurement, in this process (the parent runs each this way).
    ap.add_argument("--one", choices=["gansearch", "bare", "resume", "asks"], help=argparse.SUPPRESS)
    ap.add_argument("--trials", type=int, default=200, help=argparse.SUPPRESS)
    ap.add_argument("--sampler", default="tpe", help=argparse.SUPPRESS)
    ap.add_argument("--cost", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--experiment", help=argparse.SUPPRESS)
    ap.add_argument("--profile", metavar="FILE", help="with --one: cProfile the driver into FILE")
    args = ap.parse_args()
    if args.one == "asks":
        from bench.bench_optuna import ask_latency

        print("RESULT " + json.dumps(ask_latency(args.sampler, args.trials)), flush=True)
        return 0
    if args.one:
        args.root = args.root or tempfile.mkdtemp(prefix="gansearch-scale-")
        print("RESULT " + json.dumps(one_run(args)), flush=True)
        return 0

    root = Path(args.keep or tempfile.mkdtemp(prefix="gansearch-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    common = ["--concurrent", str(args.concurrent), "--seconds", str(args.seconds), "--root", str(root)]
    print(f"\n## At scale: simulated trials on {machine()}; load average at start "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.concurrent} trials at once, "
          f"{args.seconds:g} s of simulated training per evaluation\n", flush=True)
    runs = [("tpe", n, None) for n in args.sizes] + [
        (s, args.sampler_trials, "params" if s == "nsga2" else None) for s in args.samplers]
    if args.ask_sizes:
        from bench.bench_optuna import print_ask_table

        print_ask_table(args.ask_sizes, lambda sampler, n: _child(["--one", "asks", "--sampler", sampler,
                                                                  "--trials", str(n)]))
    rows = []
    try:
        for sampler, n, cost in runs:
            if not args.no_bare and sampler == "tpe":
                rows.append(_child(["--one", "bare", "--trials", str(n), *common]))
                print_table(rows[-1:]) if len(rows) > 1 else print_table(rows)
            argv = ["--one", "gansearch", "--trials", str(n), "--sampler", sampler, *common]
            r = _child(argv + (["--cost", cost] if cost else []))
            r["cost"] = cost
            if sampler == "tpe":
                r.update(review_measures(r["experiment"], root / f"plots-{n}"))
                resumed = _child(["--one", "resume", "--trials", "8", "--experiment", r["experiment"], *common])
                r["resume_startup_s"] = resumed["startup_s"]
            rows.append(r)
            print_table([r])
    finally:
        print(f"\nload average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
