"""The optimised image: a trainable offset on a fixed base, with optional clamping to valid pixels."""

from __future__ import annotations

import torch

from visexp.initialisers import Start
from visexp.models import VisionModel


class ImageParameter:
    """What the network sees is `base + offset`; the optimiser moves `offset` only.

    With `clamp`, `clamp_()` keeps the de-normalised image inside [0, 1] after every step.
    """

    def __init__(self, model: VisionModel, start: Start) -> None:
        self.base = start.base.detach()
        self.offset = start.offset.detach().clone().requires_grad_(True)
        zero = torch.zeros_like(self.base[:, :, :1, :1])
        self._lower = model.normalise(zero) - self.base
        self._upper = model.normalise(zero + 1.0) - self.base

    def inputs(self) -> torch.Tensor:
        """The network input (differentiable with respect to `offset`)."""
        return self.base + self.offset

    @torch.no_grad()
    def clamp_(self) -> None:
        """Move every value back into the range of valid pixels."""
        self.offset.copy_(torch.maximum(torch.minimum(self.offset, self._upper), self._lower))
