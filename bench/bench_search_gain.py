"""Does the search earn its keep? A space searched with several seeds; each search's top configs
and the space's base point re-trained on further seeds, side by side.

    python -m bench.bench_search_gain                  # spaces/quick.yaml, seeds 0 1 2 (~55 min on 2 cores)
    python -m bench.bench_search_gain --space spaces/mnist-mlp-quick.yaml   # the dense quick space (~25 min)
    python -m bench.bench_search_gain --space spaces/fashion-lite.yaml --seeds 0 1 2 --confirm 2

For each search seed it runs what a user runs (``gansearch search --seed S``, then ``gansearch
review --confirm K --seeds C --jobs J``): the search, then its top K configs besides the base
point, and the base point (the recipe the search starts from, evaluated first), trained again at the search's full budget on
C further seeds each. The search's pick is the best mean among the confirmed configs other than
the base point (what ``--confirm`` exports, unless the base point's mean is better still). A
Markdown table gives, per search seed: the search's own winner (one seed, selected), the pick and
its mean ± sd, the base point's mean ± sd, the gain, and whether the pick beat the base point by
more than one seed's spread (the larger of the two sds). The last line counts the searches where
it did. Searches and confirmations already under ``--out`` are reused (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def gansearch(*argv: str) -> None:
    """One gansearch command, as a user runs it (the venv's console script beside this Python)."""
    exe = Path(sys.executable).with_name("gansearch")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "search.cli"]), *argv]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def one_seed(space: Path, seed: int, out: Path, k: int, confirm_seeds: int, jobs: int) -> dict[str, Any]:
    """Search with ``seed`` (reused when finished), confirm its top ``k`` and the base point."""
    from search.confirm import compare_with_base, read_confirmed
    from search.experiment import open_experiment

    name = f"{space.stem}-seed{seed}"
    exp_dir = out / name
    t0 = time.perf_counter()
    if not (exp_dir / "gansearch.json").exists():
        gansearch("search", "--space", str(space), "--name", name, "--storage", str(out), "--seed", str(seed), "--quiet")
    search_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gansearch("review", str(exp_dir), "--confirm", str(k), "--seeds", str(confirm_seeds), "--jobs", str(jobs))
    confirm_s = time.perf_counter() - t0
    exp = open_experiment(exp_dir)
    best, base = exp.best(), exp.base_trial()
    confirmed = read_confirmed(exp)
    cmp = compare_with_base(list(confirmed.values()), exp.objective)
    pick = cmp.best if cmp else None
    base_c = confirmed.get(base.trial_id) if base else None
    row: dict[str, Any] = {"seed": seed, "trials": len(exp.trials), "search_s": search_s, "confirm_s": confirm_s,
                           "search_winner": best.trial_id if best else None,
                           "search_winner_score": best.score if best else None,
                           "base": base.trial_id if base else None, "base_search_score": base.score if base else None,
                           "pick": pick.trial_id if pick else None, "pick_search_score": pick.search_score if pick else None,
                           "pick_scores": pick.scores if pick else [], "pick_mean": pick.mean if pick else None,
                           "pick_sd": pick.sd if pick else None, "base_scores": base_c.scores if base_c else [],
                           "base_mean": base_c.mean if base_c else None, "base_sd": base_c.sd if base_c else None,
                           "gain": cmp.gain if cmp else None, "spread": cmp.spread if cmp else None,
                           "beats": cmp.beats if cmp else False}
    return row


def fmt(v: float | None, digits: str = ".3g") -> str:
    return "-" if v is None else format(v, digits)


def table(rows: list[dict[str, Any]], metric: str) -> str:
    lines = [f"| search seed | trials | search's winner ({metric}, one seed) | best other confirmed config ({metric}, "
             "one seed) | its mean ± sd | base point's mean ± sd | gain | beats the base by more than one sd | "
             "search + confirm |",
             "|--:|--:|---|---|--:|--:|--:|---|--:|"]
    for r in rows:
        own = "the base point" if r["search_winner"] == r["base"] else r["search_winner"]
        lines.append(f"| {r['seed']} | {r['trials']} | {own} ({fmt(r['search_winner_score'])}) | {r['pick']} "
                     f"({fmt(r['pick_search_score'])}) | {fmt(r['pick_mean'])} ± {fmt(r['pick_sd'], '.2g')} | "
                     f"{fmt(r['base_mean'])} ± {fmt(r['base_sd'], '.2g')} | {fmt(r['gain'])} | "
                     f"{'yes' if r['beats'] else 'no'} | {r['search_s'] / 60:.1f} + {r['confirm_s'] / 60:.1f} min |")
    won = sum(r["beats"] for r in rows)
    lines.append("")
    lines.append(f"After confirmation the search's pick beat the base point by more than one seed's spread in "
                 f"{won} of {len(rows)} searches.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", type=Path, default=REPO / "spaces" / "quick.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search seeds (one search each)")
    ap.add_argument("--confirm", type=int, default=1, metavar="K",
                    help="top K configs besides the base point confirmed (and the base point)")
    ap.add_argument("--confirm-seeds", type=int, default=3, help="further seeds for each confirmed config")
    ap.add_argument("--jobs", type=int, default=2, help="confirmation runs at once")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_search_gain")
    ap.add_argument("--fresh", action="store_true", help="start over instead of reusing searches under --out")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from search.space import load_space

    space = load_space(args.space)
    if args.fresh:
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        print(f"search seed {seed}: {args.space} -> {args.out}", file=sys.stderr, flush=True)
        rows.append(one_seed(args.space.resolve(), seed, args.out.resolve(), args.confirm, args.confirm_seeds, args.jobs))
        print(f"  search's winner {rows[-1]['search_winner']}, base {rows[-1]['base']}, best other confirmed "
              f"{rows[-1]['pick']}, gain {fmt(rows[-1]['gain'])}, "
              f"beats: {rows[-1]['beats']}", file=sys.stderr, flush=True)
    (args.out / "bench_search_gain.json").write_text(json.dumps(rows, indent=2))
    print(f"{args.space.name}: {space.objective.metric} ({space.objective.better}), budget "
          f"{space.budget.images} images a trial; the top {args.confirm} and the base point confirmed on "
          f"{args.confirm_seeds} further seeds at that budget\n")
    print(table(rows, space.objective.metric))
    return 0


if __name__ == "__main__":
    sys.exit(main())
