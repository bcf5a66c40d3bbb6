"""The training loop: alternating D and G phases, balance control, evaluation, checkpoints.

It knows nothing of Ray or Optuna. It takes callbacks (report a log line, report an evaluation,
ask whether to stop) and counts its budget in images seen: one step draws one batch of real
images, so ``images_seen = step * batch_size`` and trials with different batch sizes compare
fairly.

Example::

    cfg = load_preset("mnist-dcgan")
    result = train(cfg, "runs/mnist-dcgan")   # re-running resumes from runs/mnist-dcgan
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch

from gan_core.augment import check_policy
from gan_core.checkpoint import CHECKPOINT, check_resumable, load_checkpoint
from gan_core.config import Config, save_config
from gan_core.data import load_dataset
from gan_core.errors import GansearchError
from gan_core.events import EventWriter, progress_bar
from gan_core.interrupts import StopRequest, stop_on_signals
from gan_core.io import RunLock, append_jsonl, atomic_write_text, read_jsonl, remove_stale_tmp
from gan_core.trainer import STAT_KEYS, ScoreFn, Trainer, finite_weights

__all__ = ["STAT_KEYS", "Callbacks", "RunStatus", "ScoreFn", "TrainResult", "Trainer", "resolve_device", "train"]


@dataclass
class Callbacks:
    on_log: Callable[[dict[str, Any]], None] | None = None
    on_eval: Callable[[dict[str, Any], Path | None], None] | None = None
    should_stop: Callable[[], bool] | None = None


class RunStatus(StrEnum):
    """How a training run ended (a search's TrialStatus is derived from it)."""

    COMPLETED = "completed"  # trained its whole budget
    STOPPED = "stopped"  # stopped early: a signal, a caller's should_stop, a scheduler
    DIVERGED = "diverged"  # a NaN or inf in a loss, a gradient or a weight


@dataclass
class TrainResult:
    status: RunStatus
    reason: str = ""
    step: int = 0
    images_seen: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise GansearchError(f"--device: {device!r} is not one of auto, cpu, cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GansearchError("--device: cuda requested but torch sees no CUDA device (use cpu or auto)")
    return torch.device(device)


def _build_evaluator(cfg: Config, device: torch.device) -> ScoreFn | None:
    if not cfg.eval.enabled:
        return None
    from gan_core import metrics

    return metrics.make_evaluator(cfg, device)


def _write_pictures(run_dir: Path, cfg: Config) -> None:
    from PIL import Image

    from gan_core import viz

    frames = sorted((run_dir / "samples").glob("step-*.png"))
    if frames:
        viz.save_gif([Image.open(f).convert("RGB") for f in frames], run_dir / "learning.gif")
    viz.plot_curves(read_jsonl(run_dir / "metrics.jsonl"), run_dir / "curves.png", title=cfg.name)


def _non_finite(values: dict[str, float]) -> str:
    return ", ".join(k for k, v in values.items() if not math.isfinite(v))


def _window(tr: Trainer) -> str:
    """The steps whose statistics are in the running sums: where a NaN can have come from."""
    return f"{tr.step - tr.acc['n'] + 1}-{tr.step}"


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


def train(
    cfg: Config,
    run_dir: str | Path | None = None,
    *,
    device: str = "auto",
    callbacks: Callbacks | None = None,
    progress: bool = True,
    evaluator: ScoreFn | None = None,
) -> TrainResult:
    """Train ``cfg`` for ``cfg.train.images`` images; resume from ``run_dir`` if it holds a
    checkpoint. Returns how the run ended; a NaN ends it with status ``diverged``, not a crash.

    ``run_dir`` is locked for the run (a second trainer on it gets a GansearchError naming the
    holder's pid). In the main thread the first SIGINT/SIGTERM ends the run after the current
    step with a checkpoint (status ``stopped``, reason ``interrupted``), so it resumes exactly;
    a second one aborts at once with ``KeyboardInterrupt`` and saves nothing."""
    dev = resolve_device(device)
    run_path = Path(run_dir) if run_dir is not None else None
    # Refuse what the data cannot take before anything is written (datasets are cached).
    data = load_dataset(cfg.data, "train")
    check_policy(cfg.augment.policy, data.shape, cfg.data.name)
    lock = RunLock(run_path) if run_path is not None else None
    with stop_on_signals() as stop:
        if lock is not None:
            lock.acquire()
        try:
            return _train(cfg, run_path, dev, callbacks or Callbacks(), progress, evaluator, stop)
        finally:
            if lock is not None:
                lock.release()


def _train(cfg: Config, run_path: Path | None, dev: torch.device, cb: Callbacks, progress: bool,
           evaluator: ScoreFn | None, stop: StopRequest) -> TrainResult:
    """``train()`` once the run directory is locked and the stop request is set up."""
    state = None
    if run_path is not None:
        for folder in (run_path, run_path / "samples"):  # what a killed atomic write left
            remove_stale_tmp(folder)
        ckpt = run_path / CHECKPOINT
        if ckpt.exists():
            state = load_checkpoint(ckpt, "cpu")
            check_resumable(state, cfg, ckpt)
        run_path.mkdir(parents=True, exist_ok=True)
    if evaluator is None:
        evaluator = _build_evaluator(cfg, dev)
    tr = Trainer(cfg, run_path, dev, evaluator)
    if state is not None:
        assert run_path is not None  # a state is only read from a run folder
        try:
            tr.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:  # weights or state of another model
            detail = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
            raise GansearchError(f"{run_path / CHECKPOINT}: does not fit its config; cannot resume "
                                 f"({type(exc).__name__}: {detail[:160]}); use a new --out directory") from None
    if run_path is not None:  # once the models are built and the checkpoint fits them
        save_config(cfg, run_path / "config.yaml")
    log_path = run_path / "metrics.jsonl" if run_path is not None else None
    if log_path is not None and log_path.exists():
        # Drop log lines written after the checkpoint (all of them when there is none, or
        # a torn one): the resumed run writes them again.
        kept = [r for r in read_jsonl(log_path) if r.get("step", 0) <= tr.step]
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in kept))

    if run_path is not None:
        # TensorBoard drops what an earlier attempt wrote after the checkpoint, as the log was trimmed.
        tr.events = EventWriter.open(run_path, purge_from=tr.images_seen + 1 if tr.step else 0)
    try:
        return _run(cfg, tr, log_path, cb, progress, stop)
    finally:
        if tr.events is not None:
            tr.events.close()


def _run(cfg: Config, tr: Trainer, log_path: Path | None, cb: Callbacks, progress: bool,
         stop: StopRequest) -> TrainResult:
    """The steps of ``_train`` once the trainer is built and restored."""
    run_path = tr.run_dir

    def log(record: dict[str, Any]) -> None:
        if log_path is not None:
            append_jsonl(log_path, record)
        if tr.events is not None:
            tr.events.record(record)

    total = cfg.steps
    t_cfg = cfg.train
    bar = progress_bar(total, tr.step, cfg.name) if progress else None
    status, reason = RunStatus.COMPLETED, ""
    if tr.step == 0:
        tr.sample_grid()
    t_last, step_last = time.perf_counter(), tr.step
    warned: set[str] = set()
    try:
        while tr.step < total:
            if stop.requested:  # SIGINT/SIGTERM: honoured here, between steps, never inside one
                status, reason = RunStatus.STOPPED, "interrupted"
                break
            if cb.should_stop is not None and cb.should_stop():
                status, reason = RunStatus.STOPPED, "stopped by request"
                break
            before = tr.images_seen
            stats = tr.train_step()
            after, last = tr.images_seen, tr.step == total
            log_line = _crossed(before, after, t_cfg.log_every) or last
            sampling = _crossed(before, after, t_cfg.sample_every) or last
            evaluating = tr.evaluator is not None and (_crossed(before, after, cfg.eval.every) or last)
            saving = evaluating or _crossed(before, after, t_cfg.checkpoint_every)
            if cfg.balance.enabled:  # the controller reads every step's error: one sync per step
                values = dict(zip(STAT_KEYS, stats.tolist(), strict=True))
                bad = _non_finite(values)
                if bad:
                    status, reason = RunStatus.DIVERGED, f"non-finite {bad} at step {tr.step}"
                    break
                for event in tr.balance.update(values["d_error"], tr.step):
                    log({"kind": "balance", "images_seen": tr.images_seen, **event})
            sums: dict[str, float] = {}
            if log_line or sampling or saving:
                # Nothing is drawn, scored or saved from a diverged run: a NaN or inf of any
                # step since the last log line is in the sums.
                sums = tr.acc_sums()
                bad = _non_finite(sums)
                if bad:
                    status, reason = RunStatus.DIVERGED, f"non-finite {bad} in steps {_window(tr)}"
                    break
            a = tr.acc
            if log_line:
                ok, biggest = finite_weights(tr.G, tr.D)
                if not ok:
                    status, reason = RunStatus.DIVERGED, f"non-finite weights at step {tr.step}"
                    break
                if biggest > t_cfg.weight_warn and "big" not in warned:
                    warned.add("big")
                    warnings.warn(f"step {tr.step}: a weight reached {biggest:.3g} (> {t_cfg.weight_warn:g})",
                                  stacklevel=1)
                now = time.perf_counter()
                n = max(a["n"], 1)
                record = {
                    "kind": "train", "step": tr.step, "images_seen": after,
                    "loss_d": sums["loss_d"] / n, "loss_g": sums["loss_g"] / max(a["n_g"], 1),
                    "acc_real": sums["acc_real"] / n, "acc_fake": sums["acc_fake"] / n,
                    "d_error": sums["d_error"] / n, "balance_error": tr.balance.error,
                    "train_d": tr.balance.train_d, "train_g": tr.balance.train_g,
                    "d_updates": a["d_updates"], "g_updates": a["g_updates"],
                    "max_weight": biggest,
                    "images_per_s": (tr.step - step_last) * t_cfg.batch_size / max(now - t_last, 1e-9),
                }
                t_last, step_last = now, tr.step
                tr.reset_acc()
                log(record)
                if cb.on_log is not None:
                    cb.on_log(record)
                if bar is not None:
                    bar.set_postfix(img_s=f"{record['images_per_s']:.0f}", D=f"{record['loss_d']:.3f}",
                                    G=f"{record['loss_g']:.3f}", refresh=False)
            if sampling:
                tr.sample_grid()
            if evaluating:
                tr.last_eval = tr.evaluate()
                log({"kind": "eval", **tr.last_eval})
            if saving:
                tr.save("completed" if tr.step == total else "running")
            if evaluating and tr.events is not None:
                tr.events.flush()  # what a trial stopped inside on_eval (ASHA) has shown is on disk
            if evaluating and cb.on_eval is not None:
                cb.on_eval(tr.last_eval, run_path)
            if bar is not None:
                bar.update(1)
    finally:  # a KeyboardInterrupt here (a second signal) saves nothing: the step may be half done
        if bar is not None:
            bar.close()
    if status is not RunStatus.DIVERGED and tr.acc["n"]:  # steps since the last check: none may be saved broken
        bad = _non_finite(tr.acc_sums())
        if bad:
            status, reason = RunStatus.DIVERGED, f"non-finite {bad} in steps {_window(tr)}"
    if status is RunStatus.DIVERGED:
        log({"kind": "end", "step": tr.step, "images_seen": tr.images_seen, "status": status,
             "reason": reason})
    else:
        tr.save(status)
        log({"kind": "end", "step": tr.step, "images_seen": tr.images_seen, "status": status,
             "reason": reason})
    if run_path is not None:
        _write_pictures(run_path, cfg)
    return TrainResult(status, reason, tr.step, tr.images_seen, tr.last_eval, run_path)
