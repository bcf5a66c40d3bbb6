"""The Ray Tune adapter: with tune_searcher.py (the Optuna searcher), tune_progress.py (output)
and tune_cluster.py (joining a cluster), the only modules in gansearch that import ray.

A search is a ``ray.tune.Tuner`` over one function trainable (:func:`gan_trial`) that validates a
trial's sampled values into the typed Config (``Space.config_for``), runs ``gan_core.loop.train``
and reports every evaluation with a checkpoint. Optuna's TPE sampler proposes the values through
``OptunaSearch`` (define-by-run, seeded, the base preset evaluated first) and its study lives in
the experiment folder (SQLite) unless ``optuna_storage`` names a shared database. ASHA stops poor
trials early (time attribute ``images_seen``); PBT and FIFO are selectable.

The experiment folder's layout, trial statuses and records belong to search/experiment.py; this
module writes the folder through it and reads Ray's own view only at the end of a search.

Example::

    space = load_space("spaces/quick.yaml")
    outcome = run_search(space, SearchOptions(name="quick", storage="runs"))
    print(outcome.best.score, outcome.best_config_path)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from gan_core.config import dump_config, from_dict, to_dict
from gan_core.errors import GansearchError
from gan_core.io import LOCK
from search import grow, ray_address, tune_cluster
from search.driver import (
    absolute_data_paths,
    absolute_env,
    driver_classifier,
    experiment_lock,
    sigterm_as_ctrl_c,
    write_bytes,
)
from search.experiment import (
    BASE_FILE,
    BEST_CONFIG_FILE,
    CHECKPOINT_FILES,
    CLASSIFIER_FILE,
    OPTUNA_FILE,
    POINT,
    RUN_SUBDIR,
    SPACE_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    TrialDiverged,
    TrialRecord,
    TrialStatus,
    experiment_path,
    open_experiment,
    read_space,
    read_state,
    trial_params,
    write_summary,
)
from search.pareto import ThroughputMeter, cost_metric, generator_params
from search.space import PBT_MUTABLE_PREFIXES, ChoiceParam, FloatParam, IntParam, Space, random_draws
from search.storage import Folder, is_uri, normalise
from search.study_db import RedactedRDBStorage, redact, resolve_stored, study_url
from search.tune_progress import quiet_worker_logs, sampled_keys, setup_output, tune_callbacks
from search.tune_recovery import (
    clear_unsaved_start,
    recover_run_artifacts,
    recover_torn_state,
    refill_missing_checkpoints,
    unsaved_start,
)
from search.tune_searcher import BudgetOptunaSearch, _trial_name_of

__all__ = ["BEST_CONFIG_FILE", "SUMMARY_FILE", "SearchOptions", "SearchOutcome", "TrialDiverged",
           "resume_search", "run_search", "select_device"]

# Environment a driver forwards to the trial workers of a cluster it connects to.
FORWARDED_ENV = ("GANSEARCH_DATA", "GANSEARCH_CACHE")


@dataclass
class SearchOptions:
    """``gansearch search`` flags; None means the space file's ``search:`` default."""

    name: str
    storage: str | None = None  # local folder or URI; default ./runs
    trials: int | None = None
    time_budget_s: float | None = None
    address: str | None = None  # None: a private local Ray (or RAY_ADDRESS's); "auto" or HOST:PORT: a cluster
    connect_timeout: float = ray_address.DEFAULT_CONNECT_TIMEOUT  # seconds to wait for a cluster
    cpus_per_trial: float | None = None
    pending_timeout: float = 600.0  # seconds trials may wait for a cluster's resources, none running
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    seed: int = 0
    optuna_storage: str | None = None  # written only redacted (search/study_db.py)
    scheduler: str | None = None
    max_failures: int = 2
    verbose: int = 1
    cost: str | None = None  # a second objective for Optuna: a search/pareto.py COSTS name


@dataclass
class SearchOutcome:
    experiment_path: str
    rows: list[TrialRecord]  # by trial id
    best: TrialRecord | None
    best_config_path: str | None
    metric: str
    mode: str
    interrupted: bool

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)


@dataclass
class TrialContext:
    """What every trial needs besides its sampled values (shipped once via the object store)."""

    space: Space
    scheduler: str
    classifier: bytes | None = None  # the driver's reference classifier (ReferenceClassifier.to_bytes)
    cwd: str = ""  # the driver's working folder: relative data paths a trial samples mean this one


# ----------------------------------------------------------------------------- the trainable


def select_device(gpu_ids: list[Any], cuda_available: bool) -> tuple[str, str | None]:
    """The device for a trial Ray gave ``gpu_ids``, and a warning if it has to fall back.

    Ray restricts CUDA_VISIBLE_DEVICES to the assigned GPUs, so "cuda" is the trial's own GPU
    (or its share of it, for fractional --gpus-per-trial)."""
    if not gpu_ids:
        return "cpu", None
    if cuda_available:
        return "cuda", None
    ids = ", ".join(str(g) for g in gpu_ids)
    return "cpu", f"Ray assigned GPU {ids} but torch sees no CUDA device; training on the CPU"


def _stage_checkpoint(run_dir: Path, stage: Path) -> Path:
    """Fill ``stage`` with the run's checkpoint files; checkpoint.pt is hard-linked (the loop
    replaces it atomically, so the link keeps this version) instead of copied."""
    for name in CHECKPOINT_FILES:
        src = run_dir / name
        if not src.exists():
            continue
        if name == "checkpoint.pt":
            try:
                os.link(src, stage / name)
                continue
            except OSError:
                pass
        shutil.copy2(src, stage / name)  # metrics.jsonl grows in place: a link would follow it
    return stage


def _restore(checkpoint: Any, run_dir: Path, ctx: TrialContext, cfg: Any) -> None:
    """Put a reported checkpoint back into the run directory the loop resumes from."""
    from gan_core.checkpoint import keys_blocking_resume, load_checkpoint, save_checkpoint
    from gan_core.config import diff

    with checkpoint.as_directory() as src:
        for name in CHECKPOINT_FILES:
            if (Path(src) / name).exists():
                shutil.copy2(Path(src) / name, run_dir / name)
    if ctx.scheduler != "pbt":
        return
    # PBT restarts a trial with a perturbed config from another trial's checkpoint: write the new
    # config into the checkpoint (the loop applies its optimiser hyperparameters when it loads the
    # state: gan_core.optim.apply_hyperparameters), but only keys that never change a weight's
    # shape; anything else still makes the loop refuse.
    state = load_checkpoint(run_dir / "checkpoint.pt")
    saved = from_dict(state["config"])
    if diff(saved, cfg) and not keys_blocking_resume(saved, cfg, also_mutable=PBT_MUTABLE_PREFIXES + ("train.seed",)):
        state["config"] = to_dict(cfg)
        state.pop("version", None)
        save_checkpoint(state, run_dir / "checkpoint.pt")



def gan_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """One trial: sampled values -> Config -> gan_core.loop.train, reporting each evaluation."""
    started = time.time()
    quiet_worker_logs()
    import torch

    from gan_core.loop import Callbacks, train

    tctx = tune.get_context()
    trial_id = tctx.get_trial_id()
    cpus = tctx.get_trial_resources().required_resources.get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))  # the trial's CPUs, never the whole machine
    gpu_ids = ray.get_gpu_ids()
    device, note = select_device(gpu_ids, torch.cuda.is_available())
    if note:
        warnings.warn(f"gansearch: trial {trial_id}: {note}", RuntimeWarning, stacklevel=1)
    node_id = ray.get_runtime_context().get_node_id()

    cfg = ctx.space.config_for(trial_params(config))
    cfg.name = f"{tctx.get_experiment_name()}/{trial_id}"
    if ctx.cwd:
        absolute_data_paths(cfg.data, ctx.cwd)  # sampled paths; the base's are absolute already
    evaluator = _trial_evaluator(cfg, device, ctx)
    trial_dir = Path(tctx.get_trial_dir())
    run_dir = trial_dir / RUN_SUBDIR
    if run_dir.exists():  # a retry on the same node: Tune's checkpoint is the truth
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        _restore(checkpoint, run_dir, ctx, cfg)
        for line in recover_run_artifacts(trial_dir, run_dir):  # a killed driver's session left them
            print(f"gansearch: trial {trial_id}: {line}", file=sys.stderr, flush=True)

    timing = {"loop_start": 0.0, "in_report": 0.0}
    meter, g_params = ThroughputMeter(), generator_params(cfg)  # the costs (search/pareto.py)

    def should_stop() -> bool:  # called before every step; the first call ends start-up
        if not timing["loop_start"]:
            timing["loop_start"] = time.time()
        return False

    def on_eval(metrics: dict[str, Any], rd: Path | None) -> None:
        t0 = time.time()
        startup = (timing["loop_start"] or t0) - started
        payload = {
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "images_seen": int(metrics["images_seen"]),
            "step": int(metrics["step"]),
            "node_id": node_id,
            "run_dir": str(run_dir),  # on its node: the driver copies the newest grid from it (tune_progress)
            "device": device,
            "gpu_ids": ",".join(str(g) for g in gpu_ids),
            "torch_threads": torch.get_num_threads(),
            "classifier_digest": evaluator.classifier.digest,
            "trial_seed": cfg.train.seed,
            "started_at": started,
            "reported_at": t0,
            "startup_s": startup,
            "report_s": timing["in_report"],
            "train_eval_s": t0 - started - startup - timing["in_report"],
            "images_per_s": meter.value(metrics["images_seen"] / max(t0 - started - timing["in_report"], 1e-9)),
            "g_params": g_params,
        }
        assert rd is not None
        # Staged outside the trial folder (whose files Ray syncs as artifacts); when Tune stops
        # the trial inside report() (ASHA), SystemExit still passes through the finally.
        stage = Path(tempfile.mkdtemp(prefix="gansearch-checkpoint-"))
        try:
            tune.report(payload, checkpoint=tune.Checkpoint.from_directory(_stage_checkpoint(rd, stage)))
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            timing["in_report"] += time.time() - t0

    result = train(cfg, run_dir, device=device, progress=False, evaluator=evaluator,
                   callbacks=Callbacks(on_eval=on_eval, should_stop=should_stop, on_log=meter.on_log))
    if result.status == "diverged":
        raise TrialDiverged(result.reason or "non-finite values")


def _trial_evaluator(cfg: Any, device: str, ctx: TrialContext) -> Any:
    """The trial's evaluator, scoring with the driver's classifier when the trial's data is the
    one it was trained for (otherwise the node's own, whose other digest the results record)."""
    from gan_core.metrics import install_classifier, make_evaluator

    if ctx.classifier is not None:
        install_classifier(ctx.classifier, device)
    return make_evaluator(cfg, device)


# ----------------------------------------------------------------------------- building the Tuner


def _trial_name(trial: Any) -> str:
    return _trial_name_of(trial.trial_id)


def _tune_domain(p: FloatParam | IntParam | ChoiceParam) -> Any:
    if isinstance(p, ChoiceParam):
        return list(p.choices)
    if isinstance(p, IntParam):
        return tune.lograndint(p.low, p.high + 1) if p.log else tune.randint(p.low, p.high + 1)
    if p.log:
        return tune.loguniform(p.low, p.high)
    return tune.quniform(p.low, p.high, p.step) if p.step else tune.uniform(p.low, p.high)


def _pbt_population(space: Space, n: int, seed: int) -> list[dict[str, Any]]:
    """PBT cannot be driven by a searcher (Ray refuses the pair): its initial population is the
    space's seeded random draws, base point first."""
    return [{**params, **fixed} for params, fixed in random_draws(space, n, seed)]


def _build_tuner(space: Space, opts: SearchOptions, exp: str, optuna_url: str,
                 callbacks: list[Any], classifier: bytes | None = None, grow_from: int = 0,
                 cwd: str | None = None) -> Any:
    """The Tuner of a new search, or (``grow_from``: the study's trial count) of ``opts.trials``
    more trials for a stored one: its searcher loads the same study, no point is evaluated again.
    ``cwd``: the folder the search was started in (relative sampled data paths mean that one)."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import SearchAlgorithm, Searcher

    from search.tune_schedulers import ResumableASHA, ResumablePBT, SchedulerState

    s = space.search
    trials = opts.trials or s.trials
    scheduler_name = opts.scheduler or s.scheduler
    cpus = opts.cpus_per_trial if opts.cpus_per_trial is not None else s.cpus_per_trial
    metric, mode = space.objective.metric, space.objective.mode
    param_space: dict[str, Any] = {}
    search_alg: Searcher | SearchAlgorithm | None = None
    scheduler: TrialScheduler
    if scheduler_name == "pbt":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        mutable = space.pbt_mutable()
        if not mutable:
            raise GansearchError(f"{space.path}: --scheduler pbt: no top-level range or choice over "
                                 f"keys PBT may change in a running trial ({', '.join(PBT_MUTABLE_PREFIXES)})")
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
        param_space = {POINT: tune.grid_search(_pbt_population(space, trials, opts.seed))}
        search_alg = BasicVariantGenerator()
        trials = 1  # the grid holds the population
    else:
        import optuna

        storage = RedactedRDBStorage(optuna_url)  # pickled by Ray without its password
        search_alg = BudgetOptunaSearch(
            budget_images=space.budget.images,
            experiment="" if is_uri(exp) else exp,
            space=space.define_by_run(opts.seed),
            metric=[metric, cost_metric(opts.cost)[0]] if opts.cost else metric,
            mode=[mode, cost_metric(opts.cost)[1]] if opts.cost else mode,
            points_to_evaluate=None if grow_from else space.all_points(),
            sampler=optuna.samplers.TPESampler(seed=opts.seed + grow_from,  # new draws when grown
                                               n_startup_trials=space.n_startup_trials(trials + grow_from)),
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

    if isinstance(scheduler, (ResumableASHA, ResumablePBT)):
        callbacks = [*callbacks, SchedulerState(scheduler)]  # Tune saves a callback's state, not a scheduler's
    trainable = tune.with_resources(
        tune.with_parameters(gan_trial, ctx=TrialContext(space, scheduler_name, classifier, cwd or os.getcwd())),
        {"cpu": cpus, "gpu": opts.gpus_per_trial},
    )
    root, name = exp.rstrip("/").rsplit("/", 1)
    # Checkpoints are kept by score: the best `keep` of each trial, and Ray's _CheckpointManager
    # never deletes the latest one, which a resumed or retried trial (and PBT) continues from.
    keep = 4 if scheduler_name == "pbt" else 2
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=trials,
            max_concurrent_trials=opts.max_concurrent or s.max_concurrent or _fit(cpus, opts.gpus_per_trial),
            time_budget_s=opts.time_budget_s or s.time_budget_s,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=root,
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=keep, checkpoint_score_attribute=metric,
                                                    checkpoint_score_order=mode),
            sync_config=tune.SyncConfig(sync_artifacts=True, sync_artifacts_on_checkpoint=False),
            log_to_file=True,
            verbose=opts.verbose,
            callbacks=tune_callbacks(callbacks, quiet=opts.verbose == 0, trials=opts.trials or s.trials,
                                     budget_images=space.budget.images, metric=metric, mode=mode,
                                     shown=sampled_keys(space.params),
                                     trial_dirs=getattr(search_alg, "trial_dirs", None),
                                     pbt=scheduler_name == "pbt"),
        ),
    )


def _fit(cpus: float, gpus: float) -> int:
    """How many trials the cluster holds now. Tune lets a searcher keep only one trial pending
    unless a concurrency limit is set, which would start trials one actor at a time; an
    autoscaling cluster should pass --max-concurrent for the size it may grow to."""
    res = ray.cluster_resources()
    n = res.get("CPU", 1.0) / cpus if cpus > 0 else math.inf
    if gpus > 0:
        n = min(n, res.get("GPU", 0.0) / gpus)
    return max(1, int(n + 1e-9)) if math.isfinite(n) else 1


def _init_ray(address: str | None, connect_timeout: float) -> bool:
    """Start a private Ray or join a cluster within ``connect_timeout`` (search/ray_address.py
    decides which) unless the caller already did; True if we did (and stop it)."""
    if ray.is_initialized():
        return False
    target = ray_address.resolve(address)
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}} if (not target.local and env) else {}
    ray_address.join(target, connect_timeout, lambda: tune_cluster.connect(target, **kwargs))
    return True


# ----------------------------------------------------------------------------- entry points


def run_search(space: Space, opts: SearchOptions, *, callbacks: list[Any] | None = None) -> SearchOutcome:
    """Run a search and write summary.json and best_config.yaml into the experiment folder."""
    exp = experiment_path(opts.storage, opts.name)
    _refuse_existing(exp)
    scheduler = opts.scheduler or space.search.scheduler
    if scheduler == "pbt" and not space.pbt_mutable():
        raise GansearchError(f"{space.path}: --scheduler pbt: no top-level range or choice over "
                             f"keys PBT may change in a running trial ({', '.join(PBT_MUTABLE_PREFIXES)})")
    if opts.gpus_per_trial < 0 or (opts.cpus_per_trial is not None and opts.cpus_per_trial <= 0):
        raise GansearchError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    absolute_env()
    absolute_data_paths(space.base_config.data, os.getcwd())  # saved so in base.yaml: resume anywhere
    setup_output(quiet=opts.verbose == 0)
    started = _init_ray(opts.address, opts.connect_timeout)  # before anything is written
    try:
        with sigterm_as_ctrl_c():
            return _run_new(space, opts, exp, scheduler, started, list(callbacks or []))
    except KeyboardInterrupt:  # before Ray Tune took the signal over, or a second one
        _say_how_to_resume(exp)
        raise
    finally:
        if started:
            ray.shutdown()


def _say_how_to_resume(exp: str) -> None:
    if Folder(exp).read_bytes(STATE_FILE) is not None:
        print(f"interrupted: continue with `gansearch resume {exp}`", flush=True)


def _refuse_existing(exp: str) -> None:
    if Folder(exp).read_bytes(STATE_FILE) is not None or tune.Tuner.can_restore(exp):
        raise GansearchError(f"--name: experiment {exp} exists; continue it with `gansearch resume {exp}` "
                             "or pick another --name")


def _run_new(space: Space, opts: SearchOptions, exp: str, scheduler: str, started: bool,
             callbacks: list[Any]) -> SearchOutcome:
    """``run_search`` once Ray is up: the checks that need it, the experiment's own files, the
    search. gansearch.json is written last before the Tuner (which writes Ray's files): with it
    in the folder, ``resume`` can always go on, or start over when Ray saved no trial."""
    private = started and ray_address.resolve(opts.address).local  # nothing can be added to it
    cpus = opts.cpus_per_trial if opts.cpus_per_trial is not None else space.search.cpus_per_trial
    tune_cluster.check_resources(cpus, opts.gpus_per_trial, private=private)
    watch = [] if private else [tune_cluster.PendingWatch(cpus, opts.gpus_per_trial, opts.pending_timeout)]
    clf = driver_classifier(space)
    url = study_url(exp, opts.optuna_storage)
    if scheduler != "pbt":
        import optuna

        if opts.name in optuna.study.get_all_study_names(storage=url):
            raise GansearchError(f"--name: the Optuna study {opts.name!r} already exists in {redact(url)} "
                                 "(an earlier search of this name?); pick another --name")
    state = {
        "version": 1,
        "name": opts.name,
        "space_file": space.path,
        "options": {**dataclasses.asdict(opts), "optuna_storage": opts.optuna_storage and redact(opts.optuna_storage)},
        "scheduler": scheduler,
        "optuna_storage": None if scheduler == "pbt" else redact(url),
        "metric": space.objective.metric,
        "mode": space.objective.mode,
        "created": time.time(),
        "classifier": {"digest": clf.digest, "dataset": clf.dataset, "test_accuracy": clf.test_accuracy},
        "cwd": os.getcwd(),  # what relative data paths among the sampled values mean, also on resume
    }
    blob = clf.to_bytes()
    with experiment_lock(exp):
        _refuse_existing(exp)  # a second search of this name may have got here first
        folder = Folder(exp)
        folder.write_text(SPACE_FILE, space.text)
        folder.write_text(BASE_FILE, dump_config(space.base_config))
        write_bytes(folder, CLASSIFIER_FILE, blob)
        folder.write_text(STATE_FILE, json.dumps(state, indent=2))
        _build_tuner(space, opts, exp, url, callbacks + watch, blob).fit()
        return finish(exp, space, url if scheduler != "pbt" else None, state)


def resume_search(exp: str, *, address: str | None = None, retry_failed: bool = False,
                  connect_timeout: float = ray_address.DEFAULT_CONNECT_TIMEOUT, more: int = 0) -> SearchOutcome:
    """Continue an interrupted search: unfinished trials resume from their latest checkpoints,
    finished ones are kept, new ones are drawn until the trial count is reached; failed trials
    stay failed unless ``retry_failed`` (then they resume from their latest checkpoint). Then
    ``more`` trials are added, warm-started from the whole study (search/grow.py)."""
    exp = normalise(exp)
    folder = Folder(exp)
    state = read_state(folder)
    space = read_space(folder)
    if more:
        grow.check_growable(state, more)  # before anything is touched
    missing = [k for k in ("name", "scheduler", "options") if k not in state]
    missing += [f"options.{k}" for k in ("cpus_per_trial", "gpus_per_trial") if k not in state.get("options", {})]
    if missing:
        raise GansearchError(f"{exp}/gansearch.json: no {', '.join(missing)}: not written by `gansearch search` "
                             "(is the copy complete?); cannot resume")
    with experiment_lock(exp):
        for line in recover_torn_state(exp):
            print(f"gansearch: {line}", file=sys.stderr)
        over = unsaved_start(exp)
        absolute_env()
        setup_output(quiet=state["options"].get("verbose") == 0, resuming=not over)  # as `search --quiet` was
        started = _init_ray(address, connect_timeout)
        try:
            with sigterm_as_ctrl_c():
                return _resume(exp, state, space, address, retry_failed, more, start_over=over)
        except KeyboardInterrupt:
            _say_how_to_resume(exp)
            raise
        finally:
            if started:
                ray.shutdown()


def _stored_options(state: dict[str, Any], **changes: Any) -> SearchOptions:
    """The options a search was started with (gansearch.json), with ``changes``."""
    known = {f.name for f in dataclasses.fields(SearchOptions)}
    return SearchOptions(**{k: v for k, v in state["options"].items() if k in known} | changes)


def _resume(exp: str, state: dict[str, Any], space: Space, address: str | None, retry_failed: bool, more: int,
            *, start_over: bool) -> SearchOutcome:
    """``resume_search`` once Ray is up and the experiment is locked."""
    folder = Folder(exp)
    url = resolve_stored(state.get("optuna_storage"))  # a redacted URL: the real one from the environment
    # The classifier the search started with (an older experiment without one: the driver's).
    blob = folder.read_bytes(CLASSIFIER_FILE) or driver_classifier(space).to_bytes()
    cwd = str(state.get("cwd") or os.getcwd())
    if start_over:
        # Stopped before Ray saved a trial: nothing to go on with, so the search starts again as it
        # was started (same options and seed), in the same folder, with an empty study.
        print(f"gansearch: {exp}: the search was stopped before Ray saved any trial; starting it over",
              file=sys.stderr)
        clear_unsaved_start(exp, keep=(STATE_FILE, SPACE_FILE, BASE_FILE, CLASSIFIER_FILE, OPTUNA_FILE, LOCK))
        if url is not None:
            import optuna

            if state["name"] in optuna.study.get_all_study_names(storage=url):
                optuna.delete_study(study_name=state["name"], storage=url)
        _build_tuner(space, _stored_options(state, address=address, optuna_storage=url), exp, url or "", [],
                     blob, cwd=cwd).fit()
    elif not more or grow.needs_restore(folder):
        ctx = TrialContext(space, state["scheduler"], blob, cwd)
        trainable = tune.with_resources(
            tune.with_parameters(gan_trial, ctx=ctx),
            {"cpu": state["options"]["cpus_per_trial"] or space.search.cpus_per_trial,
             "gpu": state["options"]["gpus_per_trial"]},
        )
        tuner = tune.Tuner.restore(exp, trainable, resume_unfinished=True, resume_errored=retry_failed,
                                   restart_errored=False)
        try:
            saved: Any = tuner.get_results()
        except RuntimeError:  # Ray could not read the saved results: nothing to put right
            saved = []
        for line in refill_missing_checkpoints(saved):
            print(f"gansearch: {line}", file=sys.stderr)
        tuner.fit()
    if more:
        import optuna

        assert url is not None  # only a PBT search has no study, and it cannot grow
        n = len(optuna.load_study(study_name=state["name"], storage=url).trials)
        state, _, _ = grow.grown_state(folder, space, more)
        opts = _stored_options(state, trials=more, address=address, optuna_storage=url)
        _build_tuner(space, opts, exp, url, [], blob, grow_from=n, cwd=cwd).fit()
    return finish(exp, space, url, state)


# ----------------------------------------------------------------------------- results


def finish(exp: str, space: Space, optuna_url: str | None, state: dict[str, Any]) -> SearchOutcome:
    """Summarise the experiment: summary.json, best_config.yaml, the study copied next to it.

    The records are read from the folder as every reader reads them; Ray's view of each trial
    (finished, errored or cut off) is what the files alone cannot always tell, so it goes in."""
    analysis = tune.ExperimentAnalysis(exp, default_metric=space.objective.metric,
                                       default_mode=space.objective.mode)
    record = open_experiment(exp, ray_status={t.trial_id: str(t.status) for t in analysis.trials},
                             with_configs=False)
    opts = state.get("options", {})
    expected = opts.get("trials") or space.search.trials
    time_limited = bool(opts.get("time_budget_s") or space.search.time_budget_s)
    best = record.best()
    best_path = None
    if best is not None:
        cfg = space.config_for(best.params)
        cfg.name = f"{exp.rstrip('/').rsplit('/', 1)[-1]}-best"
        best_path = Folder(exp).write_text(BEST_CONFIG_FILE, dump_config(cfg))
    # Interrupted: a trial was cut off, or trials were still to come (unless the time budget
    # ended the search, which is how a time-limited search is meant to end).
    interrupted = record.count(TrialStatus.UNFINISHED) > 0 or (len(record.trials) < expected and not time_limited)
    write_summary(record, best_config=best_path, interrupted=interrupted)
    if optuna_url and optuna_url.startswith("sqlite:///") and is_uri(exp):
        Folder(exp).upload(Path(optuna_url[len("sqlite:///"):]), OPTUNA_FILE)
    rows = sorted(record.trials, key=lambda r: r.trial_id)
    return SearchOutcome(exp, rows, best, best_path, space.objective.metric, space.objective.mode, interrupted)
