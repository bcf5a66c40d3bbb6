"""One run's state and its step: the models, optimisers, balance controller, EMA, RNG streams,
one training step, sample grids and evaluation. ``gan_core.loop.train`` drives it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_core import losses as losses_mod
from gan_core import models, user_arch
from gan_core.augment import DiffAugment, blur_sigma, gaussian_blur
from gan_core.balance import BalanceController
from gan_core.checkpoint import CHECKPOINT, save_checkpoint
from gan_core.config import Config, to_dict
from gan_core.data import Dataset, load_dataset
from gan_core.ema import GeneratorEma
from gan_core.events import EventWriter
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


def finite_weights(*mods: nn.Module) -> tuple[bool, float]:
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
        # An import-path architecture: its path and source digest go into every checkpoint.
        self.arch_source = ({"path": cfg.model.arch, "digest": user_arch.source_digest(cfg.model.arch)}
                            if ":" in cfg.model.arch else None)
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
            "arch_source": self.arch_source,
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
        """D as the loop sees it: every image, real or fake, blurred while augment.blur_sigma
        fades out, then through DiffAugment."""
        a = self.cfg.augment
        x = gaussian_blur(x, blur_sigma(a.blur_sigma, a.blur_images, self.images_seen))
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
