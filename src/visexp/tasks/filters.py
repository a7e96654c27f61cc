"""task=filters: a conv layer's weights as pictures."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from visexp.errors import VisexpError
from visexp.grids import tile_grid
from visexp.images import to_pil
from visexp.models import VisionModel
from visexp.optimise import Observer
from visexp.outputs import JobOutputs
from visexp.tasks.common import Result, required

PATCH_SIDE = 32
"""Side of one filter patch in the picture, in pixels."""


def stretched(weights: torch.Tensor) -> torch.Tensor:
    """Weights mapped to [0, 1] around zero: 0.5 is a zero weight, the largest magnitude reaches 0 or 1."""
    scale = weights.abs().max()
    return weights / (2 * scale) + 0.5 if scale > 0 else torch.full_like(weights, 0.5)


def conv_layers(model: VisionModel) -> list[str]:
    return [name for name, module in model.net.named_modules() if isinstance(module, nn.Conv2d)]


class FilterWeights:
    """Filters `task.first` .. `task.first + task.count - 1` of a conv layer: a first layer as one
    patch per filter (colour for an RGB model), deeper layers as one grey patch per input channel
    (up to `task.inputs`), a row per filter. Each filter is scaled on its own, grey at zero weight."""

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        self.model = model
        self.layer = required(cfg, "layer", "filters")
        module = model.layer(self.layer)
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
            names = conv_layers(model)
            raise VisexpError(
                f"layer {self.layer!r} of {model.name} ({type(module).__name__}) has no conv weights; "
                f"conv layers: {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}"
            )
        self.weight = weight.detach().float().cpu()
        filters = len(self.weight)
        first, count, inputs = cfg.task.first, cfg.task.count, cfg.task.inputs
        if not isinstance(first, int) or not 0 <= first < filters:
            raise VisexpError(f"task.first {first!r} is out of range for layer {self.layer!r}: it has {filters} filters, 0-{filters - 1}")
        for key, value in (("count", count), ("inputs", inputs)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise VisexpError(f"task.{key} must be a positive integer, not {value!r}")
        self.chosen = list(range(first, min(first + count, filters)))
        self.inputs = min(inputs, self.weight.shape[1])

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        chosen = self.weight[self.chosen]
        colour = chosen.shape[1] == 3 and self.model.channels == 3
        if colour or chosen.shape[1] == 1:
            # First layers: each filter is one picture, in colour for an RGB model.
            tiles = [to_pil(stretched(kernel)) for kernel in chosen]
            captions = [str(index) for index in self.chosen]
            columns = 8
            kind = "RGB" if colour else "grey"
            title = f"{self.model.name} {self.layer}: filters {self.chosen[0]}-{self.chosen[-1]} ({kind})"
        else:
            tiles, captions = [], []
            for index, kernel in zip(self.chosen, stretched_rows(chosen[:, : self.inputs])):
                tiles += [to_pil(patch.unsqueeze(0)) for patch in kernel]
                captions += [f"f{index}"] + [""] * (len(kernel) - 1)
            columns = self.inputs
            title = (
                f"{self.model.name} {self.layer}: filters {self.chosen[0]}-{self.chosen[-1]} (rows) x "
                f"input channels 0-{self.inputs - 1} (columns)"
            )
        grid = tile_grid(tiles, captions, title, side=PATCH_SIDE, columns=columns)
        outputs.save_png("filters.png", grid)
        outputs.save_npy("weights.npy", chosen.numpy())
        summary = {
            "layer": self.layer,
            "weight_shape": list(self.weight.shape),
            "filters_shown": self.chosen,
            "inputs_shown": chosen.shape[1] if colour or chosen.shape[1] == 1 else self.inputs,
            "picture": "filters.png",
        }
        return Result(summary, {"filters": grid})


def stretched_rows(kernels: torch.Tensor) -> torch.Tensor:
    """Each filter (row) scaled on its own across all its input channels, so their strengths compare."""
    return torch.stack([stretched(kernel) for kernel in kernels])
