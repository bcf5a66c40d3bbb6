"""Quality at equal compute, side by side in one run: which recipe buys the best generator?

    python -m bench.bench_quality                       # the README's table (~15 min on 2 cores)
    python -m bench.bench_quality --images 128000 --jobs 2 --n 10000
    python -m bench.bench_quality --recipes dense=mnist-mlp:model.width=0.5 lite=mnist-dcgan-lite

Every recipe trains for the same number of images (``--images``) on one thread each, ``--jobs``
of them at a time, with the same seed. During training each one is scored every ``images / 4``
images on ``--n`` samples (10,000 by default: a Frechet distance on fewer samples is biased
upward), and the wall time spent training up to each evaluation is recorded. The table gives, per
recipe: images/s, then cfd / precision / recall / coverage after the full budget (equal images),
then the cfd each recipe had reached after the same training seconds (equal time: the budget of
the fastest-to-finish recipe, read off its evaluation log).

The default set is the ablation of the quick recipe (preset ``mnist-mlp-quick``, the base of
``spaces/mnist-mlp-quick.yaml``): the seed-001 dense recipe the quick space searched first, the quick recipe
itself, the quick recipe with each thing it has on switched off, and with each stabiliser it leaves
off switched on. Each recipe's run folder (sample grids, metrics.jsonl) and JSON result stay under
``--out``; a second call reuses finished recipes unless ``--fresh``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUICK = "mnist-mlp-quick"
# The seed-001 dense recipe the quick space searched before this recipe (the old demo's winner).
DENSE = ("seed 001 dense, half width (old quick)",
         "mnist-mlp:model.width=0.5,optim.d.lr=1.79e-3,optim.g.lr=3.15e-4")
# What the quick recipe has on, switched off; and each stabiliser it leaves off, switched on.
ABLATIONS = [
    ("quick - EMA", "ema.decay=0"),
    ("quick - hinge (non-saturating BCE)", "loss.name=bce"),
    ("quick - R1", "loss.r1_gamma=0"),
    ("quick - PyTorch init (Glorot, the original's)", "model.init=original"),
    ("quick + spectral norm on D", "model.spectral_norm=d"),
    ("quick + DiffAugment translation", "augment.policy=translation"),
]


def default_recipes() -> list[tuple[str, str]]:
    """The old dense recipe, the quick recipe, and the quick recipe with one change each."""
    return [DENSE, ("quick recipe (mnist-mlp-quick)", QUICK),
            *((label, f"{QUICK}:{change}") for label, change in ABLATIONS)]


def load_recipe(source: str, images: int, every: int, n: int) -> Any:
    """``PRESET_OR_FILE[:key=v,key=v]`` -> Config, with the benchmark's budget and evaluation. A
    comma not followed by ``key=`` belongs to the value: ``augment.policy=translation,color``."""
    from gan_core.config import apply_overrides, load_config, load_preset

    base, _, sets = source.partition(":")
    cfg = load_config(REPO / base) if base.endswith((".yaml", ".yml")) else load_preset(base)
    overrides = [s for s in re.split(r",(?=[\w.]+=)", sets) if s]
    overrides += [f"train.images={images}", f"eval.every={every}", f"eval.n={n}", "eval.enabled=true",
                  "train.checkpoint_every=0", f"train.sample_every={images}", f"train.log_every={every}"]
    return apply_overrides(cfg, overrides)


def run_one(source: str, images: int, n: int, out_dir: str) -> dict[str, Any]:
    """Train one recipe in this process; returns its evaluations with training seconds."""
    import torch

    from gan_core.loop import Callbacks, train

    torch.set_num_threads(1)
    cfg = load_recipe(source, images, max(images // 4, 1), n)
    evals: list[dict[str, Any]] = []
    clock = {"train": 0.0, "since": 0.0}

    def should_stop() -> bool:
        if not clock["since"]:
            clock["since"] = time.perf_counter()
        return False

    def on_eval(metrics: dict[str, Any], run_dir: Path | None) -> None:
        now = time.perf_counter()  # since the last evaluation: training, then this evaluation
        clock["train"] += now - clock["since"] - metrics.get("_eval_s", 0.0)
        clock["since"] = now
        evals.append({**metrics, "train_s": clock["train"]})

    t0 = time.perf_counter()
    timed = _timed_evaluator(cfg)
    result = train(cfg, out_dir, progress=False, evaluator=timed,
                   callbacks=Callbacks(on_eval=lambda m, d: on_eval({**m, "_eval_s": timed.last_s}, d),
                                       should_stop=should_stop))
    for e in evals:
        e.pop("_eval_s", None)
    return {"source": source, "status": result.status, "reason": result.reason, "evals": evals,
            "wall_s": time.perf_counter() - t0, "images": result.images_seen}


class _TimedEvaluator:
    """The run's evaluator, remembering how long its last call took (taken out of training time)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.last_s = inner, 0.0

    def __call__(self, images: Any, labels: Any) -> dict[str, float]:
        t0 = time.perf_counter()
        out = self.inner(images, labels)
        self.last_s = time.perf_counter() - t0
        return out


def _timed_evaluator(cfg: Any) -> _TimedEvaluator:
    from gan_core.metrics import make_evaluator

    return _TimedEvaluator(make_evaluator(cfg, "cpu"))


def _child(args: argparse.Namespace) -> int:
    result = run_one(args.child, args.images, args.n, args.run_dir)
    Path(args.result).write_text(json.dumps(result))
    return 0


def _launch(name: str, source: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    run_dir, result = out / slug, out / f"{slug}.json"
    if result.exists() and not args.fresh:
        return {"name": name, **json.loads(result.read_text())}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.bench_quality", "--child", source, "--images", str(args.images),
           "--n", str(args.n), "--run-dir", str(run_dir), "--result", str(result)]
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    print(f"bench_quality: training {name} ({source})", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env=env)
    print(f"bench_quality: done {name}", flush=True)
    return {"name": name, **json.loads(result.read_text())}


def _at(evals: list[dict[str, Any]], seconds: float) -> dict[str, Any] | None:
    """The last evaluation reached within ``seconds`` of training."""
    done = [e for e in evals if e["train_s"] <= seconds * 1.0001]
    return done[-1] if done else None


def table(results: list[dict[str, Any]], n: int) -> str:
    tag = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    finished = [r for r in results if r["evals"]]
    equal_s = min(r["evals"][-1]["train_s"] for r in finished) if finished else 0.0
    lines = [f"| recipe | images/s | cfd | precision | recall | coverage | cfd after {equal_s:.0f} s |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        if not r["evals"]:
            lines.append(f"| {r['name']} | | {r['status']}: {r['reason']} | | | | |")
            continue
        last = r["evals"][-1]
        rate = last["images_seen"] / max(last["train_s"], 1e-9)
        at = _at(r["evals"], equal_s)
        cfd_at = f"{at[f'cfd_{tag}']:.2f} ({at['images_seen'] // 1000}k img)" if at else "no eval yet"
        lines.append(f"| {r['name']} | {rate:.0f} | {last[f'cfd_{tag}']:.2f} | {last[f'precision_{tag}']:.3f} | "
                     f"{last[f'recall_{tag}']:.3f} | {last[f'coverage_{tag}']:.0f} | {cfd_at} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=384_000, help="images per recipe (default 384000, a dense quick-space trial)")
    p.add_argument("--n", type=int, default=10_000, help="samples per evaluation (default 10000)")
    p.add_argument("--jobs", type=int, default=2, help="recipes trained at once, one thread each")
    p.add_argument("--recipes", nargs="*", metavar="NAME=SOURCE",
                   help="NAME=PRESET_OR_FILE[:key=v,...] (default: the quick recipe's ablation)")
    p.add_argument("--out", default="out/bench-quality", help="run folders, JSON results and sample grids")
    p.add_argument("--fresh", action="store_true", help="re-train recipes whose results already exist")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)
    recipes = ([tuple(r.split("=", 1)) for r in args.recipes] if args.recipes else default_recipes())
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda nr: _launch(nr[0], nr[1], args, out), recipes))
    text = table(results, args.n)
    (out / "table.md").write_text(text + "\n")
    print(f"\nquality at equal compute: {args.images} images per recipe, scores on {args.n} samples\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
