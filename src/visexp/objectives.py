"""What to maximise: a class score, its log-probability, one filter's mean, or a layer's response.

Each objective is bound to a model when built (so bad targets, layers and channels fail before
any work), names the layer whose output it reads (`layer`, None for the logits) and how often
that layer runs per forward pass (`calls`), and maps that output to one score per image, (B,).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from visexp.errors import VisexpError
from visexp.hooks import LayerTap
from visexp.models import VisionModel


class Objective(Protocol):
    layer: str | None
    target: int | list[int] | None
    calls: int

    def __call__(self, output: torch.Tensor) -> torch.Tensor: ...


def per_image(values: torch.Tensor, index: int | list[int]) -> torch.Tensor:
    """values[:, index] for one index; for a list, each image's own: values[i, index[i]]."""
    if isinstance(index, int):
        return values[:, index]
    if len(index) != len(values):
        raise VisexpError(f"{len(index)} targets or channels for a batch of {len(values)} images")
    return values[torch.arange(len(index), device=values.device), index]


def as_list(value: object, name: str) -> list | None:
    """`value` as a list if it is one (a list of targets or channels, one image each), else None."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return None
    if not value:
        raise VisexpError(f"{name} is an empty list: give one index or a list of them")
    return list(value)


class ClassScore:
    """The unnormalised class score S_c(I), the logit of class `target` (Simonyan et al., eq. 1).
    A list of targets gives each image of the batch its own class."""

    layer = None
    calls = 0

    def __init__(self, model: VisionModel, target: int | list[int]) -> None:
        targets = as_list(target, "target")
        self.target = [model.check_target(one) for one in targets] if targets is not None else model.check_target(target)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return per_image(logits, self.target)


class ClassLogProb(ClassScore):
    """log softmax(S)_c: raises class c by lowering the others too, which the paper avoids."""

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return per_image(torch.log_softmax(logits, dim=1), self.target)


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
    """Mean activation of channel `channel` of layer `layer` (a conv map or a linear unit).
    A list of channels gives each image of the batch its own."""

    target = None

    def __init__(self, model: VisionModel, layer: str, channel: int | list[int]) -> None:
        probe = probe_layer(model, layer)
        channels = probe.shape[1]
        listed = as_list(channel, "objective.channel")
        for one in listed if listed is not None else [channel]:
            if isinstance(one, bool) or not isinstance(one, int) or not 0 <= one < channels:
                raise VisexpError(f"channel {one!r} is out of range for layer {layer!r}: it has {channels} channels, 0-{channels - 1}")
        self.layer = str(layer)
        self.calls = probe.calls
        self.channel = listed if listed is not None else channel

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        unit = per_image(activation, self.channel)
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
