"""An exponential moving average of the generator's weights (Yazici et al. 2019, StyleGAN).

G's weights oscillate around the equilibrium the two players chase; their running average
draws better samples than any single iterate, at no training cost. The training loop updates
it after every generator update and samples, evaluates and checkpoints it (``G_ema``)::

    ema = GeneratorEma(G, decay=0.999, start_images=10_000)
    ...optimiser step on G...
    ema.update(images_seen)
    images = generate(ema.model, 64)
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from gan_core.models import Generator

STANDING_BATCH = 64
STANDING_SEED = 0x5EED  # the fixed noise of the standing statistics: no training stream is touched


class GeneratorEma:
    """A frozen copy of G whose parameters trail G's: ema = decay * ema + (1 - decay) * G.

    Buffers (batch-norm running statistics, spectral-norm vectors) are copied, not averaged:
    they describe the current weights' activations. Until ``start_images`` images have been seen
    (counting the batch of the current step) the copy is exact, so the untrained start never
    enters the average; averaging begins with the first update after that.

    G's batch-norm statistics fit G's weights, not the average's. With ``standing_batches`` > 0
    the average's own are computed instead (BigGAN's "standing statistics"): ``sampler()`` and
    ``state_dict()`` first run that many batches of fixed noise through it with its norms in
    training mode and cumulative averaging, once per update; the training streams are untouched,
    so a resumed run is unchanged. On a colour MNIST generator at 64k images this alone took
    the 2k-sample cfd from 118 to 108.
    """

    def __init__(self, G: Generator, decay: float, start_images: int = 0, standing_batches: int = 0) -> None:
        self.decay = float(decay)
        self.start_images = int(start_images)
        self.standing_batches = int(standing_batches)
        self.model = copy.deepcopy(G).eval().requires_grad_(False)
        # Flat lists once: one fused foreach call per update instead of a loop per tensor.
        self._src: list[torch.Tensor] = list(G.parameters())
        self._dst: list[torch.Tensor] = list(self.model.parameters())
        self._src_buf = list(G.buffers())
        self._dst_buf = list(self.model.buffers())
        self._norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self._stale = bool(self._norms)  # the norms hold G's statistics, not the average's own

    @torch.no_grad()
    def update(self, images_seen: int) -> None:
        if images_seen <= self.start_images:
            torch._foreach_copy_(self._dst, self._src)
        else:
            torch._foreach_lerp_(self._dst, self._src, 1.0 - self.decay)
        if self._dst_buf:
            torch._foreach_copy_(self._dst_buf, self._src_buf)
        self._stale = bool(self._norms)

    @torch.no_grad()
    def reset(self) -> None:
        """Make the average an exact copy of G again (e.g. when a resumed run switches it on)."""
        torch._foreach_copy_(self._dst, self._src)
        if self._dst_buf:
            torch._foreach_copy_(self._dst_buf, self._src_buf)
        self._stale = bool(self._norms)

    def sampler(self) -> Generator:
        """The average, ready to draw (its standing statistics computed when they are on)."""
        self._standing_stats()
        return self.model

    @torch.no_grad()
    def _standing_stats(self) -> None:
        if not (self.standing_batches and self._stale):
            return
        from gan_core.models import sample_latent

        G = self.model
        device = next(G.parameters()).device
        momenta = [m.momentum for m in self._norms]
        for m in self._norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
            m.train()  # the norms only: dropout stays off
        gen = torch.Generator().manual_seed(STANDING_SEED)
        labels = (nn.functional.one_hot(torch.arange(STANDING_BATCH, device=device) % G.num_classes,
                                        G.num_classes).float() if G.conditional else None)
        try:
            for _ in range(self.standing_batches):
                G(sample_latent(STANDING_BATCH, G.latent_dim, G.latent_dist, gen, device), labels)
        finally:
            for m, momentum in zip(self._norms, momenta, strict=True):
                m.momentum = momentum
                m.eval()
        self._stale = False

    def state_dict(self) -> dict[str, Any]:
        self._standing_stats()
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self._stale = False  # what was saved is what was sampled
