"""task=features: what one layer makes of an image, as a grid of its channel maps."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from visexp.errors import VisexpError
from visexp.grids import tile_grid
from visexp.hooks import LayerTap
from visexp.images import to_pil
from visexp.models import VisionModel
from visexp.objectives import probe_layer
from visexp.optimise import Observer
from visexp.outputs import JobOutputs
from visexp.tasks.common import Result, required, start


def viewable_map(activation: torch.Tensor) -> torch.Tensor:
    """One (H, W) map stretched to [0, 1] for viewing (a constant map comes out black)."""
    low, high = activation.min(), activation.max()
    return (activation - low) / (high - low) if high > low else torch.zeros_like(activation)


class FeatureMaps:
    """One forward pass; the layer's channel maps (all, or the top_k by mean activation) in a grid."""

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        self.model = model
        self.layer = required(cfg, "layer", "features")
        self.probe = probe_layer(model, self.layer)
        if len(self.probe.shape) != 4:
            raise VisexpError(
                f"layer {self.layer!r} of {model.name} gives {tuple(self.probe.shape)}, not channel maps: pick a conv layer"
            )
        top_k = cfg.task.top_k
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise VisexpError(f"task.top_k must be a positive integer or null (all channels), not {top_k!r}")
        self.top_k = top_k
        start_image = start(cfg, model)
        self.inputs = start_image.base + start_image.offset

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        model = self.model
        with LayerTap(model.layer(self.layer), stop_after=self.probe.calls) as tap, torch.inference_mode():
            model.net(self.inputs)
        activations = tap.output.float().cpu()
        maps = activations[0]
        means = maps.mean(dim=(1, 2))
        if self.top_k is None:
            chosen = list(range(len(maps)))
            heading = f"all {len(maps)} channels"
        else:
            chosen = means.argsort(descending=True)[: self.top_k].tolist()
            heading = f"top {len(chosen)} of {len(maps)} channels by mean activation"
        tiles = [to_pil(viewable_map(maps[channel]).unsqueeze(0)) for channel in chosen]
        captions = [f"{channel}: {means[channel]:.2f}" for channel in chosen]
        title = f"{model.name} {self.layer} ({maps.shape[1]}x{maps.shape[2]}): {heading} (channel: mean)"
        grid = tile_grid(tiles, captions, title, side=96, columns=8)
        picture = to_pil(model.denormalise(self.inputs)[0])
        outputs.save_png("features.png", grid)
        outputs.save_png("input.png", picture)
        outputs.save_npy("activations.npy", activations.numpy())
        summary = {
            "layer": self.layer,
            "activation_shape": list(activations.shape),
            "channels_shown": chosen,
            "channel_means": [float(means[channel]) for channel in chosen],
            "picture": "features.png",
        }
        return Result(summary, {"features": grid, "input": picture})
