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

if TYPE_CHECKING:
    from gan_core.models import Generator


class GeneratorEma:
    """A frozen copy of G whose parameters trail G's: ema = decay * ema + (1 - decay) * G.

    Buffers (batch-norm running statistics, spectral-norm vectors) are copied, not averaged:
    they describe the current weights' activations. Until ``start_images`` images have been seen
    (counting the batch of the current step) the copy is exact, so the untrained start never
    enters the average; averaging begins with the first update after that.
    """

    def __init__(self, G: Generator, decay: float, start_images: int = 0) -> None:
        self.decay = float(decay)
        self.start_images = int(start_images)
        self.model = copy.deepcopy(G).eval().requires_grad_(False)
        # Flat lists once: one fused foreach call per update instead of a loop per tensor.
        self._src: list[torch.Tensor] = list(G.parameters())
        self._dst: list[torch.Tensor] = list(self.model.parameters())
        self._src_buf = list(G.buffers())
        self._dst_buf = list(self.model.buffers())

    @torch.no_grad()
    def update(self, images_seen: int) -> None:
        if images_seen <= self.start_images:
            torch._foreach_copy_(self._dst, self._src)
        else:
            torch._foreach_lerp_(self._dst, self._src, 1.0 - self.decay)
        if self._dst_buf:
            torch._foreach_copy_(self._dst_buf, self._src_buf)

    @torch.no_grad()
    def reset(self) -> None:
        """Make the average an exact copy of G again (e.g. when a resumed run switches it on)."""
        torch._foreach_copy_(self._dst, self._src)
        if self._dst_buf:
            torch._foreach_copy_(self._dst_buf, self._src_buf)

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
