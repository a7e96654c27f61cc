"""The optimised image: a trainable offset on a fixed base, with optional clamping to valid pixels."""

from __future__ import annotations

import torch

from visexp.initialisers import Start
from visexp.models import VisionModel


class ImageParameter:
    """What the network sees is `base + offset`; the optimiser moves `offset` only.

    With `separate`, each image of the batch is a leaf tensor of its own (`leaves`), so that an
    optimiser can give each its own settings (one parameter group per image, as the batched
    launcher does for points of a sweep with different learning rates); otherwise the whole
    batch is one leaf. With `clamp`, `clamp_()` keeps the de-normalised image inside [0, 1]
    after every step.
    """

    def __init__(self, model: VisionModel, start: Start, separate: bool = False) -> None:
        self.base = start.base.detach()
        offsets = start.offset.detach().split(1) if separate else [start.offset.detach()]
        self.leaves = [offset.clone().requires_grad_(True) for offset in offsets]
        zero = torch.zeros_like(self.base[:, :, :1, :1])
        self._lower = model.normalise(zero) - self.base
        self._upper = model.normalise(zero + 1.0) - self.base

    @property
    def offset(self) -> torch.Tensor:
        """The offsets of the whole batch (differentiable with respect to the leaves)."""
        return self.leaves[0] if len(self.leaves) == 1 else torch.cat(self.leaves)

    @property
    def batch(self) -> int:
        """How many images the parameter holds."""
        return sum(len(leaf) for leaf in self.leaves)

    def gradients(self) -> list[torch.Tensor | None]:
        """The gradient of each leaf after a backward pass."""
        return [leaf.grad for leaf in self.leaves]

    def inputs(self) -> torch.Tensor:
        """The network input (differentiable with respect to `offset`)."""
        return self.base + self.offset

    @torch.no_grad()
    def clamp_(self) -> None:
        """Move every value back into the range of valid pixels."""
        first = 0
        for leaf in self.leaves:
            rows = slice(first, first + len(leaf)) if len(self._lower) > 1 else slice(None)
            leaf.clamp_(self._lower[rows], self._upper[rows])
            first += len(leaf)
