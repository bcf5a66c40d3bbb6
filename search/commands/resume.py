"""``gansearch resume``: continue an interrupted search where it stopped (Ray Tune's Tuner.restore),
or grow a search by N more trials (--trials N)."""

from __future__ import annotations

import argparse

from search.commands._common import format_outcome, formatter
from search.experiment.manifest import DEFAULT_CONNECT_TIMEOUT

EXAMPLE = """example:
  gansearch resume runs/quick
  gansearch resume s3://my-bucket/gansearch/dcgan --address auto
  gansearch resume runs/quick --trials 8        # 8 more trials, TPE warm-started from all stored ones

Trials that finished are kept, unfinished ones continue from their latest checkpoint, and new
trials are drawn until the search's trial count is reached: no trial runs twice, none is lost.
Failed trials (diverged or crashed) stay failed unless --retry-failed. A search whose Optuna
study is in a database with a password (GANSEARCH_OPTUNA_STORAGE) needs that variable set again:
the experiment keeps the URL only redacted.

--trials N adds N trials to a finished (or, after finishing it, an interrupted) search: a new
Tune run in the same folder whose Optuna sampler loads the same study, so TPE learns from every
stored trial; no trial runs again and review, export and retrain see all trials."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resume", help="continue an interrupted search", description=__doc__,
                       epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("experiment", metavar="EXPERIMENT_PATH",
                   help="the experiment folder `gansearch search` printed (a folder or s3:// / gs:// URI)")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="join a Ray cluster: auto is the one `ray start` registered on this machine; "
                        "None: a private Ray on this machine (inside a Ray job: the job's cluster)")
    p.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT, metavar="S",
                   help="seconds to wait for the cluster to answer before giving up in one line")
    p.add_argument("--retry-failed", action="store_true",
                   help="also resume failed trials from their latest checkpoint")
    p.add_argument("--trials", type=int, metavar="N",
                   help="add N more trials (not a total) after the stored ones, TPE warm-started from them")
    p.add_argument("--allow-cpu-fallback", action="store_true",
                   help="a GPU trial whose torch cannot use CUDA trains on the CPU with a warning instead of "
                        "failing (a search started with it keeps it without this flag)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gan_core.errors import GansearchError
    from search.experiment import read_manifest, read_space
    from search.raytune import check_ray_version
    from search.storage import Folder, normalise

    if args.trials is not None and args.trials < 1:
        raise GansearchError(f"--trials: must be >= 1 (trials to add), got {args.trials}")
    folder = Folder(normalise(args.experiment))
    manifest = read_manifest(folder)  # a broken experiment is one line before Ray is imported (seconds)
    read_space(folder)
    if manifest.options is not None and manifest.options.log_to is not None:
        from search.trackers import check_tracker

        check_tracker(manifest.options.log_to, f"{folder.root}: the search's --log-to")  # its package here too
    if args.trials:
        from search.experiment.create import check_growable

        check_growable(manifest, args.trials)  # a PBT search says so before anything else
    if manifest.optuna_storage and not manifest.optuna_storage.startswith("sqlite"):
        from search.study_db import ENV, check_reachable, resolve_stored

        url = resolve_stored(manifest.optuna_storage)
        if url:
            check_reachable(url, ENV if url != manifest.optuna_storage else f"{folder.root}'s Optuna study")
    check_ray_version()  # before Ray starts (and before the adapter imports it)
    from search.raytune.tune import resume_search

    outcome = resume_search(args.experiment, address=args.address, retry_failed=args.retry_failed,
                            connect_timeout=args.connect_timeout, more=args.trials or 0,
                            allow_cpu_fallback=args.allow_cpu_fallback)
    print(format_outcome(outcome), flush=True)
    if outcome.interrupted:
        return 130
    return 0 if outcome.best is not None else 1
