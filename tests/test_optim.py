"""Optimisers: the configured hyperparameters win over a loaded state (PBT's perturbed values)."""

import pytest
import torch

from gan_core.config import OptimSide
from gan_core.optim import apply_hyperparameters, build_optimizer


def _stepped(cfg: OptimSide, steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    w = torch.nn.Parameter(torch.ones(3))
    opt, sched = build_optimizer(cfg, [w], "d")
    for _ in range(steps):
        w.grad = torch.ones(3)
        opt.step()
        sched.step()
    return opt, sched


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_loaded_state_takes_the_new_hyperparameters_and_keeps_the_decay_so_far(name):
    old = OptimSide(name=name, lr=1e-3, beta1=0.5, momentum=0.1, alpha=0.9, decay=0.5)
    new = OptimSide(name=name, lr=4e-3, beta1=0.0, momentum=0.7, alpha=0.8, decay=0.5)
    opt, sched = _stepped(old, 3)
    again, again_sched = _stepped(new, 0)
    again.load_state_dict(opt.state_dict())
    again_sched.load_state_dict(sched.state_dict())
    assert again.param_groups[0]["lr"] == pytest.approx(1e-3 / (1 + 0.5 * 3))  # the old rate came back
    apply_hyperparameters(again, again_sched, new)
    group = again.param_groups[0]
    assert group["lr"] == pytest.approx(4e-3 / (1 + 0.5 * 3)) and group["initial_lr"] == 4e-3
    assert group.get("betas", (0.0, 0.999)) == (0.0, 0.999)
    assert group.get("momentum", 0.7) == 0.7 and group.get("alpha", 0.8) == 0.8
    w = again.param_groups[0]["params"][0]
    w.grad = torch.ones(3)
    again.step()
    again_sched.step()  # the schedule continues from the new base rate
    assert again.param_groups[0]["lr"] == pytest.approx(4e-3 / (1 + 0.5 * 4))


def test_same_config_leaves_a_loaded_state_exactly_as_saved():
    cfg = OptimSide(lr=2e-4, decay=1e-3)
    opt, sched = _stepped(cfg, 5)
    again, again_sched = _stepped(cfg, 0)
    again.load_state_dict(opt.state_dict())
    again_sched.load_state_dict(sched.state_dict())
    apply_hyperparameters(again, again_sched, cfg)
    assert again.param_groups[0]["lr"] == opt.param_groups[0]["lr"]  # bit for bit: resumes are exact
