"""Where a search's time goes: training and evaluation versus start-up, checkpointing and reporting.

Runs a small real search on this machine (local Ray, the real loop and evaluator) and prints a
Markdown table: per trial, the driver's wall time (Tune starts the trial -> Tune records it
finished), the part the trainable spent in the training loop (training steps and evaluations),
start-up (actor and imports, dataset, models, evaluator), time inside ``ray.tune.report``
(persisting the checkpoint and handing the result to the driver) and the rest; then the
overhead share and trials per hour. The loop's own checkpoint.pt writes happen inside the loop;
their cost is measured separately and listed below the table.

    .venv/bin/python bench/bench_search.py                      # about 3-4 minutes on 2 cores
    .venv/bin/python bench/bench_search.py --trials 6 --images 384000

Its trials are the dense quick space's (spaces/mnist-mlp-quick.yaml: its recipe, learning rates, evaluations of
2,000 samples every 64k images), cut at the first ASHA rung (128k images) as most of them are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPACE = """
name: bench
base: mnist-mlp-quick
budget: {{images: {images}, eval_every: {every}, grace_images: {every}}}
params:
  optim.d.lr: {{float: [5.0e-4, 2.0e-3], log: true}}
  optim.g.lr: {{float: [1.5e-4, 6.0e-4], log: true}}
  eval.n: 2000
  train.log_every: 16000
  train.sample_every: {every}
  train.checkpoint_every: 0
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--images", type=int, default=128000, help="images per trial (the dense quick space's first rung)")
    ap.add_argument("--every", type=int, default=64000, help="images between evaluations (reports; the dense quick space's)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs Ray may use")
    ap.add_argument("--scheduler", default="fifo", choices=["fifo", "asha"])
    args = ap.parse_args()

    os.environ.setdefault("GANSEARCH_DATA", str(REPO.parent / "shared" / "data"))
    import ray
    from ray.tune import Callback

    from search.experiment import SearchOptions
    from search.raytune.tune import run_search
    from search.space import parse_space

    class Clock(Callback):
        """Driver-side start and end of every trial."""

        def __init__(self) -> None:
            self.start: dict[str, float] = {}
            self.end: dict[str, float] = {}

        def on_trial_start(self, iteration, trials, trial, **info):
            self.start.setdefault(trial.trial_id, time.time())

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.end[trial.trial_id] = time.time()

        def on_trial_error(self, iteration, trials, trial, **info):
            self.end[trial.trial_id] = time.time()

    space = parse_space(SPACE.format(images=args.images, every=args.every), "bench")
    clock = Clock()
    env = {k: os.environ[k] for k in ("GANSEARCH_DATA", "GANSEARCH_CACHE") if k in os.environ}
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {**env, "PYTHONPATH": str(REPO)}})
    with tempfile.TemporaryDirectory(prefix="gansearch-bench-") as tmp:
        t0 = time.time()
        out = run_search(space, SearchOptions(name="bench", storage=tmp, trials=args.trials,
                                              scheduler=args.scheduler, verbose=0), callbacks=[clock])
        wall = time.time() - t0
        rows = []
        for r in out.rows:
            lines = Path(r.path, "result.json").read_text().splitlines()
            last = json.loads(lines[-1]) if lines else {}
            trial_wall = clock.end.get(r.trial_id, 0) - clock.start.get(r.trial_id, 0)
            rows.append((r, last, trial_wall, len(lines)))
        ckpt_s = checkpoint_write_seconds(space)
    ray.shutdown()

    print(f"\n## Search overhead: {args.trials} trials x {args.images} images (mlp, width 0.5), "
          f"{args.cpus} CPUs, scheduler {args.scheduler}\n")
    print("| trial | status | images | reports | wall s | train+eval s | start-up s | report s | other s | overhead |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    tot_wall = tot_train = 0.0
    for r, last, trial_wall, n in rows:
        train_s = float(last.get("train_eval_s", 0.0))
        startup = float(last.get("startup_s", 0.0))
        report = float(last.get("report_s", 0.0))
        other = max(0.0, trial_wall - train_s - startup - report)
        tot_wall += trial_wall
        tot_train += train_s
        share = 1 - train_s / trial_wall if trial_wall > 0 else float("nan")
        print(f"| {r.trial_id} | {r.status} | {r.images_seen} | {n} | {trial_wall:.1f} | {train_s:.1f} | "
              f"{startup:.1f} | {report:.2f} | {other:.1f} | {share:.1%} |")
    share = 1 - tot_train / tot_wall if tot_wall else float("nan")
    print(f"| **all** | | | | **{tot_wall:.1f}** | **{tot_train:.1f}** | | | | **{share:.1%}** |")
    print(f"\nsearch wall time {wall:.0f} s (Ray start-up included); "
          f"**{len(rows) / wall * 3600:.0f} trials per hour** at this budget; "
          f"overhead share of trial wall time **{share:.1%}**")
    print(f"checkpoint.pt writes inside the loop: {ckpt_s * 1000:.0f} ms each, "
          f"{args.images // args.every} per trial (counted in train+eval above)")
    return 0


def checkpoint_write_seconds(space) -> float:
    """Time one checkpoint.pt write of the bench model (the loop writes one per evaluation)."""
    import torch

    from gan_core import models
    from gan_core.checkpoint import save_checkpoint
    from gan_core.optim import build_optimizer
    from search.space import FixedParam

    fixed = {p.key: p.value for p in space.params if isinstance(p, FixedParam)}
    cfg = space.config_for({**space.base_point(), **fixed})
    G, D = models.build(cfg.model, (1, 28, 28), 10)
    opt_g, _ = build_optimizer(cfg.optim.g, list(G.parameters()), "g")
    opt_d, _ = build_optimizer(cfg.optim.d, list(D.parameters()), "d")
    for opt, net in ((opt_g, G), (opt_d, D)):  # populate Adam's moment buffers
        net(torch.zeros(2, *((cfg.model.latent_dim,) if net is G else (1, 28, 28)))).sum().backward()
        opt.step()
    state = {"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for _ in range(5):
            save_checkpoint(state, Path(tmp) / "checkpoint.pt")
        return (time.perf_counter() - t) / 5


if __name__ == "__main__":
    sys.exit(main())
