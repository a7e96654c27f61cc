"""Penalties on the optimised image: the class model maximises S_c(I) - penalty(I).

The penalty is taken per image over all its values, in the network's input space: the paper's
L2 term is lambda * ||I||_2^2 on the mean-subtracted image.
"""

from __future__ import annotations

import torch


class NoPenalty:
    """No regularisation."""

    def __call__(self, offset: torch.Tensor) -> torch.Tensor:
        return offset.new_zeros(offset.shape[0])


class L2Penalty:
    """weight * ||I||_2^2 (squared L2 norm), as in Simonyan et al."""

    def __init__(self, weight: float) -> None:
        self.weight = float(weight)

    def __call__(self, offset: torch.Tensor) -> torch.Tensor:
        return self.weight * offset.pow(2).flatten(1).sum(dim=1)


class L1Penalty:
    """weight * ||I||_1: favours images where most values stay at the starting point."""

    def __init__(self, weight: float) -> None:
        self.weight = float(weight)

    def __call__(self, offset: torch.Tensor) -> torch.Tensor:
        return self.weight * offset.abs().flatten(1).sum(dim=1)
