"""Reading a layer's output during a forward pass, with the hook always removed afterwards."""

from __future__ import annotations

from types import TracebackType

import torch
from torch import nn


class LayerReached(Exception):
    """Raised inside a forward pass to stop it once the tapped layer has given its output."""


class LayerTap:
    """Keeps the output of one module while the `with` block runs.

    A module called several times in one forward pass (a ReLU reused inside a ResNet block,
    say) leaves its last output, as `dict(model.named_modules())[name](...)` would last return;
    `calls` counts how often it ran. With `stop_after=n` the forward pass is cut short with
    `LayerReached` after the n-th call: nothing past the layer is computed, so a layer
    objective costs only the network up to that layer and works on inputs of any size that
    the layers up to it accept.

    The output is cloned (still differentiable): a following in-place op such as
    `ReLU(inplace=True)` would otherwise overwrite it, and an objective on a conv layer would
    silently read the ReLU's output and get no gradient where the channel is negative.
    """

    def __init__(self, module: nn.Module, stop_after: int | None = None) -> None:
        self.module = module
        self.stop_after = stop_after
        self.output: object = None
        self.calls = 0
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _keep(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        self.output = output.clone() if isinstance(output, torch.Tensor) else output
        self.calls += 1
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise LayerReached

    def __enter__(self) -> LayerTap:
        self._handle = self.module.register_forward_hook(self._keep)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        return kind is LayerReached
