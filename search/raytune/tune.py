"""The Ray Tune adapter's entry points: start a search, resume or grow one, and summarise it.

A search is a ``ray.tune.Tuner`` (tuner.py) over one function trainable (trainable.py's
:func:`gan_trial`) that validates a trial's sampled values into the typed Config, runs
``gan_core.loop.train`` and reports every evaluation with a checkpoint. Optuna's TPE sampler
proposes the values through ``OptunaSearch`` (define-by-run, seeded, the base preset evaluated
first; searcher.py) and its study lives in the experiment folder (SQLite) unless
``optuna_storage`` names a shared database. ASHA stops poor trials early (time attribute
``images_seen``); PBT and FIFO are selectable.

The experiment folder (layout, manifest, statuses, records) is search/experiment/'s: a search
creates it there and reads Ray's own view of its trials only at the end.

Example::

    space = load_space("spaces/quick.yaml")
    outcome = run_search(space, SearchOptions(name="quick", storage="runs"))
    print(outcome.best.score, outcome.best_config_path)
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from gan_core.config import dump_config
from gan_core.errors import GansearchError
from gan_core.io import LOCK
from search.experiment import (
    BASE_FILE,
    BEST_CONFIG_FILE,
    CLASSIFIER_FILE,
    OPTUNA_FILE,
    SPACE_FILE,
    STATE_FILE,
    ClassifierRecord,
    DriverView,
    Manifest,
    SearchOptions,
    TrialRecord,
    TrialStatus,
    experiment_path,
    open_experiment,
    read_manifest,
    read_space,
    write_summary,
)
from search.experiment.create import check_growable, create_experiment, grow_experiment, needs_restore
from search.experiment.manifest import DEFAULT_CONNECT_TIMEOUT
from search.objective import Objective
from search.raytune import address as ray_address
from search.raytune import check_ray_version, cluster, shipping
from search.raytune.driver import (
    DRIVER_ENV,
    absolute_env,
    absolute_paths,
    driver_classifier,
    experiment_lock,
    sigterm_as_ctrl_c,
)
from search.raytune.legacy import install_legacy_paths
from search.raytune.progress import setup_output
from search.raytune.recovery import (
    clear_unsaved_start,
    recover_torn_state,
    refill_missing_checkpoints,
    unsaved_start,
)
from search.raytune.shipping import ShippedInputs
from search.raytune.trainable import TrialContext, gan_trial
from search.raytune.tuner import build_tuner
from search.space import Space
from search.storage import Folder, is_uri, normalise
from search.study_db import (
    check_study_name,
    discard_orphan_copy,
    fail_orphans,
    mark_study,
    redact,
    resolve_stored,
    settle_sqlite,
    study_moved,
    study_url,
)


@dataclass
class SearchOutcome:
    experiment_path: str
    rows: list[TrialRecord]  # by trial id
    best: TrialRecord | None
    best_config_path: str | None
    objective: Objective
    interrupted: bool

    def count(self, status: TrialStatus) -> int:
        return sum(r.status == status for r in self.rows)


def init_ray(address: str | None, connect_timeout: float, shipped: ShippedInputs | None = None) -> bool:
    """Start a private Ray or join a cluster within ``connect_timeout`` (address.py decides
    which) unless the caller already did; True if we did (and stop it). First of all: a Ray
    outside the supported range is one line (search/raytune/__init__.py)."""
    check_ray_version(ray.__version__)
    if ray.is_initialized():
        return False
    target = ray_address.resolve(address)
    env = {k: os.environ[k] for k in DRIVER_ENV if k in os.environ}
    runtime_env = shipping.runtime_env(shipped or ShippedInputs(), {} if target.local else env)
    kwargs: dict[str, Any] = {"runtime_env": runtime_env} if runtime_env else {}
    ray_address.join(target, connect_timeout, lambda: cluster.connect(target, **kwargs))
    return True


# ----------------------------------------------------------------------------- entry points


def run_search(space: Space, opts: SearchOptions, *, callbacks: list[Any] | None = None,
               training: Any = None) -> SearchOutcome:
    """Run a search and write summary.json and best_config.yaml into the experiment folder.

    ``callbacks``: more Tune callbacks. ``training``: what trains a trial, in place of the GAN
    (trainable.py's Training; bench/bench_scale.py passes a simulated one); None for the GAN.
    Ctrl-C or SIGTERM stops it with its state saved (``resume`` goes on); the experiment's own
    files, gansearch.json last, are written before Ray's, so a search stopped at any moment can
    be resumed (or started over, when Ray saved no trial)."""
    exp = experiment_path(opts.storage, opts.name)
    _refuse_existing(exp)
    scheduler = opts.scheduler or space.search.scheduler
    if scheduler == "pbt":
        space.pbt_mutable_or_refuse()  # before anything starts
    if opts.gpus_per_trial < 0 or (opts.cpus_per_trial is not None and opts.cpus_per_trial <= 0):
        raise GansearchError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    absolute_env()
    absolute_paths(space.base_config, os.getcwd())  # saved so in base.yaml: resume anywhere
    setup_output(quiet=opts.verbose == 0)
    joined, objectives = 0, 2 if opts.cost else 1  # joined: trials in the study a --join-study search joins
    if scheduler != "pbt" and opts.optuna_storage:  # a shared study: its errors are one line before Ray starts
        joined = check_study_name(opts.optuna_storage, opts.name, join=opts.join_study, space_text=space.text,
                                  objectives=objectives)
    shipped = shipping.prepare(space)  # the user's images converted, packages found: one line if not
    started = init_ray(opts.address, opts.connect_timeout, shipped)  # before anything is written
    try:
        with sigterm_as_ctrl_c():
            return _run_new(space, opts, exp, scheduler, started, list(callbacks or []), training, joined, objectives,
                            shipped)
    except KeyboardInterrupt:  # before Ray Tune took the signal over, or a second one
        _say_how_to_resume(exp)
        raise
    finally:
        if started:
            ray.shutdown()


def _refuse_existing(exp: str) -> None:
    if Folder(exp).read_bytes(STATE_FILE) is not None or tune.Tuner.can_restore(exp):
        raise GansearchError(f"--name: experiment {exp} exists; continue it with `gansearch resume {exp}` "
                             "or pick another --name")


def _say_how_to_resume(exp: str) -> None:
    if Folder(exp).read_bytes(STATE_FILE) is not None:
        print(f"interrupted: continue with `gansearch resume {exp}`", flush=True)


def _run_new(space: Space, opts: SearchOptions, exp: str, scheduler: str, started: bool,
             callbacks: list[Any], training: Any, joined: int, objectives: int,
             shipped: ShippedInputs) -> SearchOutcome:
    """``run_search`` once Ray is up: the checks that need it, the experiment's files, the search."""
    private = started and ray_address.resolve(opts.address).local  # nothing can be added to it
    cpus = opts.cpus_per_trial if opts.cpus_per_trial is not None else space.search.cpus_per_trial
    cluster.check_resources(cpus, opts.gpus_per_trial, private=private)
    watch = [] if private else [cluster.PendingWatch(cpus, opts.gpus_per_trial, opts.pending_timeout)]
    clf = driver_classifier(space)
    url = study_url(exp, opts.optuna_storage)
    manifest = Manifest(
        name=opts.name,
        space_file=space.path,
        options=dataclasses.replace(opts, optuna_storage=opts.optuna_storage and redact(opts.optuna_storage)),
        scheduler=scheduler,
        optuna_storage=None if scheduler == "pbt" else redact(url),
        metric=space.objective.metric,
        mode=space.objective.direction,
        created=time.time(),
        classifier=ClassifierRecord(clf.digest, clf.dataset, clf.test_accuracy) if clf else None,
        cwd=os.getcwd(),  # what relative data paths among the sampled values mean, also on resume
    )
    blob = clf.to_bytes() if clf else None
    with experiment_lock(exp):
        _refuse_existing(exp)  # a second search of this name may have got here first
        if scheduler != "pbt" and not opts.optuna_storage:  # a new study in the experiment folder
            if is_uri(exp):  # the study is a local file under the cache, kept by the experiment's URI
                discard_orphan_copy(url)  # nothing of the experiment is on storage: a deleted one's study
            joined = check_study_name(url, opts.name, join=False, space_text=space.text, objectives=objectives)
        tuner = build_tuner(space, opts, exp, url, callbacks + watch, blob, training=training, grow_from=joined,
                            shipped=shipped)
        create_experiment(exp, space, manifest, blob)
        if scheduler != "pbt" and not opts.join_study:
            mark_study(url, opts.name, space.text)  # the space a search joining the study must search
        tuner.fit()
        return finish(exp, space, url if scheduler != "pbt" else None, manifest)


def resume_search(exp: str, *, address: str | None = None, retry_failed: bool = False,
                  connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, more: int = 0,
                  allow_cpu_fallback: bool = False, callbacks: list[Any] | None = None,
                  training: Any = None) -> SearchOutcome:
    """Continue an interrupted search: unfinished trials resume from their latest checkpoints,
    finished ones are kept, new ones are drawn until the trial count is reached; failed trials
    stay failed unless ``retry_failed`` (then they resume from their latest checkpoint). Then
    ``more`` trials are added, warm-started from the whole study (search/experiment/create.py).
    A search started with ``allow_cpu_fallback`` keeps it; passing it here allows it for this resume.
    ``callbacks`` and ``training`` as for :func:`run_search` (the grown run's callbacks).
    One driver at a time (the experiment's lock); a search Ray saved no trial of (stopped in its
    first moments) starts over with its options and seed."""
    exp = normalise(exp)
    folder = Folder(exp)
    manifest = read_manifest(folder)
    install_legacy_paths()  # Ray's pickles of an older experiment name the modules it had
    space = read_space(folder)
    if more:
        check_growable(manifest, more)  # before anything is touched
    if manifest.missing:
        raise GansearchError(f"{exp}/{STATE_FILE}: no {', '.join(manifest.missing)}: not written by `gansearch "
                             "search` (is the copy complete?); cannot resume")
    assert manifest.options is not None and manifest.scheduler is not None and manifest.name is not None
    with experiment_lock(exp):
        for line in recover_torn_state(exp):
            print(f"gansearch: {line}", file=sys.stderr)
        over = unsaved_start(exp)
        absolute_env()
        setup_output(quiet=manifest.options.verbose == 0, resuming=not over)  # as `search --quiet` was
        shipped = shipping.prepare(space)
        started = init_ray(address, connect_timeout, shipped)
        try:
            with sigterm_as_ctrl_c():
                return _resume(exp, manifest, space, address, retry_failed, more, allow_cpu_fallback,
                               start_over=over, callbacks=list(callbacks or []), training=training, shipped=shipped)
        except KeyboardInterrupt:
            _say_how_to_resume(exp)
            raise
        finally:
            if started:
                ray.shutdown()


def _resume(exp: str, manifest: Manifest, space: Space, address: str | None, retry_failed: bool, more: int,
            allow_cpu_fallback: bool, *, start_over: bool, callbacks: list[Any], training: Any,
            shipped: ShippedInputs) -> SearchOutcome:
    """``resume_search`` once Ray is up and the experiment is locked."""
    assert manifest.options is not None and manifest.scheduler is not None and manifest.name is not None
    folder = Folder(exp)
    url = resolve_stored(manifest.optuna_storage)  # a redacted URL: the real one from the environment
    if url is not None and manifest.options.optuna_storage is None:
        here = study_url(exp, None)  # the experiment's own SQLite study, where the folder is now
        if here != url:
            study_moved(url, here)
            url = here
    # The classifier the search started with (an older experiment without one: the driver's).
    stored = folder.read_bytes(CLASSIFIER_FILE)
    clf = None if stored else driver_classifier(space)
    blob = stored or (clf.to_bytes() if clf else None)
    allow_cpu_fallback = allow_cpu_fallback or manifest.options.allow_cpu_fallback
    cwd = manifest.cwd or os.getcwd()
    if start_over:
        # Stopped before Ray saved a trial: nothing to go on with, so the search starts again as
        # it was started (same options and seed), in the same folder, with an empty study.
        print(f"gansearch: {exp}: the search was stopped before Ray saved any trial; starting it over",
              file=sys.stderr)
        clear_unsaved_start(exp, keep=(STATE_FILE, SPACE_FILE, BASE_FILE, CLASSIFIER_FILE, OPTUNA_FILE, LOCK))
        joined = manifest.options.join_study  # a shared study keeps the trials of the searches it joined
        n = 0
        if url is not None:
            import optuna

            if not joined and manifest.name in optuna.study.get_all_study_names(storage=url):
                optuna.delete_study(study_name=manifest.name, storage=url)
            elif joined:
                n = len(optuna.load_study(study_name=manifest.name, storage=url).trials)
        opts = dataclasses.replace(manifest.options, address=address, optuna_storage=url,
                                   allow_cpu_fallback=allow_cpu_fallback)
        tuner = build_tuner(space, opts, exp, url or "", callbacks, blob, cwd=cwd, training=training, grow_from=n,
                            shipped=shipped)
        if url is not None and not joined:
            mark_study(url, manifest.name, space.text)
        tuner.fit()
    elif not more or needs_restore(folder):
        ctx = TrialContext(space, manifest.scheduler, blob, cwd, allow_cpu_fallback, training, shipped)
        trainable = tune.with_resources(
            tune.with_parameters(gan_trial, ctx=ctx),
            {"cpu": manifest.options.cpus_per_trial or space.search.cpus_per_trial,
             "gpu": manifest.options.gpus_per_trial},
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
        n = len(optuna.load_study(study_name=manifest.name, storage=url).trials)
        manifest, _, _ = grow_experiment(folder, space, more)
        assert manifest.options is not None
        opts = dataclasses.replace(manifest.options, trials=more, address=address, optuna_storage=url,
                                   allow_cpu_fallback=allow_cpu_fallback)
        build_tuner(space, opts, exp, url, callbacks, blob, grow_from=n, cwd=cwd, training=training,
                    shipped=shipped).fit()
    return finish(exp, space, url, manifest)


# ----------------------------------------------------------------------------- results


def finish(exp: str, space: Space, optuna_url: str | None, manifest: Manifest) -> SearchOutcome:
    """Summarise the experiment: summary.json, best_config.yaml, the study copied next to it.

    The records are read from the folder as every reader reads them; Ray's view of each trial
    (finished, errored or cut off) is what the files alone cannot always tell, so it goes in."""
    analysis = tune.ExperimentAnalysis(exp, default_metric=space.objective.metric,
                                       default_mode=space.objective.mode)
    record = open_experiment(exp, driver={t.trial_id: driver_view(t.status) for t in analysis.trials},
                             with_configs=False)
    opts = manifest.options or SearchOptions(name=record.name)
    expected = opts.trials or space.search.trials
    time_limited = bool(opts.time_budget_s or space.search.time_budget_s)
    best = record.best()
    best_path = None
    if best is not None:
        cfg = space.config_for(best.params)
        cfg.name = f"{exp.rstrip('/').rsplit('/', 1)[-1]}-best"
        best_path = Folder(exp).write_text(BEST_CONFIG_FILE, dump_config(cfg))
    # Interrupted: a trial was cut off, or trials were still to come (unless the time budget
    # ended the search, which is how a time-limited search is meant to end).
    interrupted = record.count(TrialStatus.UNFINISHED) > 0 or (len(record.trials) < expected and not time_limited)
    if optuna_url and not interrupted and manifest.name:
        orphans = fail_orphans(optuna_url, manifest.name, exp)
        if orphans:
            print(f"gansearch: {orphans} Optuna trial(s) of this search were left RUNNING in the study by a driver "
                  "stopped before Ray saved them; marked FAIL", file=sys.stderr)
    write_summary(record, best_config=best_path, interrupted=interrupted)
    if optuna_url and optuna_url.startswith("sqlite:///") and is_uri(exp):
        settle_sqlite(Path(optuna_url[len("sqlite:///"):]))  # its write-ahead log into the file copied
        Folder(exp).upload(Path(optuna_url[len("sqlite:///"):]), OPTUNA_FILE)
    rows = sorted(record.trials, key=lambda r: r.trial_id)
    return SearchOutcome(exp, rows, best, best_path, space.objective, interrupted)


# Ray's trial statuses (ray.tune.experiment.Trial) as the experiment records the driver's view.
_DRIVER_VIEWS = {"ERROR": DriverView.ERRORED, "TERMINATED": DriverView.TERMINATED, "PENDING": DriverView.PENDING,
                 "RUNNING": DriverView.RUNNING, "PAUSED": DriverView.PAUSED}


def driver_view(ray_status: str) -> DriverView:
    """What the driver saw of a trial whose Ray status is ``ray_status`` (another: cut off)."""
    return _DRIVER_VIEWS.get(str(ray_status), DriverView.RUNNING)
