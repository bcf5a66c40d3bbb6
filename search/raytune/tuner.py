"""The Tuner of a search: the trainable with its resources, the searcher (Ray's OptunaSearch
over the space's define-by-run function, searcher.py) or PBT's population, the scheduler
(ASHA, PBT or FIFO, time attribute ``images_seen``), checkpoints kept by score, and the
callbacks (progress.py).
"""

from __future__ import annotations

import math
import os
from typing import Any

import ray
from ray import tune

from search.experiment import POINT, SearchOptions, trial_folder_name
from search.pareto import cost_metric
from search.raytune.checkpoints import CheckpointRetention
from search.raytune.driver import StopWhenAsked
from search.raytune.progress import sampled_keys, tune_callbacks
from search.raytune.searcher import BudgetOptunaSearch
from search.raytune.shipping import ShippedInputs
from search.raytune.trackers import tracker_callbacks
from search.raytune.trainable import TrialContext, gan_trial
from search.samplers import make_sampler
from search.space import ChoiceParam, FloatParam, IntParam, Space, random_draws
from search.storage import is_uri
from search.study_cache import StudyCache
from search.study_db import RedactedRDBStorage


def trial_name(trial: Any) -> str:
    """Ray's trial name and folder name of ``trial``: the experiment layout's."""
    return trial_folder_name(trial.trial_id)


def _tune_domain(p: FloatParam | IntParam | ChoiceParam) -> Any:
    if isinstance(p, ChoiceParam):
        return list(p.choices)
    if isinstance(p, IntParam):
        return tune.lograndint(p.low, p.high + 1) if p.log else tune.randint(p.low, p.high + 1)
    if p.log:
        return tune.loguniform(p.low, p.high)
    return tune.quniform(p.low, p.high, p.step) if p.step else tune.uniform(p.low, p.high)


def pbt_population(space: Space, n: int, seed: int) -> list[dict[str, Any]]:
    """PBT cannot be driven by a searcher (Ray refuses the pair): its initial population is the
    space's seeded random draws, base point first."""
    return [{**params, **fixed} for params, fixed in random_draws(space, n, seed)]


def build_tuner(space: Space, opts: SearchOptions, exp: str, optuna_url: str,
                callbacks: list[Any], classifier: bytes | None = None, grow_from: int = 0,
                training: Any = None, cwd: str | None = None, shipped: ShippedInputs | None = None) -> Any:
    """The Tuner of a new search, or (``grow_from``: the study's trial count) of ``opts.trials``
    more trials for a stored one: its searcher loads the same study, no point is evaluated again.
    ``training``: what trains a trial (trainable.py's TrialContext.training; None: the GAN).
    ``shipped``: the user's inputs every trial gets (shipping.py).
    ``cwd``: the folder the search was started in (relative sampled data paths mean that one).
    ASHA and PBT are schedulers.py's, whose state is saved with Tune's (Tune saves none)."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import SearchAlgorithm, Searcher

    from search.raytune.schedulers import ResumableASHA, ResumablePBT, SchedulerState

    s = space.search
    trials = opts.trials or s.trials
    scheduler_name = opts.scheduler or s.scheduler
    cpus = opts.cpus_per_trial if opts.cpus_per_trial is not None else s.cpus_per_trial
    objective = space.objective
    param_space: dict[str, Any] = {}
    search_alg: Searcher | SearchAlgorithm | None = None
    scheduler: TrialScheduler
    if scheduler_name == "pbt":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        mutable = space.pbt_mutable_or_refuse()
        # Each member's values sit under one key ("point"): members differ in which conditional
        # keys they have, and PBT perturbs nested keys in place.
        scheduler = ResumablePBT(
            seed=opts.seed,
            time_attr="images_seen",
            perturbation_interval=s.pbt_interval_images or 2 * space.budget.eval_every,
            hyperparam_mutations={POINT: {p.name: _tune_domain(p) for p in mutable}},
            quantile_fraction=0.25,
            # Synchronous: the population perturbs together once every member reached the
            # interval. Asynchronous PBT with more members than slots keeps re-cloning a member
            # that replays deterministically into the bottom quantile while the leader waits.
            synch=True,
        )
        param_space = {POINT: tune.grid_search(pbt_population(space, trials, opts.seed))}
        search_alg = BasicVariantGenerator()
        trials = 1  # the grid holds the population
    else:
        # The running trials are this driver's: kept in memory, written through (study_cache.py);
        # pickled by Ray without the study's password (study_db.py).
        storage = StudyCache(RedactedRDBStorage(optuna_url))
        cost = cost_metric(opts.cost) if opts.cost else None
        search_alg = BudgetOptunaSearch(
            budget_images=space.budget.images,
            experiment="" if is_uri(exp) else exp,
            origin=exp,
            space=space.define_by_run(opts.seed),
            metric=[objective.metric, cost.metric] if cost else objective.metric,
            mode=[objective.mode, cost.mode] if cost else objective.mode,
            points_to_evaluate=None if grow_from else space.all_points(),
            # New draws when grown, and another sequence than the study's first search when joining it.
            sampler=make_sampler(opts.sampler, seed=opts.seed + grow_from + int(opts.join_study),
                                 n_startup=space.n_startup_trials(trials + grow_from)),
            study_name=opts.name,
            storage=storage,
        )
        if scheduler_name == "asha":
            scheduler = ResumableASHA(
                time_attr="images_seen",
                max_t=space.budget.images,
                grace_period=space.budget.grace_images,
                reduction_factor=s.reduction_factor,
            )
        else:
            scheduler = FIFOScheduler()

    callbacks = [StopWhenAsked(), *callbacks, *tracker_callbacks(opts.log_to, name=opts.name, exp=exp, pbt=scheduler_name == "pbt")]
    if isinstance(scheduler, (ResumableASHA, ResumablePBT)):
        callbacks = [*callbacks, SchedulerState(scheduler)]  # Tune saves a callback's state, not a scheduler's
    trainable = tune.with_resources(
        tune.with_parameters(gan_trial, ctx=TrialContext(space, scheduler_name, classifier, cwd or os.getcwd(),
                                                         opts.allow_cpu_fallback, training, shipped)),
        {"cpu": cpus, "gpu": opts.gpus_per_trial},
    )
    root, name = exp.rstrip("/").rsplit("/", 1)
    # Checkpoints are kept by score: the best `keep` of each trial, and the latest one, which a
    # resumed or retried trial (and PBT) continues from. PBT's small population leaves it to Tune;
    # otherwise checkpoints.py does it, sparing Tune's snapshot of the whole experiment per report.
    if scheduler_name == "pbt":
        checkpoints = tune.CheckpointConfig(num_to_keep=4, checkpoint_score_attribute=objective.metric,
                                            checkpoint_score_order=objective.mode)
    else:
        checkpoints = tune.CheckpointConfig(num_to_keep=None)
        callbacks = [*callbacks, CheckpointRetention(2, objective)]
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=objective.metric,
            mode=objective.mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=trials,
            max_concurrent_trials=opts.max_concurrent or s.max_concurrent or fitting_trials(cpus, opts.gpus_per_trial),
            time_budget_s=opts.time_budget_s or s.time_budget_s,
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=root,
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            checkpoint_config=checkpoints,
            sync_config=tune.SyncConfig(sync_artifacts=True, sync_artifacts_on_checkpoint=False),
            log_to_file=True,
            verbose=opts.verbose,
            callbacks=tune_callbacks(callbacks, quiet=opts.verbose == 0, trials=opts.trials or s.trials,
                                     budget_images=space.budget.images, objective=objective,
                                     shown=sampled_keys(space.params),
                                     trial_dirs=getattr(search_alg, "trial_dirs", None),
                                     pbt=scheduler_name == "pbt"),
        ),
    )


def fitting_trials(cpus: float, gpus: float) -> int:
    """How many trials the cluster holds now. Tune lets a searcher keep only one trial pending
    unless a concurrency limit is set, which would start trials one actor at a time; an
    autoscaling cluster should pass --max-concurrent for the size it may grow to."""
    res = ray.cluster_resources()
    n = res.get("CPU", 1.0) / cpus if cpus > 0 else math.inf
    if gpus > 0:
        n = min(n, res.get("GPU", 0.0) / gpus)
    return max(1, int(n + 1e-9)) if math.isfinite(n) else 1
