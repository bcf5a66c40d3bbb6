"""The trainable of a search: :func:`gan_trial`, one trial in a Ray worker.

It validates a trial's sampled values into the typed Config (``Space.config_for``), trains it
(:class:`GanTraining`: ``gan_core.loop.train`` on the device Ray gave it), and reports every
evaluation to Tune with a checkpoint (the loop's checkpoint.pt, metrics.jsonl and config.yaml),
from which a retried, resumed or (PBT) cloned trial continues. A run that diverges raises
:class:`TrialDiverged`.

What trains is the one seam (``TrialContext.training``): everything else a trial does, the
config, the run folder, restoring a checkpoint, the reports and their costs, is this module's
for any training. bench/bench_scale.py puts a simulated GPU there (a learning curve and a sleep)
to measure the driver under thousands of trials.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ray
from ray import tune

from gan_core.config import from_dict, to_dict
from search.device_policy import choose_device, probe_cuda
from search.experiment import CHECKPOINT_FILES, RUN_SUBDIR, TrialDiverged, trial_params
from search.pareto import ThroughputMeter, generator_params
from search.raytune.driver import absolute_paths
from search.raytune.progress import quiet_worker_logs, unraisable_but_exit
from search.raytune.recovery import recover_run_artifacts
from search.raytune.shipping import ShippedInputs, install
from search.space import PBT_RESUMABLE, Space

# Ray may end a trial's worker (SIGTERM: the search ending, a PBT pause) before gan_trial runs,
# while Tune restores it; the handler's SystemExit inside a finalizer then prints as a traceback
# into the driver's log. Ray imports this module in the worker when it loads the trainable, so
# the hook is in place before any trial code (gan_trial installs it again with the log filter).
sys.unraisablehook = unraisable_but_exit


@dataclass(frozen=True)
class TrialFacts:
    """How a trial trains, which every one of its reports carries."""

    device: str  # "cpu" or "cuda"
    torch_threads: int
    classifier_digest: str  # the reference classifier that scores it (review checks there is one)
    g_params: int  # the generator's parameter count (a --cost)


class Training(Protocol):
    """One trial's training, made in the trial's worker by ``TrialContext.training``: a class
    (or any callable) taking ``(cfg, ctx, trial_id=, cpus=, gpu_ids=)``. :class:`GanTraining` is
    the one a search uses; a stand-in keeps the same contract: ``facts``, and ``run`` trains
    ``cfg`` in ``run_dir`` (resuming from the checkpoint files there), calls ``on_eval(metrics,
    run_dir)`` at every evaluation (metrics with ``step``, ``images_seen`` and the objective's
    metric; the checkpoint files written), ``should_stop()`` before every step and ``on_log``
    with each log record (``images_per_s``), and returns None, or why it diverged."""

    facts: TrialFacts

    def run(self, run_dir: Path, *, on_eval: Any, should_stop: Any, on_log: Any) -> str | None: ...


@dataclass
class TrialContext:
    """What every trial needs besides its sampled values (shipped once via the object store)."""

    space: Space
    scheduler: str
    classifier: bytes | None = None  # the driver's reference classifier (ReferenceClassifier.to_bytes)
    cwd: str = ""  # the driver's working folder: relative data paths a trial samples mean this one
    allow_cpu_fallback: bool = False  # search/device_policy.py
    training: Any = None  # what makes a trial's Training (see Training); None: GanTraining
    shipped: ShippedInputs | None = None  # the user's images, feature file and packages (shipping.py)


class GanTraining:
    """A trial's training: ``gan_core.loop.train`` with the trial's evaluator, as many torch
    threads as the trial has CPUs, on the GPU Ray gave it (the CPU only as
    search/device_policy.py allows)."""

    def __init__(self, cfg: Any, ctx: TrialContext, *, trial_id: str, cpus: float, gpu_ids: list[Any]) -> None:
        import torch

        torch.set_num_threads(max(1, int(cpus)))  # the trial's CPUs, never the whole machine
        node = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
        device, note = choose_device(gpu_ids, probe_cuda(node) if gpu_ids else None, ctx.allow_cpu_fallback)
        if note:
            warnings.warn(f"gansearch: trial {trial_id}: {note}", RuntimeWarning, stacklevel=1)
        self.cfg, self.device = cfg, device
        self.evaluator = _trial_evaluator(cfg, device, ctx)
        self.facts = TrialFacts(device, torch.get_num_threads(), self.evaluator.classifier.digest,
                                generator_params(cfg))

    def run(self, run_dir: Path, *, on_eval: Any, should_stop: Any, on_log: Any) -> str | None:
        from gan_core.loop import Callbacks, RunStatus, train

        result = train(self.cfg, run_dir, device=self.device, progress=False, evaluator=self.evaluator,
                       callbacks=Callbacks(on_eval=on_eval, should_stop=should_stop, on_log=on_log))
        return (result.reason or "non-finite values") if result.status is RunStatus.DIVERGED else None


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


def restore_checkpoint(checkpoint: Any, run_dir: Path, ctx: TrialContext, cfg: Any) -> None:
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
    if diff(saved, cfg) and not keys_blocking_resume(saved, cfg, also_mutable=PBT_RESUMABLE):
        state["config"] = to_dict(cfg)
        state.pop("version", None)
        save_checkpoint(state, run_dir / "checkpoint.pt")


def gan_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """One trial: sampled values -> Config -> its Training (gan_core.loop.train), reporting each
    evaluation with a checkpoint."""
    started = time.time()
    quiet_worker_logs()

    tctx = tune.get_context()
    trial_id = tctx.get_trial_id()
    cpus = tctx.get_trial_resources().required_resources.get("CPU", 1.0)
    gpu_ids = ray.get_gpu_ids()
    node_id = ray.get_runtime_context().get_node_id()

    cfg = ctx.space.config_for(trial_params(config))
    cfg.name = f"{tctx.get_experiment_name()}/{trial_id}"
    if ctx.cwd:
        absolute_paths(cfg, ctx.cwd)  # sampled paths; the base's are absolute already
    data_digest = install(ctx.shipped, cfg.data)  # before anything loads the data or a feature network
    training: Training = (ctx.training or GanTraining)(cfg, ctx, trial_id=trial_id, cpus=cpus, gpu_ids=gpu_ids)
    facts = training.facts
    trial_dir = Path(tctx.get_trial_dir())
    run_dir = trial_dir / RUN_SUBDIR
    aside = earlier = None
    if run_dir.exists():  # a retry or restart on this node: Tune's checkpoint is the truth
        # Moved aside (outside the folder Ray copies out), not deleted: its grids up to the
        # checkpoint may not have been copied out yet (recover_run_artifacts).
        aside = Path(tempfile.mkdtemp(prefix=f".{trial_dir.name}-earlier-", dir=trial_dir.parent))
        earlier = run_dir.rename(aside / RUN_SUBDIR)
    run_dir.mkdir(parents=True)
    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            restore_checkpoint(checkpoint, run_dir, ctx, cfg)
            for line in recover_run_artifacts(trial_dir, run_dir, earlier):
                print(f"gansearch: trial {trial_id}: {line}", file=sys.stderr, flush=True)
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)

    timing = {"loop_start": 0.0, "in_report": 0.0}
    meter = ThroughputMeter()  # the images/s cost (search/pareto.py)

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
            "run_dir": str(run_dir),  # on its node: the driver copies the newest grid from it (progress.py)
            "device": facts.device,
            "gpu_ids": ",".join(str(g) for g in gpu_ids),
            "torch_threads": facts.torch_threads,
            "classifier_digest": facts.classifier_digest,
            "data_digest": data_digest,  # the user's image set every trial trained on ("" built-in)
            "trial_seed": cfg.train.seed,
            "started_at": started,
            "reported_at": t0,
            "startup_s": startup,
            "report_s": timing["in_report"],
            "train_eval_s": t0 - started - startup - timing["in_report"],
            "images_per_s": meter.value(metrics["images_seen"] / max(t0 - started - timing["in_report"], 1e-9)),
            "g_params": facts.g_params,
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

    diverged = training.run(run_dir, on_eval=on_eval, should_stop=should_stop, on_log=meter.on_log)
    if diverged is not None:
        raise TrialDiverged(diverged)


def _trial_evaluator(cfg: Any, device: str, ctx: TrialContext) -> Any:
    """The trial's evaluator, scoring with the driver's classifier when the trial's data is the
    one it was trained for (otherwise the node's own, whose other digest the results record)."""
    from gan_core.metrics import install_classifier, make_evaluator

    if ctx.classifier is not None:
        install_classifier(ctx.classifier, device)
    return make_evaluator(cfg, device)
