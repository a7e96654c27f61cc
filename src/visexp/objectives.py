"""What to maximise: a class score, its log-probability, one filter's mean, or a layer's response.

Each objective is bound to a model when built (so bad targets, layers and channels fail before
any work), names the layer whose output it reads (`layer`, None for the logits) and how often
that layer runs per forward pass (`calls`), and maps that output to one score per image, (B,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from visexp.errors import VisexpError
from visexp.hooks import LayerTap
from visexp.models import VisionModel


class Objective(Protocol):
    layer: str | None
    target: int | None
    calls: int

    def __call__(self, output: torch.Tensor) -> torch.Tensor: ...


class ClassScore:
    """The unnormalised class score S_c(I), the logit of class `target` (Simonyan et al., eq. 1)."""

    layer = None
    calls = 0

    def __init__(self, model: VisionModel, target: int) -> None:
        self.target = model.check_target(target)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.target]


class ClassLogProb(ClassScore):
    """log softmax(S)_c: raises class c by lowering the others too, which the paper avoids."""

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits, dim=1)[:, self.target]


@dataclass(frozen=True)
class LayerProbe:
    """What one forward pass at the model's input size shows about a layer."""

    shape: tuple[int, ...]
    calls: int


def probe_layer(model: VisionModel, layer: str) -> LayerProbe:
    """The output shape of `layer` and how often it runs per forward pass (errors in one line)."""
    module = model.layer(layer)
    size = model.input_size
    probe = torch.zeros(1, model.channels, size, size, device=model.device)
    with LayerTap(module) as tap, torch.inference_mode():
        model.net(probe)
    if tap.calls == 0:
        raise VisexpError(f"layer {layer!r} of {model.name} does not run in the forward pass (an auxiliary head in eval mode?)")
    if not isinstance(tap.output, torch.Tensor) or tap.output.dim() < 2:
        raise VisexpError(f"layer {layer!r} of {model.name} does not output a (batch, channel, ...) tensor")
    return LayerProbe(tuple(tap.output.shape), tap.calls)


class FilterMean:
    """Mean activation of channel `channel` of layer `layer` (a conv map or a linear unit)."""

    target = None

    def __init__(self, model: VisionModel, layer: str, channel: int) -> None:
        probe = probe_layer(model, layer)
        channels = probe.shape[1]
        if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < channels:
            raise VisexpError(f"channel {channel!r} is out of range for layer {layer!r}: it has {channels} channels, 0-{channels - 1}")
        self.layer = str(layer)
        self.calls = probe.calls
        self.channel = channel

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        unit = activation[:, self.channel]
        return unit.flatten(1).mean(dim=1) if unit.dim() > 1 else unit


class LayerActivation:
    """How strongly a whole layer responds, DeepDream's objective: `l2`, the root mean square of
    its activations (the L2 norm scaled by 1/sqrt(size), comparable across layers and image
    sizes), or `mean`, their mean."""

    target = None
    REDUCTIONS = ("l2", "mean")

    def __init__(self, model: VisionModel, layer: str, reduce: str) -> None:
        if reduce not in self.REDUCTIONS:
            raise VisexpError(f"objective.reduce must be one of {', '.join(self.REDUCTIONS)}, not {reduce!r}")
        self.layer = str(layer)
        self.calls = probe_layer(model, layer).calls
        self.reduce = reduce

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        values = activation.flatten(1)
        if self.reduce == "mean":
            return values.mean(dim=1)
        # The norm's gradient is 0 where a layer is all zero; sqrt(mean(x^2)) would give NaN there.
        return torch.linalg.vector_norm(values, dim=1) / values.shape[1] ** 0.5
