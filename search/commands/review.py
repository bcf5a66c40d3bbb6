"""``gansearch review``: what won a search and why: leaderboard, importance, plots, export."""

from __future__ import annotations

import argparse

from gan_core.errors import GansearchError
from search.commands._common import formatter, out_dir, out_file

EXAMPLE = """example:
  gansearch review runs/quick
  gansearch review runs/quick --plots runs/quick/plots --export best.yaml
  gansearch review runs/quick --trial 3f2a1c9b --export t3.yaml
  gansearch review s3://my-bucket/gansearch/dcgan --top 5
  gansearch review runs/quick --csv leaderboard.csv --json leaderboard.json
  gansearch review runs/quick --plots runs/quick/plots --optuna-plots
  gansearch review runs/quick --confirm 3 --seeds 3 --export best.yaml   # top 3, and the base, on 3 more seeds
  gansearch review runs/quick --confirm 1 --seeds 3 --jobs 2            # the best non-base trial and the base, 2 at once
  gansearch review runs/quick --cost params --plots runs/quick/plots      # Pareto front, pareto.png
  gansearch retrain best.yaml --out runs/best

prints the leaderboard (rank, trial, each trial's best score, the images at which it was
reached, its last score, the parts of the best score, the searched hyperparameters, images
seen, status: completed, stopped early, diverged, failed or unfinished, with reasons), the
hyperparameter importance over the trials that trained the full budget, and the best score
against the number of trials for each architecture and loss (Lucic et al. 2018). --plots writes scores.png,
best_vs_time.png, slice_<key>.png per searched key, learning_curves.png and top_samples.png
(the top K trials), and lucic.png; with --optuna-plots also Optuna's own plots of the study
(optuna_optimization_history.png, optuna_slice.png, optuna_parallel_coordinate.png,
optuna_contour.png, optuna_intermediate_values.png). --csv and --json write the whole
leaderboard, one record per trial: rank, trial, status, reason, the best score and the images
at it, the last score and images seen, every searched parameter (by config key), and every
metric at the best point (best.<name>) and in the last report (last.<name>). Reads the
folder's files only (without Ray), so a search still running, an interrupted one, or one on a cluster's storage (s3:// or gs://, or a copy) can
be reviewed; nothing in it is changed, except by --confirm.

--confirm K re-trains the top K finished trials' configs besides the space's base point, and the
base point (the recipe the search started from), on --seeds S further seeds each at the full budget (in this process one
after another, or --jobs J processes at once), prints each config's mean and sd over those seeds
(the search's own score is not averaged in: it was selected for being good) and whether the
winner beat the base point by more than one seed's spread, writes
confirm.json, confirmed_config.yaml (the best mean's) and the runs (confirm/<trial>/seed_<seed>/)
into the experiment, marks those rows in the leaderboard, and makes --export write the config
with the best mean. --cost params | images_per_s lists the trials no other trial beats on both score and cost (the Pareto front;
the search's own --cost by default) and, with --plots, draws pareto.png."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="leaderboard, importance, plots and export of a search",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("experiment", metavar="EXPERIMENT_PATH",
                   help="the experiment `gansearch search` printed (a folder or s3:// / gs:// URI)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="trials in the learning curves and samples")
    p.add_argument("--export", metavar="FILE.yaml",
                   help="write the best (or --trial) trial's config here, its best point in comments on top")
    p.add_argument("--trial", metavar="ID", help="export this trial instead of the best")
    p.add_argument("--plots", metavar="DIR", help="write the PNG plots here")
    p.add_argument("--optuna-plots", action="store_true",
                   help="with --plots: also draw Optuna's plots of the study (history, slice, contour, ...)")
    p.add_argument("--csv", metavar="FILE.csv", help="write the leaderboard with every parameter and metric here")
    p.add_argument("--json", metavar="FILE.json", help="write the leaderboard with every parameter and metric here")
    p.add_argument("--include-stopped", action="store_true",
                   help="count early-stopped trials (at their best score, fewer images) in the Lucic et al. study")
    p.add_argument("--confirm", type=int, metavar="K",
                   help="re-train the top K configs on --seeds further seeds; --export takes the best mean")
    p.add_argument("--seeds", type=int, default=3, metavar="S", help="further seeds per config for --confirm")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="--confirm's runs trained at once, each in a process of its own with cpu_count/J threads")
    p.add_argument("--cost", choices=["params", "images_per_s"],
                   help="list the score/cost Pareto front (and draw pareto.png with --plots); "
                        "None: the search's --cost, if it had one")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search import review

    if args.top < 1:
        raise GansearchError(f"--top: must be >= 1, got {args.top}")
    if args.trial and not args.export:
        raise GansearchError("--trial: only used with --export FILE.yaml (which trial's config to write)")
    if args.export is not None:
        out_file("--export", args.export, suffixes=(".yaml", ".yml"))
    if args.plots is not None:
        out_dir("--plots", args.plots)
    if args.csv is not None:
        out_file("--csv", args.csv, suffixes=(".csv",))
    if args.json is not None:
        out_file("--json", args.json, suffixes=(".json",))
    if args.optuna_plots and not args.plots:
        raise GansearchError("--optuna-plots: only used with --plots DIR (where to write them)")
    if args.confirm is not None and (args.confirm < 1 or args.seeds < 1 or args.jobs < 1):
        raise GansearchError(f"--confirm/--seeds/--jobs: must be >= 1, got --confirm {args.confirm} --seeds "
                             f"{args.seeds} --jobs {args.jobs}")
    if args.jobs != 1 and args.confirm is None:
        raise GansearchError("--jobs: only used with --confirm K (how many confirmation runs train at once)")
    exp = review.load_experiment(args.experiment)
    if args.trial:
        exp.trial(args.trial)  # a bad ID fails before anything is printed or written
    confirmed = None
    if args.confirm:
        from search.confirm import confirm, format_report

        confirmed = confirm(exp, args.confirm, args.seeds, jobs=args.jobs)
    print(review.format_leaderboard(exp, args.top))
    if confirmed is not None:
        print()
        print(format_report(confirmed))
    cost = args.cost or exp.manifest.cost
    if cost:
        from search.pareto import format_front

        print()
        print(format_front(exp, cost))
    print()
    print(review.format_importance(*review.importance(exp)))
    print()
    groups = review.lucic_groups(exp, include_stopped=args.include_stopped)
    print(review.format_lucic(exp, groups, args.include_stopped))
    if args.export:
        pick = args.trial or (confirmed.best.trial_id if confirmed and confirmed.best else None)
        t, _ = review.export_config(exp, args.export, pick)
        print()
        print(f"exported trial {t.trial_id} ({review.status_text(t)}; best point: {exp.metric} "
              f"{review.fmt(t.score)} after {t.best_images} images, checkpoint {t.checkpoint or 'not on disk'}) "
              f"to {args.export}; train it for the full budget with:\n"
              f"  gansearch retrain {args.export} --out runs/{exp.name}-{t.trial_id}")
        if confirmed is not None and confirmed.best is not None and not args.trial:
            print(f"(chosen by --confirm: the best mean over further seeds, {confirmed.best.mark()})")
    if args.plots:
        from search.review.plots import write_plots

        paths = write_plots(exp, args.plots, top=args.top, include_stopped=args.include_stopped)
        if cost:
            from pathlib import Path

            from search.review.pareto import draw_front

            paths.append(draw_front(exp, cost, Path(args.plots) / "pareto.png"))
        note = ""
        if args.optuna_plots:
            from search.review.optuna_plots import write_optuna_plots

            more, note = write_optuna_plots(exp, args.plots)
            paths += more
        print()
        print(f"plots in {args.plots}: " + ", ".join(p.name for p in paths))
        if note:
            print(f"Optuna plots: {note}")
    from search.review.tables import write_csv, write_json

    for out, write in ((args.csv, write_csv), (args.json, write_json)):
        if out:
            write(exp, out)
            print(f"leaderboard ({len(exp.trials)} trials, every parameter and metric) written to {out}")
    return 0
