"""Penalties on the optimised image: the class model maximises S_c(I) - penalty(I).

The penalty is taken per image over all its values, in the network's input space: the paper's
L2 term is lambda * ||I||_2^2 on the mean-subtracted image. A list of weights gives each image
of the batch its own (the batched launcher's points with different lambdas).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from visexp.errors import VisexpError


class Weight:
    """One weight for the whole batch, or one per image."""

    def __init__(self, weight: float | Sequence[float]) -> None:
        self.values = [float(one) for one in weight] if isinstance(weight, Sequence) else float(weight)
        self._tensors: dict[torch.device, torch.Tensor] = {}

    def __call__(self, per_image: torch.Tensor) -> torch.Tensor:
        """`per_image` (B,) times the weight, kept on the device (no copy per step)."""
        if isinstance(self.values, float):
            return self.values * per_image
        if len(self.values) != len(per_image):
            raise VisexpError(f"{len(self.values)} penalty weights for a batch of {len(per_image)} images")
        if per_image.device not in self._tensors:
            self._tensors[per_image.device] = torch.tensor(self.values, device=per_image.device)
        return self._tensors[per_image.device] * per_image


class NoPenalty:
    """No regularisation."""

    def __call__(self, offset: torch.Tensor) -> torch.Tensor:
        return offset.new_zeros(offset.shape[0])


class L2Penalty:
    """weight * ||I||_2^2 (squared L2 norm), as in Simonyan et al."""

    def __init__(self, weight: float | Sequence[float]) -> None:
        self.weight = Weight(weight)

    def __call__(self, offset: torch.Tensor) -> torch.Tensor:
        return self.weight(offset.pow(2).flatten(1).sum(dim=1))


class L1Penalty:
    """weight * ||I||_1: favours images where most values stay at the starting point."""

    def __init__(self, weight: float | Sequence[float]) -> None:
        self.weight = Weight(weight)

    def __call__(self, offset: torch.Tensor) -> torch.Tensor:
        return self.weight(offset.abs().flatten(1).sum(dim=1))
