"""Adversarial losses by name, all on raw discriminator logits (no sigmoid anywhere).

    loss = LOSSES[cfg.loss.name]
    d = loss.d_loss(D(real, y), D(fake.detach(), y))
    if loss.needs_gp:
        d = d + cfg.loss.gp_weight * gradient_penalty(D, real, fake, y, generator=noise_gen)
    g = loss.g_loss(D(fake, y))

R1 (``r1_penalty``) is the loss-independent penalty on D's gradient at real images; the loop
adds it lazily (``cfg.loss.r1_gamma``, ``r1_every``).

BCE terms use softplus, which is the numerically stable form of BCE with logits:
BCE(l, 1) = softplus(-l) = -log sigmoid(l), BCE(l, 0) = softplus(l) = -log(1 - sigmoid(l)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.functional import relu, softplus

from gan_core.errors import ConfigError


class Loss:
    """One adversarial objective: both sides minimise what they are given."""

    name: str = ""
    needs_gp: bool = False  # the loop adds gp_weight * gradient_penalty(...) to the D loss

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class NonSaturatingBCE(Loss):
    """The seeds' default: D = BCE(real, 1) + BCE(fake, 0); G = BCE(fake, 1)."""

    name = "bce"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return softplus(-real_logits).mean() + softplus(fake_logits).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return softplus(-fake_logits).mean()


class Minimax(NonSaturatingBCE):
    """Goodfellow et al.'s original game: G minimises log(1 - D(G(z))) = -BCE(fake, 0)
    (saturates when D wins early)."""

    name = "minimax"

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -softplus(fake_logits).mean()


class LeastSquares(Loss):
    """LSGAN (Mao et al.) on logits with targets 1 (real) and 0 (fake):
    D = 1/2 E(real - 1)^2 + 1/2 E fake^2; G = 1/2 E(fake - 1)^2."""

    name = "lsgan"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits**2).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((fake_logits - 1.0) ** 2).mean()


class Hinge(Loss):
    """Hinge loss: D = E relu(1 - real) + E relu(1 + fake); G = -E fake."""

    name = "hinge"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return relu(1.0 - real_logits).mean() + relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()


class WassersteinGP(Loss):
    """WGAN-GP (Gulrajani et al.): D = E fake - E real (+ gp_weight * gradient_penalty);
    G = -E fake."""

    name = "wgan-gp"
    needs_gp = True

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()


LOSSES: dict[str, Loss] = {
    loss.name: loss for loss in (NonSaturatingBCE(), Minimax(), LeastSquares(), Hinge(), WassersteinGP())
}


def get_loss(name: str) -> Loss:
    """The registered loss ``name``; ConfigError listing the valid names otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"loss.name: {name!r} is not one of {', '.join(LOSSES)}") from None


def gradient_penalty(
    D: nn.Module | Callable[[Tensor, Tensor | None], Tensor],
    real: Tensor,
    fake: Tensor,
    y: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps real + (1 - eps) fake,
    eps ~ U[0, 1) per sample, drawn from ``generator`` (a CPU torch.Generator) when given, for
    determinism. Unweighted: multiply by ``cfg.loss.gp_weight``. Differentiable w.r.t. D's
    parameters (create_graph), not w.r.t. G (fake is detached). ``D`` may be any callable
    (x, y) -> logits, e.g. D after DiffAugment: the gradient is then taken at x_hat before the
    augmentation, through it."""
    n = real.shape[0]
    eps_shape = (n,) + (1,) * (real.ndim - 1)
    if generator is not None:
        eps = torch.rand(eps_shape, generator=generator).to(device=real.device, dtype=real.dtype)
    else:
        eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = D(x_hat, y)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    # sqrt(sum + tiny) rather than .norm(): its gradient stays finite at a zero gradient.
    norm = (grad.flatten(1).pow(2).sum(dim=1) + 1e-12).sqrt()
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 over real images, unweighted.

    ``real`` must require grad and ``real_logits`` come from it (through any augmentation), so
    D's forward on the real batch is shared with the loss. Differentiable w.r.t. D's parameters
    (create_graph); weight it with r1_gamma / 2 (times r1_every when applied lazily)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def discriminator_accuracy(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Fraction of real images called real (logit > 0) and of fakes called fake (logit <= 0),
    as detached 0-d float tensors (no host sync; ``float()`` them to log)."""
    with torch.no_grad():
        acc_real = (real_logits > 0).float().mean()
        acc_fake = (fake_logits <= 0).float().mean()
    return acc_real, acc_fake
