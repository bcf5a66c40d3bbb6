"""Optimisers per side, by name, with Keras' ``clipvalue`` and time ``decay`` (seed 000/002).

Updates are fused (Adam, SGD: one kernel per tensor) or multi-tensor (RMSprop, clipping): with
small networks the single-tensor defaults spend as long in dispatching a dozen element-wise ops
per weight as in the maths."""

from __future__ import annotations

import torch
from torch import nn

from gan_core.config import OptimSide
from gan_core.errors import ConfigError

OPTIMIZERS = ("adam", "rmsprop", "sgd")


def build_optimizer(
    cfg: OptimSide, params: list[nn.Parameter], side: str
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimiser plus a scheduler implementing Keras' decay: lr / (1 + decay * updates)."""
    if cfg.name == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True
        )
    elif cfg.name == "rmsprop":
        # Keras' RMSprop: rho=0.9 and eps=1e-7 added outside the square root, as torch does.
        opt = torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=1e-7, momentum=cfg.momentum,
                                  foreach=True)
    elif cfg.name == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, fused=True)
    else:
        raise ConfigError(f"optim.{side}.name: {cfg.name!r} is not one of {', '.join(OPTIMIZERS)}")
    decay = cfg.decay
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + decay * t))
    return opt, sched


def apply_hyperparameters(
    opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR, cfg: OptimSide
) -> None:
    """Make the configured hyperparameters win over a loaded optimiser and scheduler state.

    ``load_state_dict`` brings back the saved learning rate (the scheduler's ``base_lrs``), betas,
    alpha and momentum; a run restarted with new values (PBT's perturbed ones) would silently keep
    the old ones. The decay so far is kept: lr = cfg.lr * the schedule's factor at its step. Uses
    only the scheduler's public attributes (``base_lrs``, ``lr_lambdas``, ``last_epoch``)."""
    sched.base_lrs = [cfg.lr for _ in opt.param_groups]
    factors = [f(sched.last_epoch) for f in sched.lr_lambdas]
    for group, factor in zip(opt.param_groups, factors, strict=True):
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * factor
        if "betas" in group:
            group["betas"] = (cfg.beta1, cfg.beta2)
        if "alpha" in group:
            group["alpha"] = cfg.alpha
        if "momentum" in group:
            group["momentum"] = cfg.momentum


def clip_gradients(params: list[nn.Parameter], clip_value: float | None) -> None:
    """Element-wise gradient clipping, Keras' ``clipvalue``."""
    if clip_value is not None and clip_value > 0:
        torch.nn.utils.clip_grad_value_(params, clip_value, foreach=True)
