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

import contextlib
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
from torch import nn

from gan_core import losses as losses_mod
from gan_core import models
from gan_core.augment import DiffAugment, check_policy
from gan_core.balance import BalanceController
from gan_core.checkpoint import CHECKPOINT, check_resumable, load_checkpoint, save_checkpoint
from gan_core.config import Config, save_config, to_dict
from gan_core.data import Dataset, load_dataset
from gan_core.ema import GeneratorEma
from gan_core.errors import GansearchError
from gan_core.events import EventWriter, progress_bar
from gan_core.interrupts import StopRequest, stop_on_signals
from gan_core.io import RunLock, append_jsonl, atomic_write_text, read_jsonl, remove_stale_tmp
from gan_core.optim import apply_hyperparameters, build_optimizer, clip_gradients
from gan_core.sampling import cycling_labels, generate, one_hot

# What the loop scores samples with: images and labels in, named metrics (with "score") out;
# gan_core.metrics.Evaluator is one, a test may pass a plain function.
ScoreFn = Callable[[torch.Tensor, "torch.Tensor | None"], dict[str, float]]

# Per-step statistics, in the order of the vector ``Trainer.train_step`` returns. They are summed
# on the device and read by the host only when the loop needs them (a log line, a picture, an
# evaluation, a checkpoint, or every step while the balance controller is on): a host sync per
# step would stall a GPU's queue.
STAT_KEYS = ("loss_d", "loss_g", "acc_real", "acc_fake", "d_error")


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


def _finite_weights(*mods: nn.Module) -> tuple[bool, float]:
    """(all finite, largest absolute weight), with one host sync for all parameters."""
    params = [p.detach() for m in mods for p in m.parameters()]
    biggest = torch.stack(torch._foreach_norm(params, math.inf)).max().item()
    return math.isfinite(biggest), biggest


class Trainer:
    """Holds the state of one run; ``train()`` below is the public entry point."""

    def __init__(self, cfg: Config, run_dir: Path | None, device: torch.device,
                 evaluator: ScoreFn | None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.device = device
        self.evaluator = evaluator
        t = cfg.train
        torch.manual_seed(t.seed)  # model init and dropout draw from the global stream
        self.data: Dataset = load_dataset(cfg.data, "train")
        self.num_classes = self.data.num_classes
        self.G, self.D = models.build(cfg.model, self.data.shape, self.num_classes)
        self.G.to(device)
        self.D.to(device)
        self.g_params, self.d_params = list(self.G.parameters()), list(self.D.parameters())
        self.loss = losses_mod.LOSSES[cfg.loss.name]
        self.opt_d, self.sched_d = build_optimizer(cfg.optim.d, self.d_params, "d")
        self.opt_g, self.sched_g = build_optimizer(cfg.optim.g, self.g_params, "g")
        self.balance = BalanceController(cfg.balance)
        self.data_gen = torch.Generator().manual_seed(t.seed * 1000 + 1)
        self.noise_gen = torch.Generator().manual_seed(t.seed * 1000 + 2)
        self.aug_gen = torch.Generator().manual_seed(t.seed * 1000 + 5)
        self.augment = DiffAugment(cfg.augment.policy, cfg.augment.p, self.aug_gen)
        self.ema = (GeneratorEma(self.G, cfg.ema.decay, cfg.ema.start_images, cfg.ema.standing_stats)
                    if cfg.ema.decay > 0 else None)
        self.step = 0
        self.d_updates = 0  # every D update so far: lazy R1 runs on every r1_every-th
        self.acc = self._empty_acc()  # host-side counts since the last log line
        self.acc_sum = torch.zeros(len(STAT_KEYS), device=device)  # STAT_KEYS sums, on the device
        self._zero = torch.zeros((), device=device)  # loss_g of a step with G paused
        self.last_eval: dict[str, Any] = {}
        self.saved: tuple[int, str] | None = None
        self.events: EventWriter | None = None  # TensorBoard, when tensorboardX is installed
        # Fixed noise: sample grids (4x4, or 10 noise rows x 10 classes) and evaluation.
        fixed = torch.Generator().manual_seed(t.seed * 1000 + 3)
        grid_n = 100 if self.G.conditional else 16
        z = models.sample_latent(grid_n, cfg.model.latent_dim, cfg.model.latent_dist, fixed, device)
        if self.G.conditional:  # row i: one noise vector; column k: class k (seed 004's grid)
            z = z[:10].repeat_interleave(10, dim=0)
        self.grid_z = z
        self.grid_labels = (torch.arange(grid_n, device=device) % 10 % max(self.num_classes, 1)
                            if self.G.conditional else None)

    # ------------------------------------------------------------------ state

    @staticmethod
    def _empty_acc() -> dict[str, int]:
        return {"n": 0, "n_g": 0, "d_updates": 0, "g_updates": 0}

    def reset_acc(self) -> None:
        self.acc = self._empty_acc()
        self.acc_sum.zero_()

    def acc_sums(self) -> dict[str, float]:
        """The summed statistics since the last log line (one host sync)."""
        return dict(zip(STAT_KEYS, self.acc_sum.tolist(), strict=True))

    @property
    def images_seen(self) -> int:
        return self.step * self.cfg.train.batch_size

    @property
    def G_sample(self) -> models.Generator:
        """The generator that draws sample grids and is evaluated: the EMA one when it is on."""
        return self.ema.sampler() if self.ema is not None else self.G

    def state_dict(self, status: str) -> dict[str, Any]:
        return {
            "config": to_dict(self.cfg), "shape": list(self.data.shape), "num_classes": self.num_classes,
            "step": self.step, "images_seen": self.images_seen, "status": str(status),  # plain data: weights_only
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
            "balance": self.balance.state_dict(), "acc": {**self.acc, **self.acc_sums()}, "last_eval": self.last_eval,
            "G_ema": self.ema.state_dict() if self.ema is not None else None,
            "d_updates_total": self.d_updates,
            "rng": {"torch": torch.get_rng_state(), "data": self.data_gen.get_state(),
                    "noise": self.noise_gen.get_state(), "augment": self.aug_gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.balance.load_state_dict(state["balance"])
        acc = state["acc"]
        self.acc = {k: int(acc[k]) for k in self._empty_acc()}
        self.acc_sum = torch.tensor([float(acc[k]) for k in STAT_KEYS], device=self.device)
        self.last_eval = dict(state.get("last_eval", {}))
        self.step = state["step"]
        # Checkpoints from before the counter: every scheduler step was one D update.
        self.d_updates = state.get("d_updates_total", self.sched_d.last_epoch)
        if self.ema is not None:
            if state.get("G_ema") is not None:
                self.ema.load_state_dict(state["G_ema"])
            else:  # a run (or a PBT clone) that had no average yet starts it from G
                self.ema.reset()
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        self.data_gen.set_state(rng["data"].cpu())
        self.noise_gen.set_state(rng["noise"].cpu())
        if rng.get("augment") is not None:
            self.aug_gen.set_state(rng["augment"].cpu())
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        # The configured hyperparameters win over what the optimiser state carried (PBT's new ones).
        apply_hyperparameters(self.opt_d, self.sched_d, self.cfg.optim.d)
        apply_hyperparameters(self.opt_g, self.sched_g, self.cfg.optim.g)

    def save(self, status: str = "running") -> None:
        if self.run_dir is not None and self.saved != (self.step, status):
            save_checkpoint(self.state_dict(status), self.run_dir / CHECKPOINT)
            self.saved = (self.step, status)

    # ------------------------------------------------------------------ one step

    def _labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return one_hot(y, self.num_classes) if (self.G.conditional and y is not None) else None

    def _latent(self, n: int) -> torch.Tensor:
        m = self.cfg.model
        return models.sample_latent(n, m.latent_dim, m.latent_dist, self.noise_gen, self.device)

    def _weights_once(self) -> contextlib.AbstractContextManager[Any]:
        """Within one D update, compute each spectrally normalised weight (and its power
        iteration) once, for the real, fake, R1 and GP passes alike, not once per forward."""
        if self.cfg.model.spectral_norm == "none":
            return contextlib.nullcontext()
        return nn.utils.parametrize.cached()

    def _D(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D as the loop sees it: every image, real or fake, goes through DiffAugment first."""
        return self.D(self.augment(x), y)

    def train_step(self) -> torch.Tensor:
        """One step: ``d_steps`` D updates and one G update (each unless the balance controller
        pauses it). Adds the step's statistics to the running sums and returns them as one
        device tensor in ``STAT_KEYS`` order (loss_g 0 when G was paused), without a host sync."""
        cfg, bs = self.cfg, self.cfg.train.batch_size
        train_d, train_g = self.balance.train_d, self.balance.train_g
        real_u8, y = self.data.batch(bs, self.data_gen, self.device)
        real = models.to_model_range(real_u8, cfg.model.output)
        y1h = self._labels(y)
        z = self._latent(bs)

        # Discriminator phase (d_steps updates; extra updates draw fresh batches).
        if train_d:
            for k in range(cfg.train.d_steps):
                if k > 0:
                    real_u8, y = self.data.batch(bs, self.data_gen, self.device)
                    real, y1h, z = models.to_model_range(real_u8, cfg.model.output), self._labels(y), self._latent(bs)
                with self._weights_once():
                    with torch.no_grad():
                        fake = self.G(z, y1h)
                    r1 = cfg.loss.r1_gamma > 0 and self.d_updates % cfg.loss.r1_every == 0
                    if r1:  # R1 shares D's forward on the real batch: its gradient is w.r.t. real
                        real = real.detach().requires_grad_(True)
                    d_real, d_fake = self._D(real, y1h), self._D(fake, y1h)
                    loss_d = self.loss.d_loss(d_real, d_fake)
                    if self.loss.needs_gp:
                        loss_d = loss_d + cfg.loss.gp_weight * losses_mod.gradient_penalty(
                            self._D, real, fake, y1h, generator=self.noise_gen)
                    if r1:
                        weight = cfg.loss.r1_gamma / 2 * cfg.loss.r1_every
                        loss_d = loss_d + weight * losses_mod.r1_penalty(d_real, real)
                    self.opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                clip_gradients(self.d_params, cfg.optim.d.clip_value)
                self.opt_d.step()
                self.sched_d.step()
                self.d_updates += 1
            loss_d = loss_d.detach()
        else:
            with torch.no_grad():
                fake = self.G(z, y1h)
                d_real, d_fake = self._D(real, y1h), self._D(fake, y1h)
                loss_d = self.loss.d_loss(d_real, d_fake)
        d_real, d_fake = d_real.detach(), d_fake.detach()
        # Seed 004's discriminator error: (surprise on real+fake + surprise on fake) / 2.
        bce = nn.functional.binary_cross_entropy_with_logits
        err_fake = bce(d_fake, torch.zeros_like(d_fake))
        d_error = (bce(d_real, torch.ones_like(d_real)) + 2 * err_fake) / 2
        acc_real, acc_fake = losses_mod.discriminator_accuracy(d_real, d_fake)

        # Generator phase. backward(inputs=G's weights) leaves D's weights alone: no gradient
        # is computed for them, with no requires_grad toggling on every step.
        loss_g = self._zero
        if train_g:
            z = self._latent(bs)
            fake = self.G(z, y1h)
            loss_g = self.loss.g_loss(self._D(fake, y1h))
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=self.g_params)
            clip_gradients(self.g_params, cfg.optim.g.clip_value)
            self.opt_g.step()
            self.sched_g.step()
            if self.ema is not None:
                self.ema.update(self.images_seen + bs)  # counting this step's batch
            loss_g = loss_g.detach()
        self.step += 1
        stats = torch.stack([loss_d, loss_g, acc_real, acc_fake, d_error]).float()
        self.acc_sum += stats
        a = self.acc
        a["n"] += 1
        a["n_g"] += int(train_g)
        a["d_updates"] += int(train_d)
        a["g_updates"] += int(train_g)
        return stats

    # ------------------------------------------------------------------ pictures and eval

    def sample_grid(self) -> None:
        if self.run_dir is None:
            return
        from gan_core import viz

        labels = self.grid_labels
        images = generate(self.G_sample, self.grid_z.shape[0], z=self.grid_z, labels=labels)
        nrow = 10 if self.G.conditional else 4
        scale = 2 if self.data.shape[1] <= 32 else 1
        grid = viz.image_grid(images, nrow, scale=scale)
        viz.save_png(grid, self.run_dir / "samples" / f"step-{self.step:06d}.png")
        if self.events is not None:
            self.events.image("samples", grid, self.images_seen)

    def evaluate(self) -> dict[str, Any]:
        n = self.cfg.eval.n
        labels = cycling_labels(n, self.num_classes, self.device) if self.G.conditional else None
        images = generate(self.G_sample, n, seed=self.cfg.train.seed * 1000 + 4, labels=labels)
        assert self.evaluator is not None
        metrics = self.evaluator(images, labels)
        return {"step": self.step, "images_seen": self.images_seen, **metrics}


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
                ok, biggest = _finite_weights(tr.G, tr.D)
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
