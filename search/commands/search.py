"""``gansearch search``: distributed hyperparameter search over a space file (Ray Tune + Optuna)."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.commands._common import check_seed, format_outcome, formatter, out_dir
from search.experiment.manifest import DEFAULT_CONNECT_TIMEOUT, DEFAULT_PENDING_TIMEOUT
from search.samplers import DEFAULT_SAMPLER, SAMPLERS

EXAMPLE = """example:
  gansearch search --space spaces/quick.yaml --name quick
  gansearch search --space spaces/mnist-dcgan.yaml --name dcgan --address auto \\
      --storage s3://my-bucket/gansearch --gpus-per-trial 0.25 --max-concurrent 16
  gansearch search --space spaces/quick.yaml --name quick-cheap --cost params   # score vs size
  gansearch search --space spaces/quick.yaml --name quick --quiet   # one line per trial event

writes into STORAGE/NAME: Ray Tune's trial folders (checkpoints, samples, logs), the Optuna
study (optuna.db), summary.json and best_config.yaml (train it with
`gansearch train --config STORAGE/NAME/best_config.yaml --out runs/best`).
An interrupted search continues with `gansearch resume STORAGE/NAME`, a finished one grows with
`gansearch resume STORAGE/NAME --trials N`.
Watch it with `tensorboard --logdir STORAGE/NAME` (every trial's scalars and sample grids) and
`optuna-dashboard sqlite:///STORAGE/NAME/optuna.db --artifact-dir STORAGE/NAME/optuna-artifacts`
(scores, and each trial's newest sample grid); both come with the viz extra: in the clone,
`pip install -e '.[viz]' -c constraints.txt` (or `make viz` for the project's .venv).
The space language is documented in spaces/README.md."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search hyperparameters over a space (Ray Tune + Optuna)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("--space", required=True, metavar="FILE", help="a space file (spaces/*.yaml)")
    p.add_argument("--name", required=True, help="experiment name (a folder under --storage)")
    p.add_argument("--storage", metavar="DIR|URI", default="runs",
                   help="where experiments live: a folder, or s3:// / gs:// shared by a cluster")
    p.add_argument("--trials", type=int, metavar="N", help="number of trials; None: the space's search.trials")
    p.add_argument("--time-budget-s", type=float, metavar="T", help="stop the whole search after T seconds")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="join a Ray cluster: auto is the one `ray start` registered on this machine; "
                        "None: a private Ray on this machine (inside a Ray job: the job's cluster)")
    p.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT, metavar="S",
                   help="seconds to wait for the cluster to answer before giving up in one line")
    p.add_argument("--pending-timeout", type=float, default=DEFAULT_PENDING_TIMEOUT, metavar="S",
                   help="on a cluster: end the search in one line once trials have waited S seconds for "
                        "resources with none running (no node, and none the autoscaler adds, can hold one)")
    p.add_argument("--cpus-per-trial", type=float, metavar="C",
                   help="CPUs per trial, torch uses as many threads; None: the space's search.cpus_per_trial (1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs per trial, fractional allowed (0.25: four trials share a GPU); a trial whose "
                        "torch cannot use CUDA on its node fails in one line (node, torch build, what CUDA says)")
    p.add_argument("--allow-cpu-fallback", action="store_true",
                   help="with --gpus-per-trial: a trial whose torch cannot use CUDA trains on the CPU with a "
                        "warning instead of failing (kept by resume)")
    p.add_argument("--max-concurrent", type=int, metavar="K",
                   help="trials running at once; None: as many as the cluster holds now")
    p.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial")
    p.add_argument("--optuna-storage", metavar="URL",
                   help="Optuna study database a cluster shares, e.g. postgresql://user@host/db; a URL "
                        "with a password goes in $GANSEARCH_OPTUNA_STORAGE instead (stored redacted, never "
                        "shown); None: that variable, else optuna.db in the experiment folder")
    p.add_argument("--scheduler", choices=["asha", "pbt", "fifo"],
                   help="asha (early stopping), pbt, or fifo (every trial runs its budget); "
                        "None: the space's search.scheduler (asha)")
    p.add_argument("--max-failures", type=int, default=2, metavar="N",
                   help="retries of a crashed trial from its last checkpoint (-1: unlimited)")
    p.add_argument("--quiet", action="store_true",
                   help="no Ray Tune tables or Ray/Optuna INFO lines: one line per trial event (started, "
                        "completed, stopped early, failed; with its score) and a summary every 30 s "
                        "(done/running/stopped/failed of N, best score and trial, elapsed, time left)")
    p.add_argument("--cost", choices=["params", "images_per_s"],
                   help="search two objectives with Optuna's multi-objective TPE: the score and this cost "
                        "(generator parameters, fewer is better, or training images/s, more is better), "
                        "e.g. --cost params; `review` then lists and draws the Pareto front")
    p.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER,
                   help="Optuna's sampler: tpe (any space, one or two objectives), cmaes (numeric ranges, "
                        "one objective, large budgets), gp (small budgets), random, nsga2 (two objectives, "
                        "with --cost, large budgets); README, 'At scale', says which past what size")
    p.add_argument("--join-study", action="store_true",
                   help="add this search's trials to the Optuna study of this --name in --optuna-storage that "
                        "another search (a teammate's, another cluster's) started with the same space file: "
                        "the sampler learns from all of them, each search keeps its own trial folders")
    p.add_argument("--log-to", metavar="mlflow:URI|wandb[:PROJECT]",
                   help="also log every trial (sampled parameters, metrics at each report, sample grids) to "
                        "an experiment tracker with Ray Tune's logger callback, e.g. --log-to "
                        "mlflow:file:///abs/mlruns or mlflow:http://host:5000 (the mlflow extra), or wandb "
                        "(the wandb extra; project: the search's --name); kept by resume")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gan_core.errors import GansearchError
    from search.space import load_space

    for flag, value in (("--trials", args.trials), ("--max-concurrent", args.max_concurrent)):
        if value is not None and value < 1:
            raise GansearchError(f"{flag}: must be >= 1, got {value}")
    if args.time_budget_s is not None and args.time_budget_s <= 0:
        raise GansearchError(f"--time-budget-s: must be > 0, got {args.time_budget_s}")
    if args.cpus_per_trial is not None and args.cpus_per_trial <= 0:
        raise GansearchError(f"--cpus-per-trial: must be > 0, got {args.cpus_per_trial}")
    if not args.pending_timeout > 0:
        raise GansearchError(f"--pending-timeout: must be a number of seconds > 0, got {args.pending_timeout}")
    if args.gpus_per_trial < 0:
        raise GansearchError(f"--gpus-per-trial: must be >= 0, got {args.gpus_per_trial}")
    if not args.name.strip() or "/" in args.name or args.name in (".", ".."):
        raise GansearchError(f"--name: {args.name!r} must be a folder name (not empty, no '/')")
    check_seed("--seed", args.seed)
    if args.log_to is not None:
        from search.trackers import check_tracker

        check_tracker(args.log_to)  # its form, and its package installed
    if args.max_failures < -1:
        raise GansearchError(f"--max-failures: must be >= -1 (-1: unlimited), got {args.max_failures}")
    if not args.storage.strip():
        raise GansearchError("--storage: empty; give a folder or an s3:// / gs:// URI")
    from search.storage import check_uri, is_uri

    if not is_uri(args.storage):
        out_dir("--storage", str(Path(args.storage) / args.name))
    else:
        check_uri("--storage", args.storage)
    from search.study_db import from_command

    optuna_url, url_source = from_command(args.optuna_storage)  # a password only through the environment
    # Everything about the space is checked before Ray (or the search.raytune.tune import) starts.
    space = load_space(args.space, build_models=True)
    if args.cost and (args.scheduler or space.search.scheduler) == "pbt":
        raise GansearchError("--cost: a PBT search has no Optuna sampler to take a second objective; "
                             "use --scheduler asha or fifo")
    from search.samplers import check_sampler

    check_sampler(args.sampler, cost=args.cost, scheduler=args.scheduler or space.search.scheduler)
    if args.scheduler == "pbt" and not space.pbt_mutable():
        raise GansearchError(f"{args.space}: --scheduler pbt needs a top-level range or choice over a "
                             "key PBT may change in a running trial (optim.*, balance.*, dropout ...)")

    if args.join_study and (not optuna_url or (args.scheduler or space.search.scheduler) == "pbt"):
        raise GansearchError("--join-study: joins an Optuna study in a shared database: give --optuna-storage URL "
                             "(or $GANSEARCH_OPTUNA_STORAGE), and a scheduler with a sampler (asha or fifo)")
    if optuna_url and (args.scheduler or space.search.scheduler) != "pbt":
        from search.study_db import check_reachable

        check_reachable(optuna_url, url_source)  # before Ray starts and anything is written
    from search.experiment import SearchOptions
    from search.raytune import check_ray_version

    check_ray_version()  # before Ray starts (and before the adapter imports it)
    from search.raytune.tune import run_search

    print(space.describe(), flush=True)
    outcome = run_search(space, SearchOptions(
        name=args.name,
        storage=args.storage,
        trials=args.trials,
        time_budget_s=args.time_budget_s,
        address=args.address,
        connect_timeout=args.connect_timeout,
        pending_timeout=args.pending_timeout,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        seed=args.seed,
        optuna_storage=optuna_url,
        scheduler=args.scheduler,
        max_failures=args.max_failures,
        verbose=0 if args.quiet else 1,
        cost=args.cost,
        sampler=args.sampler,
        join_study=args.join_study,
        allow_cpu_fallback=args.allow_cpu_fallback,
        log_to=args.log_to,
    ))
    print(format_outcome(outcome), flush=True)
    if outcome.interrupted:
        return 130
    return 0 if outcome.best is not None else 1

